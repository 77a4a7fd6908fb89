"""Text hygiene for everything sent to amoCRM.

Control characters (Unicode category Cc) and lone surrogates (Cs) are removed:
they break amoCRM's UI and can break JSON encoders. Line breaks and tabs become a
single space in one-line values. Everything else, HTML and emoji included, is
kept as text: amoCRM escapes it on display.
"""

from __future__ import annotations

import unicodedata

NAME_LIMIT = 255  # amoCRM's limit for entity names and text fields


def _keep(char: str) -> bool:
    return unicodedata.category(char) not in ("Cc", "Cs")


def clean_text(value: str, limit: int = NAME_LIMIT) -> str:
    """One trimmed line with no control characters, at most ``limit`` characters."""
    spaced = "".join(" " if ch in "\t\r\n\x0b\x0c\x85" else ch for ch in value)
    text = " ".join("".join(ch for ch in spaced if _keep(ch)).split())
    return text[:limit].rstrip()


def shorten(head: str, tail: str, limit: int = NAME_LIMIT) -> str:
    """``head + tail`` cut to ``limit`` by shortening the head, so the tail (an id) survives."""
    room = limit - len(tail)
    if len(head) <= room:
        return head + tail
    if room <= 1:
        return (head + tail)[:limit]
    return head[: room - 1].rstrip() + "…" + tail
