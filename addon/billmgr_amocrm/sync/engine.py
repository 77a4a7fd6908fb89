"""Apply plans through AmoApi + Store with the exactly-once create protocol.

For every batch of one kind:

1. read the CURRENT snapshots, links and open create intents (bulk reads);
2. plan (pure, :mod:`.planner`);
3. creates with an open intent are settled by the marker first (adopted if found);
4. write create intents and commit them, then POST; after the answer, in ONE
   transaction: put_link + record_synced + complete, so nothing is done before
   its link row is committed;
5. PATCH updates; entities deleted in amoCRM are re-created and re-linked;
6. parent links (company -> contact, lead -> contact/company) via /link.

Throughput (issue 8): the writes of a batch are a handful of set-at-a-time statements
(:mod:`.bulk`); rows are claimed several batches per query with a keyset; with a
:class:`Reader` the next batch of the same kind is read and planned on a second
connection while the current one is written, and with a :class:`Writer` the commit of a
created batch runs on a third one while the next batch is sent. With a :class:`Feed`
(the export's ``Enqueuer``) sending starts while the rest is still being queued: a drain
of a kind ends only once every row of that kind is queued. So amoCRM's rate limit, not
MySQL round trips, bounds an export.

Auth and account states (``Reauthorize``, ``Stop``) end the pass with the queue
untouched; ``RetryLater`` reschedules the batch with backoff and ends the pass.

Lost answers (``AmbiguousWriteError``): an unanswered PATCH is simply resent later (an
update is idempotent); an unanswered POST leaves its create intent open. Either way the
rows wait, and after ``OUTAGE_STRIKES`` of them in a row the pass ends like a
``RetryLater``: during an outage a pass costs a couple of requests, not one per batch of
the whole queue. An open intent is settled (marker lookup, then create) only once
``settle_after`` seconds have passed since it: a write whose answer timed out may still be
in flight at amoCRM, and looking it up before it lands would create it twice.
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

from ..domain import KIND_ORDER, Kind
from ..errors import AmbiguousWriteError, FixData, Reauthorize, RetryLater, Stop
from ..foundation.clock import as_utc, utcnow
from ..ports import AmoApi, AmoPayload, BatchOutcome, BillingReader, MappingContext, QueueItem, RuleSet
from . import planner
from .bulk import BulkStore, bulk_complete, bulk_link_created, bulk_put_links, bulk_record_synced
from .planner import Create, Inputs, Link, Plan, Update, Work
from .retry import RetryPolicy
from .settle import settle_by_marker

log = logging.getLogger(__name__)

DEFAULT_BATCH = 50
RECHECK_REASON = "reconcile"
# the client's read timeout (30 s) plus a margin: a write cannot stay in flight longer
DEFAULT_SETTLE_AFTER = 60.0
# batches claimed per queue query in a drain (the query costs the same for 1 or 4 batches)
CLAIM_WINDOW = 4
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
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    recreated: int = 0
    adopted: int = 0
    stopped: Optional[str] = None
    stop_reason: str = ""
    failures: list[str] = field(default_factory=list)

    def add(self, other: Report) -> None:
        for name in ("done", "skipped", "failed", "retried", "deferred", "recreated", "adopted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)

    @property
    def handled(self) -> int:
        return self.done + self.skipped + self.failed


@dataclass(frozen=True)
class Reader:
    """Read-side adapters on a connection of their own (autocommit, so every read sees the
    latest commit): the engine reads and plans the next batch with them while the current
    one is being written. Only reads go through them, and only rows of other entities than
    the batch in flight, so the overlap changes no outcome."""

    billing: BillingReader
    store: BulkStore
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Writer:
    """A Store on a connection of its own for write-behind: the commit of a created batch
    (links + sync state + queue rows) runs on it while the next batch is being sent. Until
    it commits, the batch's create intents stay open, so a crash in between is settled by
    the marker like any lost answer; every drain waits for it before it ends, so the next
    kind reads committed parent links. One write is in flight at most, in batch order."""

    store: BulkStore
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Prepared:
    """A batch read and planned, not yet written."""

    kind: Kind
    works: list[Work]
    plan: Plan
    # billmgr_id -> fingerprint of what the plan sends (computed off the writing thread)
    fingerprints: dict[int, str] = field(default_factory=dict)


def _settle_quietly(ahead: Optional[Future[Optional[Prepared]]]) -> None:
    """Wait for a read-ahead that will not be used (its connection must be idle again)."""
    if ahead is not None:
        try:
            ahead.result()
        except Exception:  # noqa: BLE001 - the batch is re-read when it is claimed again
            log.debug("discarded read-ahead failed", exc_info=True)


class Feed(Protocol):
    """Rows still being queued while the engine drains (``export.Enqueuer``)."""

    def mark(self, kind: Kind) -> int: ...

    def wait(self, kind: Kind, mark: int, should_stop: Callable[[], bool] = ...) -> bool: ...


class _Claims:
    """Due rows of one kind for one drain, in queue order, ``CLAIM_WINDOW`` batches per query.

    A keyset (``claim_after``) continues past what was handed out, so the batch in flight
    (still pending until it ends) is never read again."""

    def __init__(self, engine: Engine, kind: Kind) -> None:
        self.engine = engine
        self.kind = kind
        self.store = engine.claim_store()
        self.buffer: list[QueueItem] = []
        self.after: Optional[QueueItem] = None

    def next(self) -> list[QueueItem]:
        size = self.engine.batch_size
        feed = self.engine.feed
        while not self.buffer:
            mark = feed.mark(self.kind) if feed is not None else 0
            self.buffer = self.store.claim_after(self.kind, size * CLAIM_WINDOW, self.engine.clock(),
                                                 self.after)
            if self.buffer:
                self.after = self.buffer[-1]
            elif feed is None or not feed.wait(self.kind, mark, self.engine.should_stop):
                break
        batch, self.buffer = self.buffer[:size], self.buffer[size:]
        return batch


def read_snapshots(billing: BillingReader, kind: Kind, ids: Sequence[int], rules: RuleSet) -> dict[int, Any]:
    """BILLmanager's current state of some entities of one kind (services: only the
    itemparams the rules can read)."""
    if kind is Kind.CONTACT:
        return dict(billing.clients(ids))
    if kind is Kind.COMPANY:
        return dict(billing.payers(ids))
    return dict(billing.services(ids, rules.param_names))


class Engine:
    """The sync core's imperative shell; the pure decisions live in the planner."""

    def __init__(self, amo: AmoApi, billing: BillingReader, store: BulkStore, rules: RuleSet,
                 ctx: MappingContext, *, batch_size: int = DEFAULT_BATCH,
                 policy: Optional[RetryPolicy] = None, clock: Callable[[], datetime] = utcnow,
                 jitter: Callable[[], float] = random.random, recreate_deleted: bool = True,
                 reader: Optional[Reader] = None, settle_after: float = DEFAULT_SETTLE_AFTER,
                 writer: Optional[Writer] = None) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store
        self.rules = rules
        self.ctx = ctx
        self.batch_size = batch_size
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.jitter = jitter
        # amocrm.conf sync.recreate_deleted: an entity deleted in amoCRM is made again (else: failed)
        self.recreate_deleted = recreate_deleted
        self.reader = reader
        # amocrm.conf sync.settle_after: an open create intent younger than this is not looked up yet
        self.settle_after = max(0.0, float(settle_after))
        self._strikes = 0
        self.writer = writer
        self._write_pool: Optional[ThreadPoolExecutor] = None
        self._fingerprints: dict[int, str] = {}
        self._pending_write: Optional[Future[None]] = None
        # per pass: accounts whose contact will not be linked now (skipped or failed)
        self._contacts_not_coming: set[int] = set()
        self._deferred_once: set[tuple[Kind, int]] = set()
        self._finished: set[tuple[Kind, int]] = set()
        # queue rows done in the current unit of work, deleted together at its end
        self._completing: list[QueueItem] = []
        # progress hook for the export's progress line: called after every batch
        self.on_batch: Optional[Callable[[Kind, Report], None]] = None
        # checked between batches: SIGTERM ends a long pass after the batch in flight
        self.should_stop: Callable[[], bool] = lambda: False
        # rows still being queued (the export's Enqueuer): a drain of a kind waits for all of them
        self.feed: Optional[Feed] = None

    # ------------------------------------------------------------------ pass
    def run_pass(self, max_rounds: int = 1000) -> Report:
        """Drain every due queue row, kinds in order, until nothing is due or amoCRM says stop."""
        report = Report()
        self._contacts_not_coming = set()
        self._deferred_once = set()
        self._strikes = 0
        try:
            for _ in range(max_rounds):
                if self.should_stop():
                    break
                progressed = False
                for kind in KIND_ORDER:
                    claimed, deferred = self._drain_kind(kind, report)
                    progressed = progressed or claimed
                    if deferred:
                        break  # their contacts were queued: start over with contacts
                if not progressed:
                    break
        except PassStopped as stop:
            report.stopped = stop.state
            report.stop_reason = str(stop.cause)
        return report

    def _drain_kind(self, kind: Kind, report: Report) -> tuple[bool, bool]:
        """Batches of one kind until none is due; every write-behind is committed when it returns."""
        with self._writes_behind():
            return self._drain_batches(kind, report)

    @contextmanager
    def _writes_behind(self) -> Iterator[None]:
        if self.writer is None or self._write_pool is not None:
            yield
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            self._write_pool = pool
            try:
                yield
            except BaseException:
                self._flush_writes(quiet=True)
                raise
            else:
                self._flush_writes()
            finally:
                self._write_pool = None

    def _write_behind(self, kind: Kind, rows: Sequence[tuple[int, int, str]], now: datetime,
                      items: Sequence[QueueItem]) -> None:
        """Commit created entities' links, sync state and queue rows on the writer's connection."""
        assert self.writer is not None and self._write_pool is not None
        self._flush_writes()
        store = self.writer.store

        def write() -> None:
            with store.transaction():
                bulk_link_created(store, kind, rows, now)
                bulk_complete(store, items)

        self._pending_write = self._write_pool.submit(write)

    def _flush_writes(self, quiet: bool = False) -> None:
        pending, self._pending_write = self._pending_write, None
        if pending is None:
            return
        try:
            pending.result()
        except Exception:
            if not quiet:
                raise
            log.warning("a write-behind failed too; its intents stay open and are settled later",
                        exc_info=True)

    def claim_store(self) -> BulkStore:
        """Where a drain claims its rows: with a reader, the read-ahead claims on its connection."""
        return self.reader.store if self.reader is not None else self.store

    def _claim_and_prepare(self, claims: _Claims, kind: Kind) -> Optional[Prepared]:
        """The read-ahead: the next batch, read and planned (None: nothing more is due)."""
        assert self.reader is not None
        more = claims.next()
        if not more:
            return None
        return self._prepare(kind, [Work.of(i) for i in more], self.reader.billing, self.reader.store)

    def _drain_batches(self, kind: Kind, report: Report) -> tuple[bool, bool]:
        """With a ``reader``, the next batch is read and planned on its own connection while this
        one is written (see :class:`Reader`)."""
        claimed = False
        prepared: Optional[Prepared] = None
        claims = _Claims(self, kind)
        with ThreadPoolExecutor(max_workers=1) if self.reader else nullcontext() as pool:
            while not self.should_stop():
                if prepared is None:
                    items = claims.next()
                    if not items:
                        return claimed, False
                    prepared = self._prepare(kind, [Work.of(i) for i in items], self.billing, self.store)
                claimed = True
                ahead: Optional[Future[Optional[Prepared]]] = None
                if pool is not None:
                    ahead = pool.submit(self._claim_and_prepare, claims, kind)
                try:
                    batch = self._apply(prepared)
                except BaseException:
                    _settle_quietly(ahead)
                    raise
                report.add(batch)
                if self.on_batch is not None:
                    self.on_batch(kind, batch)
                if batch.deferred:
                    _settle_quietly(ahead)   # its rows stay queued; the pass starts over with contacts
                    return claimed, True
                prepared = ahead.result() if ahead is not None else None
        return claimed, False

    # ------------------------------------------------------------------ batch
    def sync(self, kind: Kind, works: Sequence[Work]) -> Report:
        """Sync one batch of one kind; raises PassStopped when amoCRM cannot be used now."""
        with self._writes_behind():
            return self._apply(self._prepare(kind, works, self.billing, self.store))

    def _prepare(self, kind: Kind, works: Sequence[Work], billing: BillingReader,
                 store: BulkStore) -> Prepared:
        """Read and plan a batch: reads only, so it may run beside another batch's writes."""
        inputs = self._gather(kind, works, billing, store)
        plan = planner.plan_batch(works, inputs, self.rules, self.ctx)
        sent = [(c.work.billmgr_id, c.payload) for c in plan.creates]
        sent += [(u.work.billmgr_id, u.payload) for u in plan.updates]
        fingerprints = {b: _fingerprint(payload, plan.parents.get(b, ())) for b, payload in sent}
        return Prepared(kind, list(works), plan, fingerprints)

    def _apply(self, prepared: Prepared) -> Report:
        kind, plan = prepared.kind, prepared.plan
        self._fingerprints = prepared.fingerprints
        report = Report()
        self._finished = set()
        self._drop_unchanged(kind, plan, report)
        self._apply_skips(plan, report)
        self._apply_defers(plan, report)
        pending = [c.work for c in plan.creates] + [u.work for u in plan.updates]
        try:
            creates = self._settle(kind, plan, report)
            recreate = self._update(kind, plan.updates, plan, report)
            self._create(kind, creates + recreate, plan, report)
        except RetryLater as exc:
            self._reschedule_unfinished(pending, report, exc)
            raise PassStopped("retry_later", exc) from exc
        except Reauthorize as exc:
            log.error("amoCRM needs re-authorization; the queue is kept: %s", exc)
            raise PassStopped("reauthorize", exc) from exc
        except Stop as exc:
            log.error("amoCRM stopped serving the account (%s); the queue is kept: %s", exc.reason, exc)
            raise PassStopped("stopped", exc) from exc
        return report

    # ------------------------------------------------------------------ inputs
    def _gather(self, kind: Kind, works: Sequence[Work], billing: BillingReader, store: BulkStore) -> Inputs:
        ids = sorted({w.billmgr_id for w in works})
        snapshots = read_snapshots(billing, kind, ids, self.rules)
        contact_links: dict[int, int] = {}
        company_of_account: dict[int, int] = {}
        # One unit for the batch's reads of the module's tables: each read alone is its own
        # BEGIN/COMMIT, two round trips more per read (three or four reads per batch).
        with store.transaction():
            links = store.links(kind, ids)
            creating = [i for i in ids if i not in links]
            open_creates = store.open_creates(kind, creating) if creating else {}
            if kind is not Kind.CONTACT:
                accounts = sorted({int(e.account_id) for e in snapshots.values()})
                contact_links = store.links(Kind.CONTACT, accounts)
                if kind is Kind.LEAD:
                    company_of_account = self._companies_of(accounts, billing, store)
        return Inputs(kind, snapshots, links, open_creates, contact_links, company_of_account,
                      frozenset(self._contacts_not_coming))

    @staticmethod
    def _companies_of(accounts: Sequence[int], billing: BillingReader, store: BulkStore) -> dict[int, int]:
        """The linked company of each account's legal payer (the first one that is linked)."""
        payers_by_account = billing.legal_payers_by_account(accounts)
        all_payers = sorted({p for ps in payers_by_account.values() for p in ps})
        company_links = store.links(Kind.COMPANY, all_payers) if all_payers else {}
        found: dict[int, int] = {}
        for account, payer_ids in payers_by_account.items():
            for payer_id in payer_ids:
                if payer_id in company_links:
                    found[account] = company_links[payer_id]
                    break
        return found

    def _drop_unchanged(self, kind: Kind, plan: Plan, report: Report) -> None:
        """A reconciler re-check of an entity whose payload did not change sends nothing."""
        rechecks = [u for u in plan.updates if u.work.reason == RECHECK_REASON]
        if not rechecks:
            return
        sent = self.store.fingerprints(kind, [u.work.billmgr_id for u in rechecks])
        same = {u.work.billmgr_id for u in rechecks
                if sent.get(u.work.billmgr_id) == self._fingerprint(u.work, u.payload, plan)}
        if not same:
            return
        plan.updates = [u for u in plan.updates if u.work.billmgr_id not in same]
        with self._unit():
            for update in rechecks:
                if update.work.billmgr_id in same:
                    self._done(update.work, report)

    # ------------------------------------------------------------------ skips / defers
    def _apply_skips(self, plan: Plan, report: Report) -> None:
        if not plan.skips:
            return
        with self._unit():
            for skip in plan.skips:
                log.info("%s %s skipped: %s", plan.kind.value, skip.work.billmgr_id, skip.reason)
                if plan.kind is Kind.CONTACT:
                    self._contacts_not_coming.add(skip.work.billmgr_id)
                if skip.work.item is not None:
                    self._completing.append(skip.work.item)
                report.skipped += 1

    def _apply_defers(self, plan: Plan, report: Report) -> None:
        """A child whose contact is not linked: queue the contact (synced first in this pass)."""
        if not plan.defers:
            return
        with self.store.transaction():
            for defer in plan.defers:
                key = (plan.kind, defer.work.billmgr_id)
                for need_kind, need_id in defer.needs:
                    self.store.enqueue(need_kind, need_id, "parent")
                report.deferred += 1
                if defer.work.item is None:
                    self.store.enqueue(plan.kind, defer.work.billmgr_id, defer.work.reason)
                elif key in self._deferred_once:
                    self.store.retry(defer.work.item, "waiting for the client's contact",
                                     self.policy.defer_seconds)
                self._deferred_once.add(key)

    # ------------------------------------------------------------------ creates
    def _settle(self, kind: Kind, plan: Plan, report: Report) -> list[Create]:
        """Adopt entities an earlier, unanswered create already made; return what still needs a POST.

        An intent younger than ``settle_after`` waits: its write may still be in flight."""
        intents = {c.work.billmgr_id: c.intent_at for c in plan.creates if c.intent_at is not None}
        if not intents:
            return list(plan.creates)
        now = as_utc(self.clock())
        waits = {b: self.settle_after - (now - as_utc(at)).total_seconds() for b, at in intents.items()}
        young = {b for b, wait in waits.items() if wait > 0}
        if young:
            with self.store.transaction():
                for create in plan.creates:
                    if create.work.billmgr_id in young:
                        self._wait(create.work, "create unconfirmed: an earlier write may still be in flight",
                                   waits[create.work.billmgr_id], report)
            intents = {b: at for b, at in intents.items() if b not in young}
        creates = [c for c in plan.creates if c.work.billmgr_id not in young]
        if not intents:
            return creates
        found = settle_by_marker(self.amo, kind, self._marker_field(kind), intents)
        if found:
            log.info("%s: adopted %d entities an unanswered create had made: %s", kind.value,
                     len(found), ", ".join(f"{b}->{a}" for b, a in sorted(found.items())))
        with self.store.transaction():
            bulk_put_links(self.store, kind, sorted(found.items()))
            # Not found after settle_after: no earlier attempt can still land, so the next
            # POST's intent starts afresh (its own settle_after counts from its own send).
            for billmgr_id in sorted(set(intents) - set(found)):
                self.store.clear_create(kind, billmgr_id)
        report.adopted += len(found)
        adopted = [Update(c.work, found[c.work.billmgr_id], c.payload) for c in creates
                   if c.work.billmgr_id in found]
        # the adopted entity may hold an older state: push the current one as an update
        recreate = self._update(kind, adopted, plan, report)
        return [c for c in creates if c.work.billmgr_id not in found] + recreate

    def _create(self, kind: Kind, creates: Sequence[Create], plan: Plan, report: Report) -> None:
        if not creates:
            return
        by_request = {planner.request_id(kind, c.work.billmgr_id): c for c in creates}
        bodies = [planner.create_body(kind, c, plan.parents.get(c.work.billmgr_id, ())) for c in creates]
        with self.store.transaction():
            self.store.begin_create(kind, [c.work.billmgr_id for c in creates], self.clock())
        try:
            outcome = self.amo.create(kind.amo_entity, bodies)
        except AmbiguousWriteError as exc:
            self._after_ambiguous_create(kind, by_request, exc, plan, report)
            self._strike(exc)
            return
        except FixData as exc:
            self._one_by_one(kind, creates, exc, plan, report, self._create)
            return
        self._strikes = 0
        self._commit_creates(kind, by_request, outcome, plan, report)

    def _commit_creates(self, kind: Kind, by_request: dict[str, Create], outcome: BatchOutcome,
                        plan: Plan, report: Report) -> list[Create]:
        """ONE transaction: link + synced + done for every created item; return the rest.

        With write-behind (:class:`Writer`) the transaction of items that need no /link call
        runs on the writer's connection while the next batch is sent."""
        now = self.clock()
        created = [(by_request[rid], int(amocrm_id)) for rid, amocrm_id in outcome.ids.items()
                   if rid in by_request]
        if created and self._write_pool is not None and not any(
                self._needs_links(kind, c.work.billmgr_id, plan, created=True) for c, _ in created):
            # nothing more to send for them: commit behind the next batch's request
            rows = [(c.work.billmgr_id, a, self._fingerprint(c.work, c.payload, plan)) for c, a in created]
            self._write_behind(kind, rows, now, [c.work.item for c, _ in created if c.work.item is not None])
            for create, _ in created:
                self._finished.add((kind, create.work.billmgr_id))
                report.done += 1
            created = []
        if not created and not outcome.rejected:
            return [c for rid, c in by_request.items() if rid not in outcome.ids]
        with self._unit():
            rows = [(c.work.billmgr_id, a, self._fingerprint(c.work, c.payload, plan)) for c, a in created]
            bulk_link_created(self.store, kind, rows, now)
            for create, _ in created:
                if not self._needs_links(kind, create.work.billmgr_id, plan, created=True):
                    self._done(create.work, report)
            for rid, reason in outcome.rejected.items():
                refused = by_request.get(rid)
                if refused is not None:
                    self.store.clear_create(kind, refused.work.billmgr_id)
                    self._fail(refused.work, _refusal(kind, reason), report)
        self._link(kind, [c.work for c, _ in created], plan, report, created=True)
        handled = set(outcome.ids) | set(outcome.rejected)
        return [c for rid, c in by_request.items() if rid not in handled]

    def _after_ambiguous_create(self, kind: Kind, by_request: dict[str, Create], exc: AmbiguousWriteError,
                                plan: Plan, report: Report) -> None:
        """Keep what earlier chunks made; the rest waits ``settle_after`` before its marker lookup.

        Looking the marker up now could miss a write that is still in flight at amoCRM and
        lead to a second create; items the client never sent start over without waiting."""
        rest = self._commit_creates(kind, by_request, exc.outcome or BatchOutcome(), plan, report)
        if not rest:
            return
        in_doubt = set(exc.request_ids or [planner.request_id(kind, c.work.billmgr_id) for c in rest])
        unsent = [c for c in rest if planner.request_id(kind, c.work.billmgr_id) not in in_doubt]
        doubtful = [c for c in rest if planner.request_id(kind, c.work.billmgr_id) in in_doubt]
        log.warning("%s: create answer lost (%s); %d items are looked up by the marker in %.0f s",
                    kind.value, exc, len(doubtful), self.settle_after)
        with self.store.transaction():
            for create in unsent:
                self.store.clear_create(kind, create.work.billmgr_id)
                self._retry(create.work, f"not sent: {exc}", report, outage=True)
            for create in doubtful:
                self._retry(create.work, f"create unconfirmed: {exc}", report, outage=True,
                            at_least=self.settle_after)

    # ------------------------------------------------------------------ updates
    def _update(self, kind: Kind, updates: Sequence[Update], plan: Plan, report: Report) -> list[Create]:
        """PATCH owned fields; return creates for entities that were deleted in amoCRM."""
        if not updates:
            return []
        by_request = {planner.request_id(kind, u.work.billmgr_id): u for u in updates}
        try:
            outcome = self.amo.update(kind.amo_entity, [planner.update_body(kind, u) for u in updates])
        except FixData as exc:
            recreate: list[Create] = []
            self._one_by_one(kind, updates, exc, plan, report, lambda k, us, p, r: recreate.extend(
                self._update(k, us, p, r)))
            return recreate
        except AmbiguousWriteError as exc:
            # a PATCH is idempotent: resending it later is harmless; an outage ends the pass
            with self.store.transaction():
                for update in updates:
                    self._retry(update.work, str(exc), report, outage=True)
            self._strike(exc)
            return []
        self._strikes = 0
        by_amocrm_id = {u.amocrm_id: u for u in updates}
        now = self.clock()
        patched_all: list[Update] = []
        for rid, amocrm_id in outcome.ids.items():
            # amoCRM once echoed the entity id instead of request_id on a PATCH: match both
            patched = by_request.get(rid) or by_amocrm_id.get(int(amocrm_id))
            if patched is not None:
                patched_all.append(patched)
        done = [u.work for u in patched_all]
        with self._unit():
            bulk_record_synced(self.store, kind, [(u.work.billmgr_id, self._fingerprint(u.work, u.payload,
                                                                                         plan))
                                                  for u in patched_all], now)
            for patched in patched_all:
                if not self._needs_links(kind, patched.work.billmgr_id, plan, created=False):
                    self._done(patched.work, report)
            for rid, reason in outcome.rejected.items():
                if rid in by_request:
                    self._fail(by_request[rid].work, _refusal(kind, reason), report)
            recreate = []
            for rid in outcome.missing:
                gone = by_request.get(rid)
                if gone is None:
                    continue
                if not self.recreate_deleted:
                    self._fail(gone.work, f"amoCRM {kind.amo_entity} {gone.amocrm_id} was deleted in amoCRM "
                                          "and re-creating is off (sync.recreate_deleted)", report)
                    continue
                log.warning("%s %s: amoCRM %s %s was deleted in amoCRM; re-creating and re-linking",
                            kind.value, gone.work.billmgr_id, kind.amo_entity, gone.amocrm_id)
                self.store.drop_link(kind, gone.work.billmgr_id)
                report.recreated += 1
                recreate.append(Create(gone.work, gone.payload))
        self._link(kind, done, plan, report, created=False)
        return recreate

    # ------------------------------------------------------------------ links
    def _needs_links(self, kind: Kind, billmgr_id: int, plan: Plan, *, created: bool) -> bool:
        return bool(planner.links_after_write(kind, plan.parents.get(billmgr_id, ()), created))

    def _link(self, kind: Kind, works: Sequence[Work], plan: Plan, report: Report, *, created: bool) -> None:
        """POST /{entity}/link for parents not embedded in the write; done only after it."""
        wanted: list[tuple[Work, Link]] = []
        for work in works:
            for link in planner.links_after_write(kind, plan.parents.get(work.billmgr_id, ()), created):
                wanted.append((work, link))
        if not wanted:
            return
        owners = {w.billmgr_id: w for w, _ in wanted}
        links = self.store.links(kind, sorted(owners))
        items = []
        for work, link in wanted:
            item: dict[str, Any] = {"entity_id": links[work.billmgr_id], "to_entity_id": link.to_entity_id,
                                    "to_entity_type": link.to_entity}
            if link.is_main:
                item["metadata"] = {"is_main": True}
            items.append(item)
        try:
            self.amo.link(kind.amo_entity, items)
        except (FixData, AmbiguousWriteError) as exc:
            # a lost answer to a link is an outage (linking twice is harmless): it must not count
            # against the record like amoCRM refusing the link (400) does
            outage = isinstance(exc, AmbiguousWriteError)
            with self.store.transaction():
                for work in owners.values():
                    self._retry(work, f"linking failed: {exc}", report, outage=outage)
            if isinstance(exc, AmbiguousWriteError):
                self._strike(exc)
            return
        with self._unit():
            for work in owners.values():
                self._done(work, report)

    # ------------------------------------------------------------------ outcomes
    def _one_by_one(self, kind: Kind, batch: Sequence[Any], exc: FixData, plan: Plan, report: Report,
                    again: Callable[[Kind, Any, Plan, Report], Any]) -> None:
        """A refusal the client could not pin on items: isolate it so the others go through."""
        if len(batch) == 1:
            work = batch[0].work
            if isinstance(batch[0], Create):
                self.store.clear_create(kind, work.billmgr_id)
            self._fail(work, f"amoCRM refused: {_issues(exc)}", report)
            return
        for one in batch:
            again(kind, [one], plan, report)

    @contextmanager
    def _unit(self) -> Iterator[None]:
        """One transaction; the rows marked done in it are deleted together at its end."""
        with self.store.transaction():
            try:
                yield
                bulk_complete(self.store, self._completing)
            finally:
                self._completing = []

    def _done(self, work: Work, report: Report) -> None:
        """Inside ``_unit``: the row is completed with the others when the unit ends."""
        self._finished.add((work.kind, work.billmgr_id))
        if work.item is not None:
            self._completing.append(work.item)
        report.done += 1

    def _fingerprint(self, work: Work, payload: AmoPayload, plan: Plan) -> str:
        # every payload of a batch is the one its plan made for that entity: computed in _prepare
        known = self._fingerprints.get(work.billmgr_id)
        return known if known is not None else _fingerprint(payload, plan.parents.get(work.billmgr_id, ()))

    def _fail(self, work: Work, reason: str, report: Report) -> None:
        log.error("%s %s failed: %s", work.kind.value, work.billmgr_id, reason)
        self._finished.add((work.kind, work.billmgr_id))
        report.failed += 1
        report.failures.append(f"{work.kind.value} {work.billmgr_id}: {reason}")
        if work.kind is Kind.CONTACT:
            self._contacts_not_coming.add(work.billmgr_id)
        if work.item is not None:
            self.store.fail(work.item, reason)
        else:
            # a unit of a direct run has no row yet: queue it, the worker retries and records it
            self.store.enqueue(work.kind, work.billmgr_id, work.reason)

    def _strike(self, exc: AmbiguousWriteError) -> None:
        """One more unanswered write in a row; enough of them end the pass as an outage."""
        self._strikes += 1
        if self._strikes >= OUTAGE_STRIKES:
            raise RetryLater(f"{self._strikes} writes in a row went unanswered; the rest waits: "
                             f"{exc.message}",
                             method=exc.method, path=exc.path, status=exc.status,
                             request_id=exc.request_id, detail=exc.detail) from exc

    def _wait(self, work: Work, why: str, seconds: float, report: Report) -> None:
        """Reschedule without judging the record: nothing failed, it is not time yet."""
        self._finished.add((work.kind, work.billmgr_id))
        report.retried += 1
        if work.item is None:
            self.store.enqueue(work.kind, work.billmgr_id, work.reason)
            return
        log.info("%s %s: %s; looked up in %.0f s", work.kind.value, work.billmgr_id, why, seconds)
        self.store.retry(work.item, why, seconds)

    def _retry(self, work: Work, error: str, report: Report, *, outage: bool, at_least: float = 0.0) -> None:
        self._finished.add((work.kind, work.billmgr_id))
        item = work.item
        if item is None:
            self.store.enqueue(work.kind, work.billmgr_id, work.reason)
            report.retried += 1
            return
        give_up = (self.policy.outage_exhausted(item, self.clock()) if outage
                   else self.policy.exhausted(item))
        if give_up:
            self._fail(work, f"gave up after {item.attempts + 1} attempts: {error}", report)
            return
        delay = max(self.policy.delay(item.attempts, self.jitter), at_least)
        log.info("%s %s: retry in %.0f s: %s", work.kind.value, work.billmgr_id, delay, error)
        self.store.retry(item, error, delay)
        report.retried += 1

    def _reschedule_unfinished(self, works: Sequence[Work], report: Report, exc: RetryLater) -> None:
        """After a transient stop: every row of the batch not yet handled waits with backoff."""
        unfinished = [w for w in works if (w.kind, w.billmgr_id) not in self._finished]
        if not unfinished:
            return
        log.warning("amoCRM unavailable (%s); %d rows rescheduled", exc, len(unfinished))
        with self.store.transaction():
            for work in unfinished:
                self._retry(work, str(exc), report, outage=True)

    def _marker_field(self, kind: Kind) -> int:
        field_id = self.ctx.marker_field_ids.get(kind)
        if field_id is None:
            raise RuntimeError(f"the BILLmanager ID field of {kind.amo_entity} is unknown; run fields setup")
        return field_id


def _issues(exc: FixData) -> str:
    if exc.issues:
        return "; ".join(i.describe() for i in exc.issues)
    return exc.detail or str(exc)


def _fingerprint(payload: Any, parents: Sequence[Link] = ()) -> str:
    """What was sent: owned fields, tags and the parent links (a lead created before its
    contact existed differs from one linked to it, so a re-check re-links it)."""
    import hashlib
    import json

    linked = sorted((p.to_entity, p.to_entity_id) for p in parents)
    text = json.dumps([payload.body, list(payload.tags), linked], sort_keys=True, default=str,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _refusal(kind: Kind, reason: str) -> str:
    """The client's reason already names amoCRM, the entity and the field; say it once."""
    return reason if reason.startswith("amoCRM") else f"amoCRM refused {kind.amo_entity}: {reason}"
