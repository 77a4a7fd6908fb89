"""The worker's periodic duties, on the same cadence whether it runs as a daemon or from cron.

Each duty's last run is kept where it belongs, never in a process's memory, so a cron
``--once`` that starts every minute does exactly what the daemon does:

    reconcile   every hour (``WorkerSettings.reconcile_every``); database-wide, so its last
                run is a cursor in ``amocrm_cursor`` and only the engine lease holder runs it;
                it also finds payments no event brought (sync/notes.py)
    renewals    renewal tasks (sync/renewals.py), on the reconciler's cadence and scope: the
                lease serializes it with every engine, so no two processes send one task
    keep-alive  every day (``keep_alive_every``); per host, because each host keeps its own
                token pair: ``var/amocrm/schedule.json``

A duty that fails is logged and tried again at the next run (its time is not recorded).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Mapping, Optional

from .failures import log_failure
from .foundation.clock import as_utc, seconds_between, utcnow
from .foundation.files import write_atomic

if TYPE_CHECKING:
    from .bootstrap import App

log = logging.getLogger("billmgr_amocrm.worker")

CURSOR_PREFIX = "schedule:"
DATABASE, HOST = "database", "host"


@dataclass(frozen=True)
class Duty:
    name: str
    every: float                 # seconds
    scope: str                   # database (lease holder only, cursor) | host (state file)
    run: Callable[[App], None]
    # due now whatever its interval when this says so (None: by the interval alone)
    due_now: Optional[Callable[[App], bool]] = None


def reconcile(app: App) -> None:
    from .sync.notes import reconcile_payments
    from .sync.reconcile import reconcile as queue_missing

    queue_missing(app.store, app.billing, app.rules, utcnow(), app.stored_context(),
                  settings_version=app.settings.source_version)
    reconcile_payments(app.store, app.billing, app.config.notes, utcnow())


def renewals(app: App) -> None:
    from .errors import Reauthorize, Stop
    from .service.activities import renewals_under_lease

    try:
        run = renewals_under_lease(app)
    except (Reauthorize, Stop) as exc:
        log.warning("renewal tasks skipped: %s", exc)
        return
    if run.waiting:
        log.info("renewal tasks wait: %s", run.waiting)


def keep_alive(app: App) -> None:
    from .errors import Reauthorize, Stop

    try:
        if app.amo().keep_alive():
            log.info("token keep-alive: the token pair was rotated")
    except (Reauthorize, Stop) as exc:
        log.warning("token keep-alive skipped: %s", exc)


def settings_unchecked(app: App) -> bool:
    """Settings saved since the last re-check (sync/reconcile.py): the reconciler runs now, not
    within the hour, and brings what was sent to them."""
    from .sync.reconcile import settings_unchecked as unchecked

    return app.stored_context() is not None and unchecked(app.store, app.settings.source_version)


def duties(reconcile_every: float, keep_alive_every: float) -> tuple[Duty, ...]:
    return (Duty("reconcile", reconcile_every, DATABASE, reconcile, due_now=settings_unchecked),
            Duty("renewals", reconcile_every, DATABASE, renewals),
            Duty("keep_alive", keep_alive_every, HOST, keep_alive))


def run_due(app: App, plan: tuple[Duty, ...], *, holds_lease: bool,
            now: Optional[Callable[[], datetime]] = None) -> list[str]:
    """Run every duty whose time has come; the names of those that ran."""
    clock = now or utcnow
    ran = []
    host_times = _read_host(app)
    for duty in plan:
        if duty.scope == DATABASE and not holds_lease:
            continue
        last = _last(app, duty, host_times)
        if last is not None and seconds_between(last, clock()) < duty.every and \
                not (duty.due_now is not None and duty.due_now(app)):
            continue
        try:
            duty.run(app)
        except Exception as exc:  # noqa: BLE001 - one duty failing must not stop the worker or the others
            log_failure(log, f"periodic {duty.name} failed, tried again at the next run", exc)
            continue
        stamp = as_utc(clock()).isoformat()
        if duty.scope == DATABASE:
            app.store.set_cursor(CURSOR_PREFIX + duty.name, stamp)
        else:
            host_times[duty.name] = stamp
            write_atomic(app.paths.schedule_file, json.dumps(host_times, sort_keys=True) + "\n")
        ran.append(duty.name)
    return ran


def _last(app: App, duty: Duty, host_times: Mapping[str, str]) -> Optional[datetime]:
    text = app.store.get_cursor(CURSOR_PREFIX + duty.name) if duty.scope == DATABASE else \
        host_times.get(duty.name)
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _read_host(app: App) -> dict[str, str]:
    try:
        data = json.loads(app.paths.schedule_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
