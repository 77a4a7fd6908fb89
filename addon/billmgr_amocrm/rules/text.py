"""Text hygiene for everything sent to amoCRM.

Control characters (Unicode category Cc) and lone surrogates (Cs) are removed:
they break amoCRM's UI and can break JSON encoders. Line breaks and tabs become a
single space in one-line values. Everything else, HTML and emoji included, is
kept as text: amoCRM escapes it on display.
"""

from __future__ import annotations

import re

NAME_LIMIT = 255  # amoCRM's limit for entity names and text fields

# Unicode category Cc is exactly U+0000-U+001F and U+007F-U+009F; Cs is U+D800-U+DFFF.
# Regular expressions rather than a per-character loop: this runs for every name and field
# of every entity an export sends, and the loop was a tenth of its CPU time.
_LINE_BREAKS = re.compile("[\t\r\n\x0b\x0c\x85]")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str, limit: int = NAME_LIMIT) -> str:
    """One trimmed line with no control characters, at most ``limit`` characters."""
    text = " ".join(_CONTROLS.sub("", _LINE_BREAKS.sub(" ", value)).split())
    return text[:limit].rstrip()


def shorten(head: str, tail: str, limit: int = NAME_LIMIT) -> str:
    """``head + tail`` cut to ``limit`` by shortening the head, so the tail (an id) survives."""
    room = limit - len(tail)
    if len(head) <= room:
        return head + tail
    if room <= 1:
        return (head + tail)[:limit]
    return head[: room - 1].rstrip() + "…" + tail
