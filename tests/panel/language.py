"""Is a message wholly in one language? The checks the one-language tests share.

A Russian message may hold Latin letters only in proper names (amoCRM, BILLmanager, MySQL, ...),
URLs, file paths and host names, ids and the values the test itself submitted (``echoed``);
any other Latin word (``kind``, ``responsible_user_id``, ``leads``, an English sentence) fails.
An English message holds no Cyrillic but the values the test submitted.
"""

from __future__ import annotations

import re
from typing import Iterable, List

PROPER_NAMES = frozenset({"amoCRM", "BILLmanager", "MySQL", "MariaDB", "API", "ID", "URL", "Email"})
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# a path or host (a word with "/" or a dot between letters: etc/amocrm/amocrm.conf, kommo.com)
_PATHLIKE = re.compile(r"\S*[\w\]-]/\S*|\b[\w-]+(?:\.[\w-]+)+\b")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_]*")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _without(text: str, echoed: Iterable[str]) -> str:
    for value in sorted((v for v in echoed if v), key=len, reverse=True):
        text = text.replace(value, " ")
    return _PATHLIKE.sub(" ", _URL.sub(" ", text))


def latin_words(text: str, echoed: Iterable[str] = ()) -> List[str]:
    """The Latin words of a Russian message that are not proper names, URLs, paths or echoed values."""
    return [w for w in _LATIN_WORD.findall(_without(text, echoed)) if w not in PROPER_NAMES]


def assert_russian(text: str, echoed: Iterable[str] = ()) -> None:
    assert text.strip(), "empty message"
    assert _CYRILLIC.search(text), f"not Russian: {text!r}"
    stray = latin_words(text, echoed)
    assert not stray, f"Latin words {stray} in a Russian message: {text!r}"


def assert_english(text: str, echoed: Iterable[str] = ()) -> None:
    assert text.strip(), "empty message"
    rest = text
    for value in echoed:
        rest = rest.replace(value, " ")
    assert not _CYRILLIC.search(rest), f"Cyrillic in an English message: {text!r}"


def assert_in(text: str, lang: str, echoed: Iterable[str] = ()) -> None:
    (assert_russian if lang == "ru" else assert_english)(text, echoed)


def assert_names(text: str, label: str) -> None:
    """The message names the field by the label the admin sees (case aside: it may start a sentence)."""
    assert label.casefold() in text.casefold(), f"{label!r} not named in {text!r}"
