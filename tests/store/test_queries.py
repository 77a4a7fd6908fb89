"""The named SQL (store/queries.sql) and its loader: every query described, used and
filled only through the fragment makers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store import queries
from billmgr_amocrm.store.queries import Fragment, fragment, joined, link_table, marks, parse, rows, sql

STORE_DIR = Path(queries.__file__).parent


def test_every_query_has_a_one_line_description_and_a_statement() -> None:
    catalog = queries.catalog()
    assert len(catalog) > 30
    for query in catalog.values():
        assert query.description and query.text and "--" not in query.text, query.name
        assert not query.text.endswith(";"), query.name


def test_every_query_is_used_by_the_store_and_every_used_name_exists() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in STORE_DIR.glob("*.py"))
    used = set(re.findall(r'(?:sql|fragment|rows|_insert_rows)\(\s*"(\w+)"', code))
    used |= set(re.findall(r'_insert_rows\("\w+", "(\w+)"', code))
    assert used == set(queries.catalog())


def test_slots_are_filled_exactly_and_only_with_fragments() -> None:
    assert sql("links", link_table=link_table(Kind.LEAD), ids=marks(3)) == \
        "SELECT billmgr_id, amocrm_id FROM amocrm_item2lead WHERE billmgr_id IN (%s, %s, %s)"
    with pytest.raises(KeyError, match="has slots"):
        sql("links", link_table=link_table(Kind.LEAD))
    with pytest.raises(KeyError, match="has slots"):
        sql("get_cursor", ids=marks(1))
    assert sql("enqueue", rows=rows("enqueue_row", 2)).count("@amocrm_kind, %s") == 2
    versions = joined([fragment("complete_version", ids=marks(n)) for n in (2, 1)], " OR ")
    assert sql("complete", versions=versions).endswith(
        "WHERE (version = %s AND id IN (%s, %s)) OR (version = %s AND id IN (%s))")


def test_fragment_makers_refuse_what_would_make_bad_sql() -> None:
    with pytest.raises(ValueError):
        marks(0)
    with pytest.raises(ValueError):
        rows("enqueue_row", 0)
    with pytest.raises(ValueError):
        joined([Fragment("a"), Fragment("b")], "; DROP TABLE x; ")


def test_the_parser_keeps_notes_out_of_the_statement_and_refuses_bad_blocks() -> None:
    parsed = parse("-- preamble\n\n-- name: one\n-- What it does.\n-- A note.\nSELECT {x}\n  FROM t;\n")
    assert (parsed["one"].description, parsed["one"].text, parsed["one"].slots) == (
        "What it does.", "SELECT {x}\n  FROM t", frozenset({"x"}))
    with pytest.raises(ValueError, match="twice"):
        parse("-- name: a\n-- A.\nSELECT 1\n-- name: a\n-- A.\nSELECT 2\n")
    with pytest.raises(ValueError, match="description"):
        parse("-- name: a\nSELECT 1\n")
    with pytest.raises(ValueError, match="description"):
        parse("-- name: a\n-- A.\n")
