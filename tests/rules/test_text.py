"""clean_text against its definition: Unicode categories Cc and Cs removed, line breaks as spaces."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from billmgr_amocrm.rules.text import NAME_LIMIT, clean_text, shorten


def by_definition(value: str, limit: int = NAME_LIMIT) -> str:
    spaced = "".join(" " if ch in "\t\r\n\x0b\x0c\x85" else ch for ch in value)
    kept = "".join(ch for ch in spaced if unicodedata.category(ch) not in ("Cc", "Cs"))
    return " ".join(kept.split())[:limit].rstrip()


@settings(max_examples=3000)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300),
       st.integers(min_value=1, max_value=300))
def test_clean_text_matches_its_definition(value: str, limit: int) -> None:
    assert clean_text(value, limit) == by_definition(value, limit)


def test_every_control_and_surrogate_code_point_is_covered() -> None:
    for code in list(range(0x0, 0x100)) + list(range(0xD800, 0xE000, 7)) + [0xDFFF, 0x2028, 0xA0]:
        ch = chr(code)
        assert clean_text(f"a{ch}b") == by_definition(f"a{ch}b"), hex(code)


def test_examples() -> None:
    assert clean_text("  ООО «Ромашка»\r\n\tфилиал\x00 \ud800") == "ООО «Ромашка» филиал"
    assert clean_text("<b>bold</b> 😀") == "<b>bold</b> 😀"
    assert shorten("x" * 300, " (#1)") == "x" * 249 + "… (#1)"
