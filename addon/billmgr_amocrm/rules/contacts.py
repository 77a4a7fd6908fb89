"""Phone and email clean-up for amoCRM's PHONE and EMAIL fields.

amoCRM stores whatever it is given and then fails to match duplicates, so values
are normalised and dirty ones dropped (never sent half-right):

Phones (E.164-ish, "+" and digits):
  * one field may hold several numbers separated by "," ";" or "/";
  * an extension ("доб. 12", "ext 12", "x12", "#12") is dropped;
  * "+CC..." and "00CC..." are international: kept if 8-15 digits;
  * Russian/Kazakh trunk forms: 11 digits starting 8 or 7 -> +7..., 10 digits -> +7...
    (when the country is Russia/Kazakhstan or unknown; 10 digits elsewhere are dropped:
    we cannot guess the country code);
  * otherwise 11-15 bare digits are taken as already international (+digits);
  * anything else (letters, fewer than 10 digits) is dropped.
Emails (separated by "," ";" or new lines): trimmed, lowercased, one "@", an ASCII
local part without consecutive dots, a dotted domain of letters (any script),
digits and inner hyphens, at most 254 characters.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Optional

_PHONE_SPLIT = re.compile(r"[,;/]|\s{3,}")
_EXTENSION = re.compile(r"(доб\.?|ext\.?|extension|x|#).*$", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[0-9 ()+\-.]+$")
_EMAIL_SPLIT = re.compile(r"[,;\n\r]+")
_EMAIL_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_TRUNK_7_COUNTRIES = frozenset({"", "ru", "rus", "россия", "russia", "russian federation",
                                "российская федерация", "kz", "kaz", "казахстан", "kazakhstan"})


def _one_phone(raw: str, country: str) -> Optional[str]:
    text = " ".join(_EXTENSION.sub("", raw).split())  # any Unicode space (NBSP from copy-paste) -> " "
    if not text or not _PHONE_CHARS.match(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        return "+" + digits if 8 <= len(digits) <= 15 else None
    if digits.startswith("00"):
        digits = digits[2:]
        return "+" + digits if 8 <= len(digits) <= 15 else None
    trunk_7 = country.strip().casefold() in _TRUNK_7_COUNTRIES
    if len(digits) == 11 and digits[0] in "78" and trunk_7:
        return "+7" + digits[1:]
    if len(digits) == 10 and trunk_7:
        return "+7" + digits
    if 11 <= len(digits) <= 15:
        return "+" + digits
    return None


def normalize_phones(raw: str, country: str = "") -> List[str]:
    """Every usable phone number in a free-text field, normalised."""
    found = (_one_phone(part, country) for part in _PHONE_SPLIT.split(raw or ""))
    return [p for p in found if p]


def _domain_ok(domain: str) -> bool:
    """Dotted labels of letters (any script: .рф is fine), digits and inner hyphens."""
    labels = domain.split(".")
    if len(labels) < 2 or not (2 <= len(labels[-1]) <= 63 and labels[-1].isalpha()):
        return False
    return all(0 < len(label) <= 63 and not label.startswith("-") and not label.endswith("-")
               and all(ch.isalnum() or ch == "-" for ch in label) for label in labels)


def normalize_emails(raw: str) -> List[str]:
    """Every valid address in a free-text field, lowercased."""
    result = []
    for part in _EMAIL_SPLIT.split((raw or "").strip()):
        email = part.strip().strip("<>").lower()
        local, at, domain = email.partition("@")
        if at and len(email) <= 254 and _EMAIL_LOCAL.match(local) and _domain_ok(domain):
            result.append(email)
    return result


def unique(values: Iterable[str]) -> List[str]:
    """First occurrence order, duplicates dropped."""
    seen = set()
    out = []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out
