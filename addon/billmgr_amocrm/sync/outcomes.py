"""What becomes of each queue row of a batch: done, failed, retried later, or waiting.

A :class:`Ledger` keeps the books of one batch. Rows marked done inside a
:meth:`Ledger.unit` are completed together when that transaction ends, so a row is never
done before the link rows its entity needs are committed. Retries back off
(:class:`.retry.RetryPolicy`); an outage (429, 5xx, timeouts, lost answers) never
dead-letters a good record before ``outage_give_up``; ``OUTAGE_STRIKES`` unanswered
writes in a row end the pass, so an outage costs a couple of requests, not one per batch.
:class:`PassState` is what the batches of one pass share.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, ContextManager, Iterator, Mapping, Optional, Protocol, Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData, RetryLater
from ..ports import AmoPayload, QueueItem, Store
from .fingerprint import fingerprint
from .planner import Create, Plan, Work
from .retry import RetryPolicy

log = logging.getLogger(__name__)

# unanswered writes in a row that end the pass (each one is rescheduled, not failed)
OUTAGE_STRIKES = 2


class PassStopped(Exception):
    """amoCRM cannot be used now; ``state`` is reauthorize | stopped | retry_later."""

    def __init__(self, state: str, cause: Exception) -> None:
        self.state = state
        self.cause = cause
        super().__init__(f"{state}: {cause}")


@dataclass
class Report:
    """What one pass or batch did (counts per outcome, and why it stopped if it did)."""

    done: int = 0
    # re-checks that found amoCRM already holding what would be sent: completed, nothing sent
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    recreated: int = 0
    adopted: int = 0
    stopped: Optional[str] = None
    stop_reason: str = ""
    failures: list[str] = field(default_factory=list)
    # when another engine sent the queue while this command waited: who it was
    by_other: str = ""
    # stopped "busy": the engine that held the lease, as it registered itself
    busy_with: str = ""

    def add(self, other: Report) -> None:
        for name in ("done", "unchanged", "skipped", "failed", "retried", "deferred", "recreated", "adopted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)

    @property
    def handled(self) -> int:
        return self.done + self.unchanged + self.skipped + self.failed


def unchanged_words(report: Report) -> str:
    """", N re-checked, already up to date" for a summary line, or nothing: re-checks that found
    amoCRM holding what billing holds are neither sent nor skipped."""
    return f", {report.unchanged} re-checked, already up to date" if report.unchanged else ""


@dataclass
class PassState:
    """Shared by the batches of one pass, several of which may be in flight at once (the
    sets and the dict are changed one item at a time; the strike count under ``lock``)."""

    # accounts whose contact will not be linked now (skipped or failed): do not wait for them
    contacts_not_coming: set[int] = field(default_factory=set)
    # children already deferred once for their contact: the second time they wait a little
    deferred_once: set[tuple[Kind, int]] = field(default_factory=set)
    # unanswered writes in a row
    strikes: int = 0
    # (kind, create token) -> marker -> amoCRM id: what one search for a lost create's token
    # found, for the other batches of the same pass that hold rows of that create
    token_hits: dict[tuple[Kind, str], dict[str, int]] = field(default_factory=dict)
    # custom field ids amoCRM refused as none of the account's, per kind, not judged yet: the
    # pass holds their records back and reads the catalog once its batches land (gone_fields.py)
    suspect_fields: dict[Kind, set[int]] = field(default_factory=dict)
    # judged in this pass (deleted and set up anew, or still in amoCRM): a refusal naming one
    # again is the record's own
    judged_fields: set[int] = field(default_factory=set)
    # the same for the (pipeline, status) of refused deals that carried one
    suspect_placements: set[tuple[int, int]] = field(default_factory=set)
    judged_placements: set[tuple[int, int]] = field(default_factory=set)
    # a record was refused for its responsible user: the users are read once the batches land
    suspect_users: bool = False
    judged_users: bool = False
    # entities whose PATCH amoCRM refused for their deactivated owner: sent again with the
    # module's responsible user as their owner, once
    reassign: set[tuple[Kind, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def has_suspects(self) -> bool:
        """Records were held back for something amoCRM may have deleted: the pass looks first."""
        return bool(self.suspect_fields or self.suspect_placements or self.suspect_users)


class BatchGate(Protocol):
    """Where a batch waits for the batches in flight it depends on (``lanes.Gate``)."""

    def plan_after(self, clients: Mapping[int, int]) -> None:
        """Return once the batch may be planned; ``clients``: account -> the batch's newest entity of it."""

    def linked(self) -> None:
        """The batch's new link rows are committed."""

    def linking(self) -> ContextManager[None]:
        """Entered once the batch may make its ``/link`` calls; the calls are made inside it."""


class OpenGate:
    """One batch at a time: nothing to wait for."""

    def plan_after(self, clients: Mapping[int, int]) -> None:
        return None

    def linked(self) -> None:
        return None

    def linking(self) -> ContextManager[None]:
        return nullcontext()


@dataclass(frozen=True)
class Bookkeeping:
    """How outcomes are recorded: the store, the retry policy, the clock, the jitter."""

    store: Store
    policy: RetryPolicy
    clock: Callable[[], datetime]
    jitter: Callable[[], float]


class Ledger:
    """The books of one batch: its report, the rows handled, the rows to complete."""

    def __init__(self, books: Bookkeeping, state: PassState,
                 fingerprints: Optional[dict[int, str]] = None, gate: Optional[BatchGate] = None) -> None:
        self.books = books
        self.store = books.store
        self.state = state
        self.gate: BatchGate = gate or OpenGate()
        # refusals being isolated one item at a time: the batch's links are not all committed yet
        self.isolating = False
        self.report = Report()
        self.finished: set[tuple[Kind, int]] = set()
        # queue rows done in the current unit of work, deleted together at its end
        self._completing: list[QueueItem] = []
        # billmgr_id -> fingerprint of what the plan sends (computed off the writing thread)
        self._fingerprints = fingerprints or {}

    # ------------------------------------------------------------------ units of work
    @contextmanager
    def unit(self) -> Iterator[None]:
        """One transaction; the rows marked done in it are deleted together at its end."""
        with self.store.transaction():
            try:
                yield
                self.store.complete_many(self._completing)
            finally:
                self._completing = []

    def done(self, work: Work) -> None:
        """Inside :meth:`unit`: the row is completed with the others when the unit ends."""
        self.finished.add((work.kind, work.billmgr_id))
        if work.item is not None:
            self._completing.append(work.item)
        self.report.done += 1

    def unchanged(self, work: Work) -> None:
        """Inside :meth:`unit`: a re-check found what was sent still right; the row is completed
        with the unit, and nothing counts as sent (the day's counts are what amoCRM received)."""
        self.finished.add((work.kind, work.billmgr_id))
        if work.item is not None:
            self._completing.append(work.item)
        self.report.unchanged += 1

    def skipped(self, work: Work) -> None:
        """Inside :meth:`unit`: nothing to send; the row is completed with the unit."""
        if work.kind is Kind.CONTACT:
            self.state.contacts_not_coming.add(work.billmgr_id)
        if work.item is not None:
            self._completing.append(work.item)
        self.report.skipped += 1

    def fingerprint(self, work: Work, payload: AmoPayload, plan: Plan) -> str:
        known = self._fingerprints.get(work.billmgr_id)
        return known if known is not None else fingerprint(payload, plan.parents.get(work.billmgr_id, ()))

    # ------------------------------------------------------------------ failures and retries
    def fail(self, work: Work, reason: str) -> None:
        log.error("%s %s failed: %s", work.kind.value, work.billmgr_id, reason)
        self.finished.add((work.kind, work.billmgr_id))
        self.report.failed += 1
        self.report.failures.append(f"{work.kind.value} {work.billmgr_id}: {reason}")
        if work.kind is Kind.CONTACT:
            self.state.contacts_not_coming.add(work.billmgr_id)
        if work.item is not None:
            self.store.fail(work.item, reason)
        else:
            # a unit of a direct run has no row yet: queue it, the worker retries and records it
            self.store.enqueue(work.kind, work.billmgr_id, work.reason)

    def refused(self, work: Work, reason: str, unknown_fields: frozenset[int] = frozenset(),
                placement: Optional[tuple[int, int]] = None, *, owner: bool = False,
                patched: bool = False) -> None:
        """amoCRM refused the record (``reason``). When the refusal named a custom field amoCRM
        says is none of its own, or the record is a deal sent with a pipeline stage, or amoCRM
        refused its responsible user (``owner``; ``patched``: an entity's own, on a PATCH), and
        this pass has not judged that field, stage or owner yet, the record waits instead:
        amoCRM may have deleted or deactivated it, and the pass looks before it sends the record
        anew (:mod:`.gone_fields`)."""
        key = (work.kind, work.billmgr_id)
        with self.state.lock:
            fields = set(unknown_fields) - self.state.judged_fields
            if fields:
                self.state.suspect_fields.setdefault(work.kind, set()).update(fields)
            stage = placement if placement not in self.state.judged_placements else None
            if stage is not None:
                self.state.suspect_placements.add(stage)
            # a PATCH refused for its owner goes once more, given to the module's responsible user
            handover = owner and patched and key not in self.state.reassign
            if handover:
                self.state.reassign.add(key)
            users = owner and (handover or not self.state.judged_users)
            if users and not self.state.judged_users:
                self.state.suspect_users = True
        if users:
            self._hold(work, f"{reason}; sent again once amoCRM's users are read"
                             + (", to the module's responsible user" if handover else ""))
        elif fields:
            named = ", ".join(map(str, sorted(fields)))
            self._hold(work, f"amoCRM knows no field {named} any more; sent again once the fields are read")
        elif stage is not None:
            self._hold(work, f"{reason}; sent again once the pipelines are read (stage {stage[1]} of "
                             f"pipeline {stage[0]} may be gone)")
        else:
            self.fail(work, reason)

    def _hold(self, work: Work, why: str) -> None:
        """Like :meth:`wait`, for a record the same pass sends again (:mod:`.gone_fields`): not
        counted as one to retry, since it is left for later only if the pass stops first (and
        then the queue shows it)."""
        self._postpone(work, why, 0.0)

    def wait(self, work: Work, why: str, seconds: float) -> None:
        """Reschedule without judging the record: nothing failed, it is not time yet."""
        self.report.retried += 1
        self._postpone(work, why, seconds)

    def _postpone(self, work: Work, why: str, seconds: float) -> None:
        self.finished.add((work.kind, work.billmgr_id))
        if work.item is None:
            self.store.enqueue(work.kind, work.billmgr_id, work.reason)
            return
        log.info("%s %s: %s; looked up in %.0f s", work.kind.value, work.billmgr_id, why, seconds)
        self.store.postpone(work.item, why, seconds)

    def retry(self, work: Work, error: str, *, outage: bool, at_least: float = 0.0) -> None:
        self.finished.add((work.kind, work.billmgr_id))
        item = work.item
        if item is None:
            self.store.enqueue(work.kind, work.billmgr_id, work.reason)
            self.report.retried += 1
            return
        policy = self.books.policy
        give_up = policy.outage_exhausted(item, self.books.clock()) if outage else policy.exhausted(item)
        if give_up:
            self.fail(work, f"gave up after {item.attempts + 1} attempts: {error}")
            return
        delay = max(policy.delay(item.attempts, self.books.jitter), at_least)
        log.info("%s %s: retry in %.0f s: %s", work.kind.value, work.billmgr_id, delay, error)
        self.store.retry(item, error, delay)
        self.report.retried += 1

    def reschedule_unfinished(self, works: Sequence[Work], exc: RetryLater) -> None:
        """After a transient stop: every row of the batch not yet handled waits with backoff."""
        unfinished = [w for w in works if (w.kind, w.billmgr_id) not in self.finished]
        if not unfinished:
            return
        log.warning("amoCRM unavailable (%s); %d rows rescheduled", exc, len(unfinished))
        with self.store.transaction():
            for work in unfinished:
                self.retry(work, str(exc), outage=True)

    def one_by_one(self, kind: Kind, batch: Sequence[Any], exc: FixData, plan: Plan,
                   again: Callable[[Ledger, Kind, Any, Plan], Any]) -> None:
        """A refusal the client could not pin on items: isolate it so the others go through."""
        if len(batch) == 1:
            work = batch[0].work
            if isinstance(batch[0], Create):
                self.store.clear_create(kind, work.billmgr_id)
            self.fail(work, f"amoCRM refused: {issues_of(exc)}")
            return
        isolating, self.isolating = self.isolating, True
        try:
            for one in batch:
                again(self, kind, [one], plan)
        finally:
            self.isolating = isolating

    # ------------------------------------------------------------------ outages
    def answered(self) -> None:
        """A write was answered: the run of unanswered ones is over."""
        self.state.strikes = 0

    def strike(self, exc: AmbiguousWriteError) -> None:
        """One more unanswered write in a row; enough of them end the pass as an outage."""
        with self.state.lock:
            self.state.strikes += 1
            strikes = self.state.strikes
        if strikes >= OUTAGE_STRIKES:
            raise RetryLater(f"{strikes} writes in a row went unanswered; the rest waits: "
                             f"{exc.message}",
                             method=exc.method, path=exc.path, status=exc.status,
                             request_id=exc.request_id, detail=exc.detail) from exc


def issues_of(exc: FixData) -> str:
    if exc.issues:
        return "; ".join(i.describe() for i in exc.issues)
    return exc.detail or str(exc)


def link_taken(kind: Kind, amocrm_id: int, holder: int) -> str:
    """Why a record whose amoCRM entity is already linked to another BILLmanager entity fails."""
    return (f"amoCRM {kind.amo_entity} {amocrm_id} is already linked to {kind.value} {holder}: one amoCRM "
            f"entity cannot stand for two; unlink one of them (amocrm unlink {kind.value} {holder}) "
            "and retry")


def refusal(kind: Kind, reason: str) -> str:
    """The client's reason already names amoCRM, the entity and the field; say it once."""
    return reason if reason.startswith("amoCRM") else f"amoCRM refused {kind.amo_entity}: {reason}"
