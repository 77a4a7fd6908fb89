"""Renewal tasks (issue 17.3): a task on a service's lead as its expiry date comes near.

The admin's rules (``renewals`` in amocrm.conf: conditions -> days before ``expiredate``,
responsible user, text with {service_name} {domain} {price} {expiredate}, "skip
auto-renewing services") are tried in order; the first whose conditions hold decides.

Found from the database on the worker's schedule (the ``renewals`` duty in ``schedule.py``,
database-wide, so only the engine lease holder runs it and its last run is a cursor in
``amocrm_cursor``): nothing depends on an event. Each run, in this order:

1. **complete** what moved on: an open task whose service was prolonged (its expiredate is no
   longer the task's) or closed (deleted, or gone) is completed in amoCRM with a result text
   saying so; a row not sent yet is simply closed;
2. **plan**: services not deleted whose expiredate is within the largest ``days_before`` get a
   row per (service, expiry date) when their rule's day has come (``amocrm_renewal_task``'s
   unique key: one task per service and expiry date, however often the job runs);
3. **send**: the intent (token, lead) is committed before the POST and the task's text carries
   ``bmsync-<token>``; an open intent is settled after ``settle_after`` by reading the lead's
   tasks, as the payment notes are (``sync/notes.py``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..billing.payments import expiring_service_ids
from ..domain import Kind, Service
from ..errors import AmbiguousWriteError, FixData, RetryLater
from ..foundation.clock import as_utc
from ..markers import SYNC_TAG_PREFIX
from ..ports.activities import ActivityApi, PendingTask, TaskStore
from ..rules.attributes import attributes_of
from ..rules.conditions import Compiled, all_hold
from ..rules.config import ModuleConfig, RenewalRule
from ..rules.mapping import lead_name
from ..unverified import ITEM_STATUS_DELETED

if TYPE_CHECKING:
    from ..billing import BillingDb
    from ..rules.presets import Presets

log = logging.getLogger(__name__)

PASS_LIMIT = 200
PAGE = 500
CLOCK_SLACK = 300
TASK_TYPE_FOLLOW_UP = 1          # amoCRM's built-in "follow-up" (Связаться) task type
RESULT = {
    "ru": {"prolonged": "Услуга продлена до {date}: задача закрыта модулем BILLmanager",
           "closed": "Услуга закрыта: задача закрыта модулем BILLmanager"},
    "en": {"prolonged": "The service was prolonged to {date}: task closed by the BILLmanager module",
           "closed": "The service was closed: task closed by the BILLmanager module"},
}


@dataclass
class RenewalReport:
    planned: int = 0
    created: int = 0
    completed: int = 0
    waiting: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Rule:
    rule: RenewalRule
    conditions: tuple[Compiled, ...]


def compiled(config: ModuleConfig, presets: Presets) -> list[_Rule]:
    return [_Rule(r, tuple(presets.compile(c.value, c.validator, c.argument) for c in r.conditions))
            for r in config.renewals]


def rule_for(rules: Sequence[_Rule], service: Service) -> Optional[RenewalRule]:
    attrs = attributes_of(Kind.LEAD, service)
    return next((r.rule for r in rules if all_hold(r.conditions, attrs)), None)


def run_renewals(store: TaskStore, api: ActivityApi, billing: BillingDb, config: ModuleConfig,
                 presets: Presets, *, now: datetime, settle_after: float,
                 made_since: Optional[int] = None) -> RenewalReport:
    """One run of the duty: complete, plan, send (see the module's docstring). ``made_since``:
    as for the payment notes (``sync/notes.py``), a task is first looked for by its key."""
    report = RenewalReport()
    lang = config.sync.language
    report.completed = complete_moved_on(store, api, billing, lang)
    if config.renewals:
        report.planned = plan(store, billing, compiled(config, presets), as_utc(now).date())
    send(store, api, billing, config, now=now, settle_after=settle_after, report=report,
         made_since=made_since)
    store.count_daily({"task": report.created, "failed": report.failed}, now)
    if report.planned or report.created or report.completed or report.failed:
        log.info("renewal tasks: %d planned, %d created, %d completed, %d failed, %d waiting",
                 report.planned, report.created, report.completed, report.failed, report.waiting)
    return report


def plan(store: TaskStore, billing: BillingDb, rules: Sequence[_Rule], today: date) -> int:
    """Rows for services whose rule's day has come (the unique key keeps one per expiry date)."""
    if not rules:
        return 0
    horizon = today + timedelta(days=max(r.rule.days_before for r in rules))
    added = 0
    with store.transaction():           # one snapshot for the scan (and a fresh one)
        for ids in expiring_service_ids(billing, today, horizon, ITEM_STATUS_DELETED, PAGE):
            added += _plan_page(store, billing, rules, today, ids)
    return added


def _plan_page(store: TaskStore, billing: BillingDb, rules: Sequence[_Rule], today: date,
               ids: Sequence[int]) -> int:
    rows = []
    for service in billing.services(ids).values():
        rule = rule_for(rules, service)
        if rule is None or service.expiredate is None:
            continue
        if rule.skip_autoprolong and service.autoprolong:
            continue            # it renews itself: nobody needs to call
        if service.expiredate - timedelta(days=rule.days_before) > today:
            continue
        rows.append((service.id, service.expiredate, rule.id, due_at(service.expiredate)))
    return store.add_renewal_tasks(rows) if rows else 0


def due_at(expiredate: date) -> datetime:
    """The task is due at the start of the expiry day (UTC): renewed before the service stops."""
    return datetime.combine(expiredate, time(0, 0), tzinfo=timezone.utc)


def complete_moved_on(store: TaskStore, api: ActivityApi, billing: BillingDb, lang: str) -> int:
    """Complete the tasks of services prolonged or closed since their task was planned."""
    done = 0
    after = 0
    while True:
        with store.transaction():       # its BEGIN: a fresh snapshot of BILLmanager's tables too
            live = store.live_renewal_tasks(after, PAGE)
            services = billing.services(sorted({t.item_id for t in live})) if live else {}
        if not live:
            return done
        after = live[-1].id
        for task in live:
            why = _moved_on(services.get(task.item_id), task.expiredate)
            if why is None or (task.status == "pending" and task.token is not None):
                continue            # current, or an intent in doubt: settled first (send)
            words = RESULT.get(lang, RESULT["ru"])[why[0]].format(date=why[1])
            if task.status == "open" and task.task_id is not None:
                try:
                    gone = not api.complete_task(task.task_id, words)
                except (FixData, RetryLater) as exc:
                    log.warning("renewal task %d of service %d not completed now: %s", task.task_id,
                                task.item_id, exc)
                    continue
                if gone:
                    words += " (the task was deleted in amoCRM)"
            store.renewal_task_completed(task.id, words)
            done += 1


def _moved_on(service: Optional[Service], expiredate: date) -> Optional[tuple[str, str]]:
    if service is None or service.status == ITEM_STATUS_DELETED:
        return ("closed", "")
    if service.expiredate != expiredate:
        return ("prolonged", f"{service.expiredate:%Y-%m-%d}" if service.expiredate else "—")
    return None


def send(store: TaskStore, api: ActivityApi, billing: BillingDb, config: ModuleConfig, *, now: datetime,
         settle_after: float, report: RenewalReport, made_since: Optional[int] = None) -> None:
    rows = store.pending_renewal_tasks(PASS_LIMIT)
    if not rows:
        return
    rules = {r.id: r for r in config.renewals}
    with store.transaction():
        services = billing.services(sorted({r.item_id for r in rows}))
    for row in rows:
        if row.token is not None:
            settled = _settle(store, api, row, now, settle_after)
            if settled is None:
                report.waiting += 1
                continue
            if settled:
                report.created += 1
                continue
        service, rule = services.get(row.item_id), rules.get(row.rule_id)
        if row.linked_id is None or service is None or _moved_on(service, row.expiredate):
            report.waiting += 1     # not linked yet; or moved on: the next run completes it
            continue
        if rule is None:
            store.renewal_task_completed(row.id, f"rule {row.rule_id} no longer exists")
            continue
        if made_since is not None and _found(store, api, row, row.linked_id, made_since):
            report.created += 1
            continue
        token = secrets.token_hex(6)
        if not store.renewal_task_intent(row.id, row.linked_id, token):   # committed before the POST
            report.waiting += 1     # another process took it first (compare and set)
            continue
        try:
            task_id = api.add_task(task_body(rule, service, row, row.linked_id, token,
                                             config.sync.responsible_user_id))
        except AmbiguousWriteError as exc:
            log.warning("renewal task of service %d: answer lost (%s); settled after %.0f s", row.item_id,
                        exc, settle_after)
            report.waiting += 1
            continue
        except FixData as exc:
            store.renewal_task_failed(row.id, str(exc))
            log.warning("renewal task of service %d refused: %s", row.item_id, exc)
            report.failed += 1
            continue
        except RetryLater as exc:
            store.renewal_task_retry(row.id, str(exc))
            return
        store.renewal_task_open(row.id, task_id, row.linked_id)
        report.created += 1


def _found(store: TaskStore, api: ActivityApi, row: PendingTask, lead_id: int, since: int) -> bool:
    """The task made before the database went back (its row went back with it), adopted."""
    task_id = api.find_task(lead_id, task_key(row.item_id, row.expiredate), since)
    if task_id is None:
        return False
    log.info("renewal task of service %d: made before the database went back, adopted (%d)", row.item_id,
             task_id)
    store.renewal_task_open(row.id, task_id, lead_id)
    return True


def _settle(store: TaskStore, api: ActivityApi, row: PendingTask, now: datetime,
            settle_after: float) -> Optional[bool]:
    assert row.token is not None and row.lead_id is not None
    started = as_utc(row.intent_at or now)
    if (as_utc(now) - started).total_seconds() < settle_after:
        return None
    task_id = api.find_task(row.lead_id, SYNC_TAG_PREFIX + row.token, int(started.timestamp()) - CLOCK_SLACK)
    if task_id is not None:
        log.info("renewal task of service %d: the lost answer's task %d adopted", row.item_id, task_id)
        store.renewal_task_open(row.id, task_id, row.lead_id)
        return True
    store.renewal_task_retry(row.id, "the task of a lost answer was not made; sending it again")
    return False


def task_body(rule: RenewalRule, service: Service, row: PendingTask, lead_id: int, token: str,
              default_user: Optional[int]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": task_text(rule, service, row.expiredate, token),
        "complete_till": int(row.due_at.timestamp()),
        "entity_type": "leads", "entity_id": int(lead_id), "task_type_id": TASK_TYPE_FOLLOW_UP,
    }
    user = rule.responsible_user_id or default_user
    if user:
        body["responsible_user_id"] = int(user)
    return body


def task_text(rule: RenewalRule, service: Service, expiredate: date, token: str) -> str:
    """The rule's text with the placeholders filled, then the row's key and token on the last line
    (the settle and the audit look for them)."""
    attrs = attributes_of(Kind.LEAD, service)
    price = "—" if service.cost is None else f"{service.cost:.2f} {service.currency_iso}".strip()
    text = rule.text.format(service_name=lead_name(attrs), domain=service.params.get("domain", ""),
                            price=price, expiredate=f"{expiredate:%Y-%m-%d}")
    return f"{text}\n{task_key(service.id, expiredate)}{SYNC_TAG_PREFIX}{token}]"


def task_key(item_id: int, expiredate: date) -> str:
    """The part of a task's last line that names its row (service and expiry date), whatever its token."""
    return f"[billmgr:renewal:{int(item_id)}:{expiredate:%Y-%m-%d} "
