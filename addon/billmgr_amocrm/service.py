"""The module's use cases: what the admin CLI (``sbin/amocrm``) and the panel both call.

Every function builds the adapters from the host (or takes an ``app`` from a
caller that already has one), returns a small dataclass with no secrets, and
turns failures into :class:`ServiceError` with Russian and English text and a hint.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Optional, Sequence

from .domain import KIND_ORDER, Kind
from .foundation.clock import utcnow

log = logging.getLogger(__name__)

CATALOG_TTL_SECONDS = 300
EXPORT_REQUEST = "export:requested"
# token states in which the module counts as authorized ("expired" refreshes by itself)
AUTHORIZED_STATES = ("ok", "expiring", "expired")


# --------------------------------------------------------------------------- errors
class ServiceError(Exception):
    """A failure the panel can show in the admin's language."""

    code = "error"

    def __init__(self, message_ru: str, message_en: str, hint: str = "", code: Optional[str] = None) -> None:
        self.message_ru = message_ru
        self.message_en = message_en
        self.hint = hint
        if code:
            self.code = code
        super().__init__(message_en)

    def message(self, lang: str = "en") -> str:
        return self.message_ru if lang == "ru" else self.message_en


class NotAuthorized(ServiceError):
    code = "not_authorized"


class AmoUnavailable(ServiceError):
    code = "amocrm_unavailable"


class BadInput(ServiceError):
    code = "bad_input"


class DatabaseError(ServiceError):
    code = "database"


def _translate(exc: BaseException) -> ServiceError:
    from .dbconf import DbConfigError
    from .errors import (
        AmoError,
        AuthorizationRefused,
        ConfigError,
        FixData,
        Reauthorize,
        RetryLater,
        Stop,
    )
    from .rules.errors import ConfigError as RulesConfigError

    text = str(exc)
    if isinstance(exc, AuthorizationRefused):
        return NotAuthorized("amoCRM отклонил авторизацию: " + text,
                             "amoCRM refused the authorization: " + text,
                             "Получите новый код авторизации в amoCRM (он живёт 20 минут) и проверьте ID "
                             "интеграции, секретный ключ и адрес перенаправления.")
    if isinstance(exc, Reauthorize):
        return NotAuthorized("Модуль не авторизован в amoCRM: " + text,
                             "The module is not authorized: " + text,
                             "Введите новый код авторизации в настройках модуля.")
    if isinstance(exc, Stop):
        return AmoUnavailable("amoCRM остановил обслуживание аккаунта: " + text,
                              "amoCRM stopped serving the account: " + text,
                              "Проверьте оплату аккаунта amoCRM или обратитесь в поддержку amoCRM.",
                              code="amocrm_stopped")
    if isinstance(exc, RetryLater):
        return AmoUnavailable("amoCRM временно недоступен: " + text, "amoCRM is unavailable: " + text,
                              "Повторите позже; очередь сохраняется.")
    if isinstance(exc, (ConfigError, RulesConfigError)):
        return BadInput("Неверные настройки: " + text, "Bad settings: " + text)
    if isinstance(exc, FixData):
        return BadInput("amoCRM отклонил данные: " + text, "amoCRM refused the data: " + text)
    if isinstance(exc, AmoError):
        return AmoUnavailable("Ошибка amoCRM: " + text, "amoCRM error: " + text)
    if isinstance(exc, DbConfigError):
        return DatabaseError("Не прочитан db.conf: " + text, "Cannot read db.conf: " + text)
    return ServiceError("Ошибка: " + text, "Error: " + text)


@contextmanager
def _using(app: Any) -> Iterator[Any]:
    """The caller's app, or one built for this call and closed after it; errors become ServiceError."""
    own = app is None
    try:
        if own:
            from .bootstrap import build

            app = build()
        yield app
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure reaches the admin as a ServiceError
        raise _translate(exc) from exc
    finally:
        if own and app is not None:
            app.close()


def _kind(value: Any) -> Kind:
    try:
        return value if isinstance(value, Kind) else Kind(str(value))
    except ValueError:
        names = ", ".join(k.value for k in Kind)
        raise BadInput(f"Неизвестный тип сущности {value!r} (ожидается {names})",
                       f"Unknown entity kind {value!r} (expected {names})") from None


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AuthResult:
    subdomain: str
    base_url: str
    access_expires_at: Optional[float]
    marker_field_ids: dict[str, int]
    export_requested: bool


@dataclass(frozen=True)
class ConnectionResult:
    account_name: str
    subdomain: str
    token_state: str
    token_expires_at: Optional[float]
    latency_ms: float
    rate_limit: float


@dataclass(frozen=True)
class ExportKindProgress:
    kind: str
    queued: int
    finished: bool


@dataclass(frozen=True)
class Status:
    token_state: str
    token_reason: str
    subdomain: str
    access_expires_at: Optional[float]
    refresh_expires_at: Optional[float]
    queue_depth: int
    queue_by_kind: dict[str, int]
    oldest_pending_age: Optional[float]
    failed: int
    failed_by_kind: dict[str, int]
    last_sync_at: Optional[datetime]
    linked: dict[str, int]
    export: list[ExportKindProgress]
    export_requested: bool


@dataclass(frozen=True)
class ExportResult:
    queued: dict[str, int]
    done: int
    skipped: int
    failed: int
    retried: int
    seconds: float
    stopped: Optional[str] = None
    stop_reason: str = ""


@dataclass(frozen=True)
class Progress:
    """Passed to ``run_export``'s callback after each batch."""

    phase: str          # sync (queue: reserved; run_export queues while it sends)
    total: int
    handled: int
    failed: int
    elapsed: float


@dataclass(frozen=True)
class FailedRow:
    queue_id: int
    kind: str
    billmgr_id: int
    attempts: int
    reason: str


@dataclass(frozen=True)
class Catalog:
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: float = 0.0


# --------------------------------------------------------------------------- use cases
def authorize(url: str, client_id: str, client_secret: str, redirect_uri: str, code: str, *,
              app: Any = None) -> AuthResult:
    """Exchange the one-time code, store secret + tokens, create the marker fields, queue the first export."""
    from .bootstrap import authorize as amo_authorize

    try:
        meta = amo_authorize(_paths(app), url, client_id, client_secret, redirect_uri, code)
    except Exception as exc:  # noqa: BLE001 - translated for the admin
        raise _translate(exc) from exc
    with _using(app) as live:
        _save_auth_settings(live, str(meta.base_url), client_id, redirect_uri)
        ids = live.ensure_marker_fields()
        first = live.store.export_progress(Kind.CONTACT) is None
        if first:
            live.store.set_cursor(EXPORT_REQUEST, _now_text())
        log.info("authorized in amoCRM %s; marker fields %s%s", meta.subdomain, ids,
                 "; initial export requested" if first else "")
        return AuthResult(subdomain=str(meta.subdomain), base_url=str(meta.base_url),
                          access_expires_at=meta.expires_at,
                          marker_field_ids={k.value: v for k, v in ids.items()}, export_requested=first)


def _save_auth_settings(app: Any, base_url: str, client_id: str, redirect_uri: str) -> None:
    """Record the account in amocrm.conf: the address amoCRM answered on, normalized by the client.

    The one exception is the emulator's loopback address (tests and the demo opt in with
    ``BILLMGR_AMOCRM_ALLOW_LOOPBACK=1``), which amocrm.conf's validator does not accept: the
    previous URL is kept there, and a warning says so (token.json holds the real one).
    """
    from .amocrm.urls import parse_account_url
    from .rules.config import rebuild
    from .settings import save_config

    auth = {"url": base_url, "client_id": client_id.strip(), "redirect_uri": redirect_uri.strip()}
    if parse_account_url(base_url).subdomain == "emulator":
        log.warning("amocrm.conf keeps no loopback account URL (%s); token.json records it", base_url)
        auth["url"] = app.config.auth.url
    config = rebuild(app.config, {"auth": auth})
    save_config(config, app.paths, app.presets)
    app.reload_rules(config)


def token_status(*, app: Any = None) -> Any:
    """The token and stop state (``amocrm.TokenStatus``) from the files only: no database, no network."""
    from .bootstrap import token_status as status_of

    return status_of(_paths(app))


def authorized(*, app: Any = None) -> bool:
    """Tokens exist and nothing asks for re-authorization (no network call)."""
    return token_status(app=app).state in AUTHORIZED_STATES


def secret_saved(*, app: Any = None) -> bool:
    """The integration's secret key is stored (its content is not read)."""
    from .bootstrap import client_secret

    return client_secret(_paths(app)).saved()


def stored_secret(*, app: Any = None) -> str:
    """The stored secret key, for an authorization that keeps it (the settings form's empty field)."""
    from .bootstrap import client_secret

    try:
        return client_secret(_paths(app)).read()
    except Exception as exc:  # noqa: BLE001 - translated for the admin
        raise _translate(exc) from exc


def account_url(url: str) -> str:
    """The amoCRM account address, checked and normalized (``https://x.amocrm.ru``)."""
    from .amocrm.urls import parse_account_url

    try:
        return parse_account_url(url).base_url
    except Exception as exc:  # noqa: BLE001 - translated for the admin
        raise _translate(exc) from exc


def check_connection(*, app: Any = None) -> ConnectionResult:
    """One live call to amoCRM: who we are connected to, how fast, and the token state."""
    from .bootstrap import token_status

    with _using(app) as live:
        started = time.perf_counter()
        account = live.amo().account()
        latency = (time.perf_counter() - started) * 1000
        tokens = token_status(live.paths)
        return ConnectionResult(account_name=str(account.get("name", "")),
                                subdomain=str(account.get("subdomain", "")), token_state=tokens.state,
                                token_expires_at=tokens.access_expires_at, latency_ms=round(latency, 1),
                                rate_limit=float(live.config.sync.rate_limit))


def status(*, app: Any = None) -> Status:
    """Token state, queue depth and age, failures, last sync, links and export progress (no network)."""
    from .bootstrap import token_status

    with _using(app) as live:
        tokens = token_status(live.paths)
        stats = live.store.queue_stats()
        now = utcnow()
        export = []
        for kind in KIND_ORDER:
            progress = live.store.export_progress(kind)
            if progress is not None:
                export.append(ExportKindProgress(kind.value, progress.enqueued,
                                                 progress.finished_at is not None))
        return Status(
            token_state=tokens.state, token_reason=tokens.reason, subdomain=tokens.subdomain,
            access_expires_at=tokens.access_expires_at, refresh_expires_at=tokens.refresh_expires_at,
            queue_depth=stats.depth, queue_by_kind={k.value: n for k, n in stats.pending.items()},
            oldest_pending_age=stats.oldest_pending_age(now), failed=stats.failed_total,
            failed_by_kind={k.value: n for k, n in stats.failed.items()},
            last_sync_at=live.store.last_sync_at(),
            linked={k.value: n for k, n in live.store.link_counts().items()}, export=export,
            export_requested=bool(live.store.get_cursor(EXPORT_REQUEST)))


def start_export(*, app: Any = None) -> None:
    """Ask the worker to export everything (returns at once; the panel's button)."""
    with _using(app) as live:
        live.store.set_cursor(EXPORT_REQUEST, _now_text())


def resync_all(*, app: Any = None) -> None:
    start_export(app=app)


class _ExportTotal:
    """The progress line's total while the queueing still runs beside the sending.

    Until the queueing ends it is an estimate (rows pending before + ids queued, which
    counts a re-queued pending row twice); when it ends, the rows still pending plus those
    handled by then (off by the batch in flight at most); after the pass, exact."""

    def __init__(self, pending_before: int) -> None:
        self.pending_before = pending_before
        self.queued = 0
        self.settled: Optional[int] = None

    def value(self, handled: int) -> int:
        total = self.settled if self.settled is not None else self.pending_before + self.queued
        return max(total, handled)


def run_export(progress: Optional[Callable[[Progress], None]] = None, *, app: Any = None) -> ExportResult:
    """Queue everything and sync it now, in this process (the CLI's ``export``), with progress.

    The queueing runs on a connection and thread of its own (``sync.export.Enqueuer``)
    while the first contacts are already being sent; the engine drains a kind only once
    all of it is queued, and each queued chunk is committed with its resumable cursor."""
    from .bootstrap import EXPORT_CHUNK
    from .sync.engine import Report
    from .sync.export import Enqueuer

    with _using(app) as live:
        started = time.monotonic()
        total = _ExportTotal(live.store.queue_stats().depth)
        engine = live.engine(EXPORT_CHUNK)
        side = live.side_connection()
        totals = Report()

        def report_progress() -> None:
            if progress:
                progress(Progress("sync", total.value(totals.handled), totals.handled, totals.failed,
                                  time.monotonic() - started))

        def on_chunk(kind: Kind, count: int) -> None:
            total.queued += count

        def on_queued() -> None:
            # on the queueing thread and its connection, once everything is queued
            handled = totals.handled
            total.settled = handled + side.store.queue_stats().depth
            # the request is answered once everything is queued (as the worker does)
            side.store.set_cursor(EXPORT_REQUEST, "")

        def on_batch(kind: Kind, batch: Report) -> None:
            totals.add(batch)
            report_progress()

        try:
            enqueuer = Enqueuer(side.store, side.billing, on_chunk=on_chunk, on_done=on_queued).start()
            engine.on_batch = on_batch
            engine.feed = enqueuer
            try:
                report = engine.run_pass()
            finally:
                # a stopped pass (amoCRM unavailable) still leaves everything queued for the worker
                counts = enqueuer.finish()
        finally:
            side.close()
        total.settled = totals.handled + live.store.queue_stats().depth
        report_progress()
        return ExportResult(queued={k.value: n for k, n in counts.queued.items()}, done=report.done,
                            skipped=report.skipped, failed=report.failed, retried=report.retried,
                            seconds=time.monotonic() - started, stopped=report.stopped,
                            stop_reason=report.stop_reason)


def sync_now(*, app: Any = None) -> Any:
    """One worker pass in this process (spool -> queue -> amoCRM)."""
    from .worker import sync_once

    with _using(app) as live:
        return sync_once(live)


def reconcile(*, app: Any = None) -> dict[str, int]:
    from .sync.reconcile import reconcile as run

    with _using(app) as live:
        queued = run(live.store, live.billing, live.rules, utcnow())
        return {k.value: n for k, n in queued.items()}


def resync(kind: Any, ids: Sequence[int], *, app: Any = None) -> int:
    """Queue these entities for a fresh push of their current state."""
    kind = _kind(kind)
    with _using(app) as live, live.store.transaction():
        for billmgr_id in ids:
            live.store.enqueue(kind, int(billmgr_id), "resync")
    return len(ids)


def retry_failed(kind: Any = None, ids: Optional[Sequence[int]] = None, *, app: Any = None) -> int:
    """Revive dead-letter rows (all, of a kind, or by queue row id); returns how many."""
    chosen = _kind(kind) if kind else None
    with _using(app) as live:
        return int(live.store.retry_failed(chosen, list(ids) if ids is not None else None))


def failed(kind: Any = None, limit: int = 100, *, app: Any = None) -> list[FailedRow]:
    chosen = _kind(kind) if kind else None
    with _using(app) as live:
        return [FailedRow(f.id, f.kind.value, f.billmgr_id, f.attempts, f.last_error)
                for f in live.store.failed(chosen, limit=limit)]


def unlink(kind: Any, ids: Sequence[int], *, app: Any = None) -> int:
    """Forget the amoCRM entities of these BILLmanager ids (the next sync creates new ones)."""
    kind = _kind(kind)
    with _using(app) as live:
        return int(live.store.delete_links(kind, [int(i) for i in ids]))


def bindings(kind: Any = None, state: Optional[str] = None, search: Optional[str] = None,
             order: str = "billmgr_id", descending: bool = False, limit: int = 50, offset: int = 0,
             *, app: Any = None) -> Any:
    """The bindings table (store.BindingsPage) with readable names."""
    chosen = _kind(kind) if kind else None
    with _using(app) as live:
        return live.store.bindings(chosen, state, search, order, descending, limit, offset)


def catalog(*, refresh: bool = False, app: Any = None) -> Catalog:
    """amoCRM custom fields, pipelines and users for the settings forms; cached briefly in state_dir."""
    from .foundation.files import write_atomic

    with _using(app) as live:
        cache = live.paths.state_dir / "catalog.json"
        if not refresh and cache.exists() and time.time() - cache.stat().st_mtime < CATALOG_TTL_SECONDS:
            data = json.loads(cache.read_text(encoding="utf-8"))
            return Catalog(data["fields"], data["pipelines"], data["users"], data["fetched_at"])
        amo = live.amo()
        result = Catalog(fields={k.amo_entity: amo.custom_fields(k.amo_entity) for k in KIND_ORDER},
                         pipelines=amo.pipelines(), users=amo.users(), fetched_at=time.time())
        write_atomic(cache, json.dumps({"fields": result.fields, "pipelines": result.pipelines,
                                        "users": result.users, "fetched_at": result.fetched_at},
                                       ensure_ascii=False))
        return result


def _paths(app: Any) -> Any:
    from .paths import host_paths

    return app.paths if app is not None else host_paths()


def _now_text() -> str:
    return utcnow().isoformat()
