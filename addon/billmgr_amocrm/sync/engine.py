"""The sync engine: queue rows in, amoCRM writes and link rows out, exactly once.

The parts, each in a module named for its job:

    passes.py     the pass loop: kinds in order, claims, read-ahead, the export's feed
    pipeline.py   read-ahead (Reader) and write-behind (Writer) connections
    snapshots.py  what a batch is planned from (BILLmanager's state, links, intents)
    planner.py    the pure decisions: create, update, skip, defer, parent links
    batch.py      one planned batch applied in protocol order
    settle.py     creates whose answer was lost: wait, look the marker up, adopt
    creates.py    intent committed, POST, link + sync state + queue row in one commit
    updates.py    PATCH; an entity deleted in amoCRM is re-created and re-linked
    relink.py     what pointed at a re-created entity: queued to point at the new one
    links.py      POST /{entity}/link for parents a write cannot carry
    payers.py     the client's main company; a former legal payer's company is unlinked
    unlinks.py    POST /companies/unlink for companies of former legal payers
    outcomes.py   done, failed, retried, waiting; outage strikes; the report

:class:`Engine` wires them for one amoCRM client, one BILLmanager reader and one store.
"""

from __future__ import annotations

import random
import time
from contextlib import nullcontext
from datetime import datetime
from typing import Callable, ContextManager, Optional, Sequence

from ..domain import Kind
from ..errors import LeaseLost
from ..foundation.clock import utcnow
from ..ports import AmoApi, BillingReader, Lease, MappingContext, RuleSet, Store
from . import planner
from .batch import Steps, apply_batch
from .creates import Creator
from .fingerprint import fingerprint
from .links import Linker
from .outcomes import Bookkeeping, Ledger, PassState, PassStopped, Report
from .passes import Feed, run_pass
from .pipeline import Prepared, Reader, WriteBehind, Writer
from .planner import Work
from .relink import Relinker
from .retry import RetryPolicy
from .settle import Settler
from .snapshots import gather
from .unlinks import Unlinker
from .updates import Updater

DEFAULT_BATCH = 50
HEARTBEAT_EVERY = 10.0
# the client's read timeout (30 s) plus a margin: a write cannot stay in flight longer
DEFAULT_SETTLE_AFTER = 60.0


class Engine:
    """The sync core's imperative shell; the pure decisions live in the planner."""

    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store, rules: RuleSet,
                 ctx: MappingContext, *, batch_size: int = DEFAULT_BATCH,
                 policy: Optional[RetryPolicy] = None, clock: Callable[[], datetime] = utcnow,
                 jitter: Callable[[], float] = random.random, recreate_deleted: bool = True,
                 reader: Optional[Reader] = None, settle_after: float = DEFAULT_SETTLE_AFTER,
                 writer: Optional[Writer] = None, lease: Optional[Lease] = None) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store
        self.rules = rules
        self.ctx = ctx
        self.batch_size = batch_size
        self.clock = clock
        self.reader = reader
        # one engine at a time for the database (store/lease.py); None only for tests on fakes
        self.lease = lease
        self.books = Bookkeeping(store, policy or RetryPolicy(), clock, jitter)
        self.write_behind = WriteBehind(writer)
        linker = Linker(amo, store)
        updater = Updater(amo, store, linker, Relinker(amo, billing, store),
                          recreate_deleted=recreate_deleted)
        # amocrm.conf sync.settle_after: an open create intent younger than this is not looked up yet
        settle = max(0.0, float(settle_after))
        self.steps = Steps(settler=Settler(amo, store, updater, ctx, settle_after=settle),
                           updater=updater,
                           creator=Creator(amo, store, linker, self.write_behind, settle_after=settle,
                                           marker_field_ids=ctx.marker_field_ids, fence=self.fence),
                           unlinker=Unlinker(amo, store), defer_seconds=self.books.policy.defer_seconds)
        self.state = PassState()
        # progress hook for the export's progress line: called after every batch
        self.on_batch: Optional[Callable[[Kind, Report], None]] = None
        # checked between batches: SIGTERM ends a long pass after the batch in flight
        self.should_stop: Callable[[], bool] = lambda: False
        # rows still being queued (the export's Enqueuer): a drain of a kind waits for all of them
        self.feed: Optional[Feed] = None
        # called between batches at most every HEARTBEAT_EVERY seconds: the lease's heartbeat and
        # this host's rate share (bootstrap sets it) stay fresh through a long pass
        self.on_heartbeat: Optional[Callable[[], None]] = None
        self._last_heartbeat = time.monotonic()

    def run_pass(self, max_rounds: int = 1000) -> Report:
        """Drain every due queue row, kinds in order, until nothing is due or amoCRM says stop.

        Holds the engine lease for the pass (or runs under the one its caller holds);
        :class:`~..store.lease.EngineBusy` when another engine has it."""
        with self._engaged():
            return run_pass(self, max_rounds)

    def sync(self, kind: Kind, works: Sequence[Work]) -> Report:
        """Sync one batch of one kind; raises PassStopped when amoCRM cannot be used now."""
        with self._engaged(), self.write_behind.running():
            return self.apply(self.prepare(kind, works, self.billing, self.store))

    def heartbeat(self) -> None:
        """Between batches: renew what a long pass must keep fresh."""
        if self.on_heartbeat is not None and time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY:
            self._last_heartbeat = time.monotonic()
            try:
                self.on_heartbeat()
            except LeaseLost as exc:
                raise PassStopped("lease_lost", exc) from exc

    def fence(self, store: Store) -> None:
        """Inside the transaction that commits a create intent: the lease must still be ours."""
        if self.lease is not None:
            self.lease.verify(store)

    def _engaged(self) -> ContextManager[object]:
        return self.lease.engaged() if self.lease is not None else nullcontext()

    def claim_store(self) -> Store:
        """Where a drain claims its rows: with a reader, the read-ahead claims on its connection."""
        return self.reader.store if self.reader is not None else self.store

    def prepare(self, kind: Kind, works: Sequence[Work], billing: BillingReader,
                store: Store) -> Prepared:
        """Read and plan a batch: reads only, so it may run beside another batch's writes."""
        inputs = gather(kind, works, billing, store, self.rules, self.state.contacts_not_coming)
        plan = planner.plan_batch(works, inputs, self.rules, self.ctx)
        sent = [(c.work.billmgr_id, c.payload) for c in plan.creates]
        sent += [(u.work.billmgr_id, u.payload) for u in plan.updates]
        fingerprints = {b: fingerprint(payload, plan.parents.get(b, ())) for b, payload in sent}
        return Prepared(kind, list(works), plan, fingerprints)

    def apply(self, prepared: Prepared) -> Report:
        """Write a planned batch (see :mod:`.batch`)."""
        return apply_batch(prepared, Ledger(self.books, self.state, prepared.fingerprints), self.steps)
