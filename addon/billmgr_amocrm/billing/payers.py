"""Payers (``profile``) as BILLmanager exposes them: the columns the table has, mgrctl for the rest.

Only ``id``, ``account``, ``name`` and ``profiletype`` are confirmed columns. The requisites
(contact person, INN ``vatnum``, KPP, OGRN, email, phone, both addresses and their
countries) are fields of the payer's form, and a provider defines some of them per country
(``unverified.PROFILE_FORM_FIELDS``, ``PROFILE_PARAM_NAMES``). So the reader asks the
database which columns ``profile`` has (once per process and database) and selects only
those; whatever no column holds is read from ``mgrctl -m billmgr -o xml profile.edit
elid=N``, for legal-entity payers only (the ones that become companies). A requisite
neither source has is empty, never an error.

Speed: payers are read 500 to a query. mgrctl is one process and one panel request per
payer, so it is asked only for what the columns lack, and ``MGRCTL_WORKERS`` calls run at
a time. An mgrctl that fails (other than "no such payer") raises ``MgrctlError``: the batch
is read again later, as after a database error, rather than sent with requisites missing.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..domain import Payer
from ..mgrctl import Mgrctl, MgrctlRefused, root_values
from ..unverified import PROFILE_FORM_FIELDS, PROFILE_PARAM_NAMES, PROFILE_TYPE_LEGAL
from .values import as_int, chunks, join_address, placeholders, text

log = logging.getLogger(__name__)

Query = Callable[[str, Sequence[Any]], List[Tuple[Any, ...]]]

# Requisite (a Payer field) -> the names it may have, as a column of `profile` and as a
# profile.edit field. Every name is a fixed identifier: the only identifiers that reach SQL here.
REQUISITES: Dict[str, Tuple[str, ...]] = {
    **{("inn" if name == "vatnum" else name): (name,) for name in PROFILE_FORM_FIELDS},
    **PROFILE_PARAM_NAMES,
}
COUNTRIES = ("country_legal", "country_physical")   # hold a country id: read as its name
for _names in REQUISITES.values():
    assert all(n.isidentifier() and n.isascii() and n.islower() for n in _names), _names

MGRCTL_WORKERS = 4
MISSING = "missing"   # profile.edit's error type for an elid that does not exist

COLUMNS_SQL = ("SELECT column_name FROM information_schema.columns "
               "WHERE table_schema = DATABASE() AND table_name = 'profile'")
COUNTRY_NAMES_SQL = "SELECT id, name FROM country WHERE id IN ({})"

_columns: Dict[Hashable, frozenset[str]] = {}
_warned: set[Hashable] = set()
_lock = threading.Lock()


def profile_columns(query: Query, key: Hashable) -> frozenset[str]:
    """The columns of ``profile`` (lower case), read once per process for each ``key`` (database)."""
    with _lock:
        found = _columns.get(key)
    if found is None:
        found = frozenset(text(row[0]).lower() for row in query(COLUMNS_SQL, ()))
        with _lock:
            _columns[key] = found
    return found


def forget_columns() -> None:
    """Drop what was learned about the tables (tests that change a schema under a running process)."""
    with _lock:
        _columns.clear()
        _warned.clear()


def column_of(requisite: str, columns: frozenset[str]) -> Optional[str]:
    return next((name for name in REQUISITES[requisite] if name in columns), None)


def select_sql(columns: frozenset[str]) -> Tuple[str, Tuple[str, ...]]:
    """The payers' query over the columns that exist, with ``{}`` for the id list, and the
    requisites its columns after the four fixed ones hold, in order."""
    picked = [(req, col) for req in REQUISITES if (col := column_of(req, columns))]
    parts = ["p.id", "p.account", "p.name", "p.profiletype"]
    joins = []
    for n, (req, col) in enumerate(picked):
        if req in COUNTRIES:
            joins.append(f"LEFT JOIN country c{n} ON c{n}.id = p.{col}")
            parts.append(f"c{n}.name")
        else:
            parts.append(f"p.{col}")
    # Identifiers only from REQUISITES (fixed), and only those the table has; values stay bound.
    sql = f"SELECT {', '.join(parts)} FROM profile p {' '.join(joins)} WHERE p.id IN ({{}})"  # noqa: S608
    return " ".join(sql.split()), tuple(req for req, _ in picked)


def names_sql(columns: frozenset[str]) -> str:
    """id, name, contact person (empty where ``profile`` has no such column) of payers, ``{}`` the ids."""
    person = column_of("person", columns)
    person_sql = f"p.{person}" if person else "''"
    return f"SELECT p.id, p.name, {person_sql} FROM profile p WHERE p.id IN ({{}})"  # noqa: S608 - see above


def read_payers(query: Query, ids: Sequence[int], key: Hashable,
                mgrctl: Optional[Mgrctl]) -> Dict[int, Payer]:
    """Payers by id (missing ids are absent), requisites from columns and, for the rest, mgrctl."""
    columns = profile_columns(query, key)
    sql, held = select_sql(columns)
    rows: Dict[int, Tuple[int, str, int, Dict[str, str]]] = {}
    for part in chunks(ids):
        for row in query(sql.format(placeholders(len(part))), part):
            rows[int(row[0])] = (as_int(row[1]), text(row[2]), as_int(row[3]),
                                 {req: text(value) for req, value in zip(held, row[4:])})
    lacking = tuple(req for req in REQUISITES if req not in held)
    if lacking:
        legal = [pid for pid, (_, _, ptype, _) in rows.items() if ptype == PROFILE_TYPE_LEGAL]
        _fill_in(query, mgrctl, legal, lacking, rows, key)
    return {pid: _payer(pid, *row) for pid, row in rows.items()}


def _fill_in(query: Query, mgrctl: Optional[Mgrctl], ids: Sequence[int], lacking: Tuple[str, ...],
             rows: Dict[int, Tuple[int, str, int, Dict[str, str]]], key: Hashable) -> None:
    if mgrctl is None:
        _warn_once(key, lacking)
        return
    if not ids:
        return
    with ThreadPoolExecutor(max_workers=min(MGRCTL_WORKERS, len(ids))) as pool:
        answers = list(pool.map(lambda pid: profile_form(mgrctl, pid, lacking), ids))
    country_ids = {v for answer in answers for req, v in answer.items() if req in COUNTRIES and v}
    names = country_names(query, country_ids)
    for pid, answer in zip(ids, answers):
        values = rows[pid][3]
        for req in lacking:
            value = answer.get(req, "")
            values[req] = names.get(value, "") if req in COUNTRIES else value


def profile_form(mgrctl: Mgrctl, payer_id: int, wanted: Iterable[str]) -> Dict[str, str]:
    """The requisites ``wanted`` from ``profile.edit elid=N`` ({} when BILLmanager has no such payer)."""
    try:
        root = mgrctl.call("profile.edit", {"elid": str(payer_id)})
    except MgrctlRefused as exc:
        if exc.error_type == MISSING:
            return {}
        raise
    values = root_values(root)
    found: Dict[str, str] = {}
    for req in wanted:
        found[req] = next((values[n] for n in REQUISITES[req] if values.get(n)), "")
    return found


def country_names(query: Query, ids: Iterable[str]) -> Dict[str, str]:
    """Country id (as text) -> name, for the ids that exist."""
    wanted = sorted({int(i) for i in ids if i.isdigit()})
    names: Dict[str, str] = {}
    for part in chunks(wanted):
        for cid, name in query(COUNTRY_NAMES_SQL.format(placeholders(len(part))), part):
            names[str(int(cid))] = text(name)
    return names


def _warn_once(key: Hashable, lacking: Tuple[str, ...]) -> None:
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("profile has no column for %s and this host has no mgrctl: those requisites stay "
                "empty (see unverified.PROFILE_FORM_FIELDS)", ", ".join(lacking))


def _payer(pid: int, account: int, name: str, ptype: int, v: Mapping[str, str]) -> Payer:
    return Payer(
        id=pid, account_id=account, name=name, profiletype=ptype, person=v.get("person", ""),
        inn=v.get("inn", ""), kpp=v.get("kpp", ""), ogrn=v.get("ogrn", ""),
        address_legal=join_address(v.get("postcode_legal"), v.get("city_legal"), v.get("address_legal")),
        address_postal=join_address(v.get("postcode_physical"), v.get("city_physical"),
                                    v.get("address_physical")),
        email=v.get("email", ""), phone=v.get("phone", ""),
        country_legal=v.get("country_legal", ""), country_physical=v.get("country_physical", ""))
