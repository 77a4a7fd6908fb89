"""Phone and email normalisation: a table of real-world dirt."""

from __future__ import annotations

from typing import List

import pytest

from billmgr_amocrm.rules.contacts import normalize_emails, normalize_phones


@pytest.mark.parametrize(("raw", "country", "expected"), [
    ("+7 (900) 123-45-67", "RU", ["+79001234567"]),
    ("8 900 123 45 67", "RU", ["+79001234567"]),
    ("79001234567", "", ["+79001234567"]),
    ("9001234567", "Россия", ["+79001234567"]),
    ("(495) 111-22-33", "", ["+74951112233"]),
    ("+7 495 111-22-33 доб. 15", "RU", ["+74951112233"]),
    ("+1 (650) 253-0000 ext 7", "US", ["+16502530000"]),
    ("0044 20 7946 0958", "GB", ["+442079460958"]),
    ("380501234567", "UA", ["+380501234567"]),
    ("6502530000", "US", []),                      # 10 digits without a country code: cannot guess
    ("+7 900 123 45 67; 8-900-765-43-21", "RU", ["+79001234567", "+79007654321"]),
    ("123-45-67", "RU", []),
    ("call me maybe", "RU", []),
    ("+12", "", []),
    ("8\u00a0900\u00a0123-45-67", "RU", ["+79001234567"]),   # NBSP pasted from a web page
    ("+7 ٩٠٠ 123 45 67", "RU", []),                          # non-ASCII digits are not a phone
    ("", "RU", []),
    ("+7 900 123 45 67 / +7 900 123 45 67", "RU", ["+79001234567", "+79001234567"]),
])
def test_phone_normalisation(raw: str, country: str, expected: List[str]) -> None:
    assert normalize_phones(raw, country) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    (" Ivan@Example.COM ", ["ivan@example.com"]),
    ("a@b.ru, c@d.com; e@f.org", ["a@b.ru", "c@d.com", "e@f.org"]),
    ("<boss@corp.ru>", ["boss@corp.ru"]),
    ("почта@пример.рф", []),                       # non-ASCII local part: amoCRM mail cannot use it
    ("a@b.ru\nc@d.ru", ["a@b.ru", "c@d.ru"]),
    ("user@пример.рф", ["user@пример.рф"]),
    ("not-an-email", []),
    ("a@b", []),
    ("a..b@example.com", []),
    ("a@@example.com", []),
    ("a b@example.com", []),
    ("x@" + "a" * 250 + ".com", []),
    ("", []),
])
def test_email_normalisation(raw: str, expected: List[str]) -> None:
    assert normalize_emails(raw) == expected
