"""BILLmanager's own tables -> domain snapshots: the ONE module with SQL on them.

Implements ``ports.BillingReader``::

    from billmgr_amocrm.billing import BillingDb
    from billmgr_amocrm import db

    billing = BillingDb(lambda: db.connect(settings))     # factory: owns an autocommit connection
    billing.clients([1, 2])        # -> {id: Client}   (missing ids are simply absent)
    billing.payers([5])            # -> {id: Payer}    (any profiletype)
    billing.services([7, 8])       # -> {id: Service}  (with every itemparam in .params)
    billing.services([7], params={"domain"})   # only the itemparams the rules read
    for ids in billing.iter_ids(Kind.LEAD, batch=1000): ...   # keyset pages, ascending
    billing.close()

Passing a factory is recommended: BillingDb then opens its connection with
autocommit, so every read sees the latest committed panel data, and reopens it when
it was closed. A connection passed directly is used as it is (with autocommit off,
its REPEATABLE READ snapshot is the caller's business).

What is assumed about BILLmanager's schema is marked in ``unverified.py`` and in
``tests/sandbox/schema.sql`` ([C] confirmed / [U] assumed columns). The payer
requisite columns (vatnum, kpp, ogrn, email, phone, *_legal / *_physical address
parts) are [U]; every other column is [C].

Dirty data never raises: NULLs become "" / None / 0, bytes are decoded as UTF-8 with
replacement characters, zero or invalid dates become None, text is stripped.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Collection, Iterator, Optional, Sequence, Union

import pymysql
import pymysql.connections

from .domain import Client, ClientUser, Kind, Payer, Service
from .unverified import PROFILE_TYPE_LEGAL

Connection = pymysql.connections.Connection
ConnectionFactory = Callable[[], Connection]

# IN (...) lists never grow past this many bound parameters.
IN_CHUNK = 500
SUPPORTED_LANGS = ("ru", "en")

# Service parameters that best name a service, in order of preference.
SERVICE_LABEL_PARAMS = ("domain", "hostname", "ip", "name")


# --------------------------------------------------------------------------- value cleaning
def text(value: Any) -> str:
    """Any column value as clean text: NULL -> "", bytes decoded leniently, stripped."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    return str(value).strip()


def as_date(value: Any) -> Optional[date]:
    """A DATE/DATETIME column as a date; zero dates ('0000-00-00' arrives as a str) -> None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def as_datetime(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())  # BILLmanager stores naive local times
    return None


def as_int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_opt_int(value: Any) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal("0")
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(text(value) or "0")
    except InvalidOperation:
        return Decimal("0")


def join_address(*parts: Any) -> str:
    """Postcode, city and street into one line, skipping blanks."""
    return ", ".join(p for p in (text(x) for x in parts) if p)


def unique_ids(ids: Sequence[int]) -> list[int]:
    """Distinct positive integer ids in first-seen order (junk is dropped, not queried)."""
    seen: dict[int, None] = {}
    for raw in ids:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            continue
        if value > 0:
            seen.setdefault(value, None)
    return list(seen)


def chunks(ids: Sequence[int], size: int = IN_CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def placeholders(count: int) -> str:
    """``%s, %s, ...``: built from the COUNT of values only, never from the values."""
    return ", ".join(["%s"] * count)


# --------------------------------------------------------------------------- SQL
_ACCOUNT_SQL = (
    "SELECT a.id, a.name, a.registration_date, c.name, c.iso2 "
    "FROM account a LEFT JOIN country c ON c.id = a.country WHERE a.id IN ({})"
)
# The client's project: the lowest project id it is linked to (usually the only one).
_PROJECT_SQL = (
    "SELECT ap.account, p.id, p.name FROM account2project ap "
    "JOIN project p ON p.id = ap.project WHERE ap.account IN ({}) ORDER BY ap.account, p.id"
)
_USER_SQL = (
    "SELECT id, account, name, realname, email, phone, enabled FROM user "
    "WHERE account IN ({}) ORDER BY account, id"
)
_PROFILE_SQL = (
    "SELECT p.id, p.account, p.name, p.profiletype, p.person, p.vatnum, p.kpp, p.ogrn, p.email, "
    "p.phone, c.name, p.postcode_legal, p.city_legal, p.address_legal, p.postcode_physical, "
    "p.city_physical, p.address_physical "
    "FROM profile p LEFT JOIN country c ON c.id = p.country WHERE p.id IN ({})"
)
# Localized names: name_<lang> when filled, else the default name. {lang} comes only
# from SUPPORTED_LANGS.
_ITEM_SQL = (
    "SELECT i.id, i.account, i.status, i.pricelist, "
    "COALESCE(NULLIF(pl.name_{lang}, ''), pl.name), it.intname, "
    "COALESCE(NULLIF(it.name_{lang}, ''), it.name), i.cost, cur.iso, i.period, "
    "i.createdate, i.opendate, i.expiredate, i.autoprolong, i.processingmodule "
    "FROM item i LEFT JOIN pricelist pl ON pl.id = i.pricelist "
    "LEFT JOIN itemtype it ON it.id = pl.itemtype "
    "LEFT JOIN currency cur ON cur.id = i.currency WHERE i.id IN ({in_})"
)
_PARAM_SQL = "SELECT item, intname, value FROM itemparam WHERE item IN ({}) ORDER BY item, id"
_NAMED_PARAM_SQL = ("SELECT item, intname, value FROM itemparam WHERE item IN ({}) AND intname IN ({}) "
                    "ORDER BY item, id")

_ID_PAGE_SQL = {
    Kind.CONTACT: "SELECT id FROM account WHERE id > %s ORDER BY id LIMIT %s",
    Kind.COMPANY: "SELECT id FROM profile WHERE profiletype = %s AND id > %s ORDER BY id LIMIT %s",
    Kind.LEAD: "SELECT id FROM item WHERE id > %s ORDER BY id LIMIT %s",
}
_CHANGED_PAGE_SQL = (
    "SELECT id FROM item WHERE id > %s AND "
    "(createdate >= %s OR opendate >= %s OR expiredate >= %s) ORDER BY id LIMIT %s"
)


class BillingDb:
    """``ports.BillingReader`` over a PyMySQL connection (see the module docstring)."""

    def __init__(self, connection: Union[Connection, ConnectionFactory], *, lang: str = "ru",
                 changed_batch: int = 1000) -> None:
        if lang not in SUPPORTED_LANGS:
            raise ValueError(f"lang must be one of {SUPPORTED_LANGS}, not {lang!r}")
        self.lang = lang
        self.changed_batch = changed_batch
        self._factory: Optional[ConnectionFactory] = None
        self._conn: Optional[Connection] = None
        if isinstance(connection, Connection):
            self._conn = connection
        else:
            self._factory = connection

    # connection ------------------------------------------------------------
    def _connection(self) -> Connection:
        if self._factory is not None and (self._conn is None or not self._conn.open):
            self._conn = self._factory()
            self._conn.autocommit(True)
        if self._conn is None:
            raise RuntimeError("BillingDb has no connection")
        return self._conn

    def close(self) -> None:
        """Close the connection if BillingDb opened it (a passed-in one is the caller's)."""
        if self._factory is not None and self._conn is not None and self._conn.open:
            self._conn.close()
        self._conn = None if self._factory is not None else self._conn

    def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cur:
            cur.execute(sql, tuple(args))
            return list(cur.fetchall())

    def _rows_in(self, sql_template: str, ids: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        for part in chunks(ids):
            yield from self._rows(sql_template.format(placeholders(len(part))), part)

    # snapshots -------------------------------------------------------------
    def clients(self, ids: Sequence[int]) -> dict[int, Client]:
        wanted = unique_ids(ids)
        if not wanted:
            return {}
        users: dict[int, list[ClientUser]] = {}
        for uid, account, login, realname, email, phone, enabled in self._rows_in(_USER_SQL, wanted):
            users.setdefault(int(account), []).append(ClientUser(
                id=int(uid), login=text(login), realname=text(realname), email=text(email),
                phone=text(phone), enabled=text(enabled).lower() == "on"))
        projects: dict[int, tuple[int, str]] = {}
        for account, project_id, project_name in self._rows_in(_PROJECT_SQL, wanted):
            projects.setdefault(int(account), (int(project_id), text(project_name)))
        result: dict[int, Client] = {}
        for aid, name, registered, country_name, _iso2 in self._rows_in(_ACCOUNT_SQL, wanted):
            account_id = int(aid)
            project = projects.get(account_id)
            result[account_id] = Client(
                id=account_id, name=text(name), registration_date=as_datetime(registered),
                project_id=project[0] if project else None, project_name=project[1] if project else "",
                country=text(country_name), users=tuple(users.get(account_id, ())))
        return result

    def payers(self, ids: Sequence[int]) -> dict[int, Payer]:
        wanted = unique_ids(ids)
        result: dict[int, Payer] = {}
        for row in self._rows_in(_PROFILE_SQL, wanted):
            (pid, account, name, ptype, person, inn, kpp, ogrn, email, phone, country,
             pc_l, city_l, addr_l, pc_p, city_p, addr_p) = row
            result[int(pid)] = Payer(
                id=int(pid), account_id=as_int(account), name=text(name), profiletype=as_int(ptype),
                person=text(person), inn=text(inn), kpp=text(kpp), ogrn=text(ogrn),
                address_legal=join_address(pc_l, city_l, addr_l),
                address_postal=join_address(pc_p, city_p, addr_p),
                email=text(email), phone=text(phone), country=text(country))
        return result

    def services(self, ids: Sequence[int], params: Optional[Collection[str]] = None) -> dict[int, Service]:
        """Services with their itemparams: all of them, or only those named in ``params``.

        Why the filter: a service may carry dozens of itemparams and the rules read a
        few; every row costs the export CPU time to fetch and decode.
        """
        wanted = unique_ids(ids)
        if not wanted:
            return {}
        by_item: dict[int, dict[str, str]] = {}
        for item, intname, value in self._param_rows(wanted, params):
            key = text(intname)
            if key:
                # Rows come ordered by id: a repeated name keeps its latest value.
                by_item.setdefault(int(item), {})[key] = text(value)
        sql = _ITEM_SQL.format(lang=self.lang, in_="{}")
        result: dict[int, Service] = {}
        for row in self._rows_in(sql, wanted):
            (iid, account, status, pricelist, pl_name, it_intname, it_name, cost, iso, period,
             created, opened, expires, autoprolong, module) = row
            item_id = int(iid)
            result[item_id] = Service(
                id=item_id, account_id=as_int(account), status=as_int(status),
                pricelist_id=as_int(pricelist), pricelist_name=text(pl_name),
                itemtype_intname=text(it_intname), itemtype_name=text(it_name), cost=as_decimal(cost),
                currency_iso=text(iso).upper(), period=as_int(period), createdate=as_date(created),
                opendate=as_date(opened), expiredate=as_date(expires), autoprolong=as_int(autoprolong),
                processingmodule=as_opt_int(module), params=by_item.get(item_id, {}))
        return result

    def _param_rows(self, wanted: Sequence[int], names: Optional[Collection[str]]
                    ) -> Iterator[tuple[Any, ...]]:
        if names is None:
            yield from self._rows_in(_PARAM_SQL, wanted)
            return
        chosen = sorted(set(names))
        if not chosen:
            return
        for part in chunks(wanted):
            sql = _NAMED_PARAM_SQL.format(placeholders(len(part)), placeholders(len(chosen)))
            yield from self._rows(sql, [*part, *chosen])

    # id streams ------------------------------------------------------------
    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        """All ids of a kind in ascending order, streamed in batches (payers: profiletype 2 only).

        Keyset pagination: each page is its own short query, so nothing stays open
        between batches and rows added meanwhile with higher ids are still seen.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        sql = _ID_PAGE_SQL[kind]
        last = max(0, int(after_id))
        while True:
            args: tuple[Any, ...] = (last, batch)
            if kind is Kind.COMPANY:
                args = (PROFILE_TYPE_LEGAL, *args)
            page = [int(r[0]) for r in self._rows(sql, args)]
            if not page:
                return
            yield page
            if len(page) < batch:
                return
            last = page[-1]

    def services_changed_since(self, since: datetime) -> Iterator[list[int]]:
        """Items created, opened or prolonged on or after ``since``'s date, in id batches.

        BILLmanager keeps dates, not change times, and no prolongation history, so a
        prolongation is only visible as an expiredate on or after that date. The
        result is therefore a superset: it also holds every item whose expiredate has
        not passed yet. Callers compare what they last synced (the worker's
        fingerprint) to skip unchanged ones.
        """
        day = since.date() if isinstance(since, datetime) else since
        last = 0
        while True:
            args = (last, day, day, day, self.changed_batch)
            page = [int(r[0]) for r in self._rows(_CHANGED_PAGE_SQL, args)]
            if not page:
                return
            yield page
            if len(page) < self.changed_batch:
                return
            last = page[-1]

    # lookups ---------------------------------------------------------------
    def account_of_user(self, user_id: int) -> Optional[int]:
        rows = self._rows("SELECT account FROM user WHERE id = %s", (user_id,))
        return as_opt_int(rows[0][0]) if rows else None

    def account_by_login_or_email(self, value: str) -> Optional[int]:
        """The client whose user has this login, else whose user has this email.

        Emails are compared trimmed and case-insensitively. When several clients share
        the email the newest one wins: a create event (registration) is about it.
        """
        needle = text(value)
        if not needle:
            return None
        rows = self._rows("SELECT account FROM user WHERE name = %s ORDER BY id LIMIT 1", (needle,))
        if rows:
            return as_opt_int(rows[0][0])
        rows = self._rows("SELECT MAX(account) FROM user WHERE LOWER(TRIM(email)) = LOWER(%s)", (needle,))
        return as_opt_int(rows[0][0]) if rows else None

    def newest_payer_of(self, account_id: int) -> Optional[int]:
        rows = self._rows("SELECT MAX(id) FROM profile WHERE account = %s", (account_id,))
        return as_opt_int(rows[0][0]) if rows else None

    def legal_payers_of(self, account_id: int) -> list[int]:
        rows = self._rows("SELECT id FROM profile WHERE account = %s AND profiletype = %s ORDER BY id",
                          (account_id, PROFILE_TYPE_LEGAL))
        return [int(r[0]) for r in rows]

    def legal_payers_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its legal-entity payer ids, ascending (one query per IN chunk).

        Accounts without a legal payer are absent; the batch form of ``legal_payers_of``."""
        found: dict[int, list[int]] = {}
        for part in chunks(unique_ids(account_ids)):
            rows = self._rows(f"SELECT account, id FROM profile WHERE profiletype = %s "  # noqa: S608
                              f"AND account IN ({placeholders(len(part))}) ORDER BY account, id",
                              (PROFILE_TYPE_LEGAL, *part))
            for account, payer_id in rows:
                found.setdefault(int(account), []).append(int(payer_id))
        return found

    def names(self, kind: Kind, ids: Sequence[int]) -> dict[int, str]:
        """Readable names for the bindings table; ids that do not exist are absent.

        A client or payer without a name shows as "#<id>"; a service as
        "<tariff> <domain|hostname|ip>" (e.g. "VDS-1 vps.example.com").
        """
        wanted = unique_ids(ids)
        if kind is Kind.CONTACT:
            rows = self._rows_in("SELECT a.id, a.name, (SELECT u.realname FROM user u WHERE u.account = a.id "
                                 "ORDER BY u.id LIMIT 1) FROM account a WHERE a.id IN ({})", wanted)
            return {int(r[0]): text(r[1]) or text(r[2]) or f"#{int(r[0])}" for r in rows}
        if kind is Kind.COMPANY:
            rows = self._rows_in("SELECT id, name, person FROM profile WHERE id IN ({})", wanted)
            return {int(r[0]): text(r[1]) or text(r[2]) or f"#{int(r[0])}" for r in rows}
        result: dict[int, str] = {}
        for item_id, service in self.services(wanted).items():
            label = next((service.params[p] for p in SERVICE_LABEL_PARAMS if service.params.get(p)), "")
            title = service.pricelist_name or service.itemtype_name or f"#{item_id}"
            result[item_id] = f"{title} {label}".strip()
        return result

    def service_dates(self, ids: Sequence[int]) -> dict[int, tuple[Optional[date], Optional[date], int]]:
        """item id -> (opendate, expiredate, status): a cheap check for what moved."""
        rows = self._rows_in("SELECT id, opendate, expiredate, status FROM item WHERE id IN ({})",
                             unique_ids(ids))
        return {int(r[0]): (as_date(r[1]), as_date(r[2]), as_int(r[3])) for r in rows}
