"""``BillingDb``: ``ports.BillingReader`` over a PyMySQL connection (see the package docstring)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Collection, Iterator, Optional, Sequence, Union

import pymysql
import pymysql.connections

from ..domain import Client, ClientUser, Kind, Payer, Service
from ..mgrctl import Mgrctl
from ..unverified import PROFILE_TYPE_LEGAL
from . import queries as q
from .payers import names_sql, profile_columns, read_payers
from .values import (
    as_date,
    as_datetime,
    as_int,
    as_opt_decimal,
    as_opt_int,
    chunks,
    id_pages,
    placeholders,
    suspend_kind,
    text,
    unique_ids,
)

Connection = pymysql.connections.Connection
ConnectionFactory = Callable[[], Connection]

SUPPORTED_LANGS = ("ru", "en")

# Service parameters that best name a service, in order of preference.
SERVICE_LABEL_PARAMS = ("domain", "hostname", "ip", "name")


class BillingDb:
    """``ports.BillingReader`` over a PyMySQL connection (see the package docstring)."""

    def __init__(self, connection: Union[Connection, ConnectionFactory], *, lang: str = "ru",
                 changed_batch: int = 1000, mgrctl: Optional[Mgrctl] = None) -> None:
        if lang not in SUPPORTED_LANGS:
            raise ValueError(f"lang must be one of {SUPPORTED_LANGS}, not {lang!r}")
        self.lang = lang
        self.changed_batch = changed_batch
        self.mgrctl = mgrctl
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

    def _database(self) -> tuple[Any, ...]:
        """Which database this reader reads: the key of what is learned about its tables."""
        conn = self._connection()
        return (conn.host, conn.port, conn.db)

    # snapshots -------------------------------------------------------------
    def clients(self, ids: Sequence[int]) -> dict[int, Client]:
        wanted = unique_ids(ids)
        if not wanted:
            return {}
        users: dict[int, list[ClientUser]] = {}
        for uid, account, login, realname, email, phone, enabled in self._rows_in(q.USERS, wanted):
            users.setdefault(int(account), []).append(ClientUser(
                id=int(uid), login=text(login), realname=text(realname), email=text(email),
                phone=text(phone), enabled=text(enabled).lower() == "on"))
        projects: dict[int, tuple[int, str]] = {}
        for account, project_id, project_name in self._rows_in(q.PROJECTS, wanted):
            projects.setdefault(int(account), (int(project_id), text(project_name)))
        result: dict[int, Client] = {}
        for aid, name, registered, country_name, _iso2 in self._rows_in(q.ACCOUNTS, wanted):
            account_id = int(aid)
            project = projects.get(account_id)
            result[account_id] = Client(
                id=account_id, name=text(name), registration_date=as_datetime(registered),
                project_id=project[0] if project else None, project_name=project[1] if project else "",
                country=text(country_name), users=tuple(users.get(account_id, ())))
        return result

    def payers(self, ids: Sequence[int]) -> dict[int, Payer]:
        """Payers with their requisites as BILLmanager exposes them (see ``billing.payers``)."""
        return read_payers(self._rows, unique_ids(ids), self._database(), self.mgrctl)

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
        sql = q.ITEMS.format(lang=self.lang, in_="{}")
        result: dict[int, Service] = {}
        for row in self._rows_in(sql, wanted):
            (iid, account, status, pricelist, name, pl_name, it_intname, it_name, cost, iso, period,
             created, opened, expires, autoprolong, module, *suspended) = row
            item_id = int(iid)
            result[item_id] = Service(
                id=item_id, account_id=as_int(account), status=as_int(status),
                pricelist_id=as_int(pricelist), pricelist_name=text(pl_name),
                itemtype_intname=text(it_intname), itemtype_name=text(it_name), cost=as_opt_decimal(cost),
                currency_iso=text(iso).upper(), period=as_int(period), createdate=as_date(created),
                opendate=as_date(opened), expiredate=as_date(expires), autoprolong=as_int(autoprolong),
                processingmodule=as_opt_int(module), params=by_item.get(item_id, {}), name=text(name),
                suspend_kind=suspend_kind(as_int(status), suspended))
        return result

    def _param_rows(self, wanted: Sequence[int], names: Optional[Collection[str]]
                    ) -> Iterator[tuple[Any, ...]]:
        if names is None:
            yield from self._rows_in(q.PARAMS, wanted)
            return
        chosen = sorted(set(names))
        if not chosen:
            return
        for part in chunks(wanted):
            sql = q.NAMED_PARAMS.format(placeholders(len(part)), placeholders(len(chosen)))
            yield from self._rows(sql, [*part, *chosen])

    # id streams ------------------------------------------------------------
    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        """All ids of a kind in ascending order, streamed in batches (payers: profiletype 2 only).

        Keyset pagination: each page is its own short query, so nothing stays open
        between batches and rows added meanwhile with higher ids are still seen.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        sql = q.ID_PAGE[kind]
        legal: tuple[Any, ...] = (PROFILE_TYPE_LEGAL,) if kind is Kind.COMPANY else ()
        yield from id_pages(lambda last: self._rows(sql, (*legal, last, batch)), max(0, int(after_id)), batch)

    def public_url(self) -> str:
        """The first project's ``billurl`` (BILLmanager's public address, as its storefront links
        to it), '' when none is set: what the module's ``billmgr_url`` setting is prefilled with."""
        rows = self._rows(q.PUBLIC_URL, ())
        return text(rows[0][0]) if rows else ""

    def item_statuses(self, batch: int = 1000) -> Iterator[list[tuple[int, int]]]:
        """(item id, status) of every item, ascending, a page at a time (keyset pagination,
        as ``iter_ids``): the reconciler's lifecycle scan compares them with the last events."""
        last = 0
        while True:
            page = [(int(r[0]), as_int(r[1])) for r in self._rows(q.STATUS_PAGE, (last, batch))]
            if not page:
                return
            yield page
            if len(page) < batch:
                return
            last = page[-1][0]

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
            page = [int(r[0]) for r in self._rows(q.CHANGED_PAGE, args)]
            if not page:
                return
            yield page
            if len(page) < self.changed_batch:
                return
            last = page[-1]

    # lookups ---------------------------------------------------------------
    def account_of_user(self, user_id: int) -> Optional[int]:
        rows = self._rows(q.ACCOUNT_OF_USER, (user_id,))
        return as_opt_int(rows[0][0]) if rows else None

    def account_by_login(self, login: str) -> Optional[int]:
        """The client whose user has this login, when exactly one client has (else None)."""
        needle = text(login)
        if not needle:
            return None
        rows = self._rows(q.ACCOUNTS_BY_LOGIN, (needle,))
        return as_opt_int(rows[0][0]) if len(rows) == 1 else None

    def account_by_login_or_email(self, value: str) -> Optional[int]:
        """The client whose user has this login (when only one has), else whose user has this email.

        Emails are compared trimmed and case-insensitively. When several clients share
        the email the newest one wins: a create event (registration) is about it.
        """
        needle = text(value)
        if not needle:
            return None
        account = self.account_by_login(needle)
        if account:
            return account
        rows = self._rows(q.ACCOUNT_BY_EMAIL, (needle,))
        return as_opt_int(rows[0][0]) if rows else None

    def newest_payer_of(self, account_id: int) -> Optional[int]:
        rows = self._rows(q.NEWEST_PAYER, (account_id,))
        return as_opt_int(rows[0][0]) if rows else None

    def legal_payers_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its legal-entity payer ids, ascending (one query per IN chunk).

        Accounts without a legal payer are absent."""
        found: dict[int, list[int]] = {}
        for part in chunks(unique_ids(account_ids)):
            rows = self._rows(q.LEGAL_PAYERS_BY_ACCOUNT.format(placeholders(len(part))),
                              (PROFILE_TYPE_LEGAL, *part))
            for account, payer_id in rows:
                found.setdefault(int(account), []).append(int(payer_id))
        return found

    def services_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its service (item) ids, ascending; accounts without one are absent."""
        found: dict[int, list[int]] = {}
        for account, item_id in self._rows_in(q.SERVICES_BY_ACCOUNT, unique_ids(account_ids)):
            found.setdefault(int(account), []).append(int(item_id))
        return found

    def accounts_of(self, kind: Kind, ids: Sequence[int]) -> dict[int, int]:
        """id -> the client (account) it belongs to, for those of ``ids`` BILLmanager still has."""
        return {int(i): int(account) for i, account in self._rows_in(q.ACCOUNTS_OF[kind], unique_ids(ids))}

    def names(self, kind: Kind, ids: Sequence[int]) -> dict[int, str]:
        """Readable names for the bindings table; ids that do not exist are absent.

        A client or payer without a name shows as "#<id>"; a service by its own name
        (``item.name``), else as "<tariff> <domain|hostname|ip>" (e.g. "VDS-1 vps.example.com").
        """
        wanted = unique_ids(ids)
        if kind is Kind.CONTACT:
            rows = self._rows_in(q.CLIENT_NAMES, wanted)
            return {int(r[0]): text(r[1]) or text(r[2]) or f"#{int(r[0])}" for r in rows}
        if kind is Kind.COMPANY:
            sql = names_sql(profile_columns(self._rows, self._database()))
            rows = self._rows_in(sql, wanted)
            return {int(r[0]): text(r[1]) or text(r[2]) or f"#{int(r[0])}" for r in rows}
        result: dict[int, str] = {}
        for item_id, service in self.services(wanted).items():
            if service.name:
                result[item_id] = service.name
                continue
            label = next((service.params[p] for p in SERVICE_LABEL_PARAMS if service.params.get(p)), "")
            title = service.pricelist_name or service.itemtype_name or f"#{item_id}"
            result[item_id] = f"{title} {label}".strip()
        return result
