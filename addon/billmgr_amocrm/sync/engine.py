"""The sync engine: queue rows in, amoCRM writes and link rows out, exactly once.

The parts, each in a module named for its job:

    passes.py     the pass loop: kinds in order, claims, the export's feed, batches in flight
    unmark.py     before a pass sends: the marker off what an admin unlinked
    gone_fields.py  fields, stages and users amoCRM took away: noted, made anew or stood in for
    adopt.py      before a pass sends: bind what amoCRM holds of ours that the tables lost
    lanes.py      the connections batches are written on at once, and what orders them
    snapshots.py  what a batch is planned from (BILLmanager's state, links, intents)
    planner.py    the pure decisions: create, update, skip, defer, parent links
    batch.py      one planned batch applied in protocol order
    settle.py     creates whose answer was lost: wait, look the marker up, adopt
    creates.py    intent committed, POST, link + sync state + queue row in one commit
    updates.py    PATCH; an entity deleted in amoCRM is re-created and re-linked
    relink.py     what pointed at a re-created entity: queued to point at the new one
    links.py      POST /{entity}/link for parents a write cannot carry
    payers.py     the client's main company; a former legal payer's company is unlinked
    unlinks.py    POST /companies/unlink for companies of former legal payers and deleted ones
    outcomes.py   done, failed, retried, waiting; outage strikes; the report

:class:`Engine` wires them for one amoCRM client, one BILLmanager reader and one store,
and, with :class:`.lanes.Lanes`, writes several batches at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime
from typing import Callable, ContextManager, Mapping, Optional, Sequence, cast

from ..domain import KIND_ORDER, Kind
from ..errors import FixData, Halted, LeaseLost
from ..foundation.clock import utcnow
from ..ports import AmoApi, BillingReader, Lease, MappingContext, RuleSet, Store
from . import planner
from .adopt import Adopter, adoption_pending
from .batch import Prepared, Steps, apply_batch, pass_stops
from .creates import Creator
from .fingerprint import fingerprint
from .gone_fields import Gone, deactivated
from .lanes import HaltingAmo, Lane, Lanes
from .links import Linker
from .match import Matcher, cancel_matching, matching_pending
from .outcomes import BatchGate, Bookkeeping, Ledger, OpenGate, PassState, PassStopped, Report
from .passes import Feed, run_pass
from .planner import Work
from .relink import Relinker
from .retry import RetryPolicy
from .settle import Settler
from .snapshots import clients_of, gather, read_snapshots
from .timeline import Timeline
from .unlinks import Unlinker
from .unmark import Unmarker
from .updates import Updater

log = logging.getLogger(__name__)

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
                 settle_after: float = DEFAULT_SETTLE_AFTER, lanes: Optional[Lanes] = None,
                 lease: Optional[Lease] = None, match_existing: bool = True) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store
        self.rules = rules
        self.ctx = ctx
        self.batch_size = batch_size
        self.clock = clock
        # several batches in flight, each on a lane of its own; None: one at a time, on ``store``
        self.lanes = lanes
        # one engine at a time for the database (store/lease.py); None only for tests on fakes
        self.lease = lease
        self.books = Bookkeeping(store, policy or RetryPolicy(), clock, jitter)
        self.recreate_deleted = recreate_deleted
        # amocrm.conf sync.match_existing as it is now: turned off after the set-up asked for
        # the binding to people's contacts, no binding is done
        self.match_existing = match_existing
        # amocrm.conf sync.settle_after: an open create intent younger than this is not looked up yet
        self.settle_after = max(0.0, float(settle_after))
        self.state = PassState()
        # set when the pass stops: batches still in flight send nothing more
        self.halt = threading.Event()
        # the settings' answer to what amoCRM took away (fields, stages, users): makes the
        # module's fields anew, notes the rules' and returns the context to map with from now on
        # (bootstrap sets it; None: the records refused for them fail, :mod:`.gone_fields`)
        self.on_gone: Optional[Callable[[Gone], MappingContext]] = None
        # progress hook for the export's progress line: called after every batch
        self.on_batch: Optional[Callable[[Kind, Report], None]] = None
        # checked between batches: SIGTERM ends a long pass after the batches in flight
        self.should_stop: Callable[[], bool] = lambda: False
        # rows still being queued (the export's Enqueuer): a drain of a kind waits for all of them
        self.feed: Optional[Feed] = None
        # called between batches at most every HEARTBEAT_EVERY seconds: the lease's heartbeat and
        # this host's rate share (bootstrap sets it) stay fresh through a long pass
        self.on_heartbeat: Optional[Callable[[], None]] = None
        # stamps the database after each pass and notices a restored backup before the next
        # (:mod:`.timeline`; bootstrap sets it; None: tests on fakes)
        self.timeline: Optional[Timeline] = None
        self._last_heartbeat = time.monotonic()

    @property
    def concurrency(self) -> int:
        """Batches in flight at most."""
        return self.lanes.size if self.lanes is not None else 1

    def run_pass(self, max_rounds: int = 1000) -> Report:
        """Drain every due queue row, kinds in order, until nothing is due or amoCRM says stop.

        Holds the engine lease for the pass (or runs under the one its caller holds);
        :class:`~..store.lease.EngineBusy` when another engine has it."""
        with self._engaged():
            self.state = PassState()
            self.halt.clear()
            held = self.timeline.begin() if self.timeline is not None else None
            if held is not None:
                return Report(stopped="restoring", stop_reason=held)
            report = run_pass(self, max_rounds)
            if self.timeline is not None:
                self.timeline.end()
            return report

    def adopt(self) -> int:
        """Before anything is sent: bind what amoCRM holds of ours that the tables lost, if an
        adoption is pending (:mod:`.adopt`), then, before a first export, the clients to the
        contacts people made (:mod:`.match`); how many were bound. First of all, the marker
        comes off what an admin unlinked (:mod:`.unmark`), so that neither binds it again.
        Raises :class:`PassStopped`."""
        if self.store.unmarks_pending():
            unmarker = Unmarker(self.amo, self.billing, self.store, self.ctx.marker_field_ids,
                                between_chunks=self.heartbeat, should_stop=self.should_stop)
            with pass_stops():
                unmarker.run()
        adopted = 0
        if adoption_pending(self.store):
            adopter = Adopter(self.amo, self.billing, self.store, self.ctx.marker_field_ids,
                              between_pages=self.heartbeat, should_stop=self.should_stop)
            with pass_stops():
                adopted += adopter.run()
        # after the adoption: a contact the module made is bound by its marker, never by its e-mail
        field_id = self.ctx.marker_field_ids.get(Kind.CONTACT)
        if matching_pending(self.store) and not self.match_existing:
            cancel_matching(self.store)
        elif matching_pending(self.store) and not adoption_pending(self.store) and field_id is not None:
            matcher = Matcher(self.amo, self.billing, self.store, self.rules, field_id,
                              between_pages=self.heartbeat, should_stop=self.should_stop)
            with pass_stops():
                adopted += matcher.run()
        return adopted

    def look_at_refusals(self) -> None:
        """Between rounds, no batch in flight: read the catalog of every kind whose records were
        held back for a refused custom field, the pipelines if deals were held back for their
        stage, the users if a responsible user was refused, and have the settings answer for
        what amoCRM really no longer has
        (:mod:`.gone_fields`); the held records go again in the next round. Raises
        :class:`PassStopped`."""
        with self.state.lock:
            fields, self.state.suspect_fields = self.state.suspect_fields, {}
            stages, self.state.suspect_placements = self.state.suspect_placements, set()
            users, self.state.suspect_users = self.state.suspect_users, False
            self.state.judged_fields.update(i for ids in fields.values() for i in ids)
            self.state.judged_placements.update(stages)
            self.state.judged_users = self.state.judged_users or users
        with pass_stops():
            gone = Gone(self._gone_fields(fields), self._gone_stages(stages),
                        deactivated(self.amo.users()) if users else None)
            if gone and self.on_gone is not None:
                try:
                    self.ctx = self.on_gone(gone)
                except FixData as exc:   # amoCRM refused to make a field anew: the records fail with it
                    log.error("what amoCRM no longer has could not be set up again: %s", exc)

    def _gone_fields(self, suspects: Mapping[Kind, set[int]]) -> dict[Kind, frozenset[int]]:
        gone: dict[Kind, frozenset[int]] = {}
        for kind in KIND_ORDER:
            ids = suspects.get(kind)
            if not ids:
                continue
            held = {f.get("id") for f in self.amo.custom_fields(kind.amo_entity)}
            present = sorted(i for i in ids if i in held)
            if present:
                log.info("amoCRM refused field %s of %s but still has it: the records are sent "
                         "again, and fail with amoCRM's words if refused again",
                         ", ".join(map(str, present)), kind.amo_entity)
            if len(present) < len(ids):
                gone[kind] = frozenset(i for i in ids if i not in held)
        return gone

    def _gone_stages(self, suspects: set[tuple[int, int]]) -> frozenset[tuple[int, int]]:
        if not suspects:
            return frozenset()
        held = {(p.get("id"), s.get("id")) for p in self.amo.pipelines()
                for s in (p.get("_embedded") or {}).get("statuses") or []}
        return frozenset(pair for pair in suspects if pair not in held)

    def heartbeat(self) -> None:
        """Between batches: renew what a long pass must keep fresh."""
        if self.on_heartbeat is not None and time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY:
            self._last_heartbeat = time.monotonic()
            try:
                self.on_heartbeat()
            except LeaseLost as exc:
                raise PassStopped("lease_lost", exc) from exc

    def fence(self, store: Store) -> None:
        """Inside the transaction that commits a create intent: the pass goes on and the lease is ours."""
        if self.halt.is_set():
            raise Halted("the pass is stopping")
        if self.lease is not None:
            self.lease.verify(store)

    def _engaged(self) -> ContextManager[object]:
        return self.lease.engaged() if self.lease is not None else nullcontext()

    def write_batch(self, lane: Lane, kind: Kind, works: Sequence[Work],
                    gate: Optional[BatchGate] = None) -> Report:
        """Read, plan and write one batch on ``lane``; raises :class:`PassStopped` when amoCRM
        cannot be used now (``halted``: another batch stopped the pass first).

        ``gate`` (:class:`.lanes.Gate`) gets the batch's clients once its snapshots are read and
        returns when the links it is planned from are committed; it hears when the batch's own
        are, and holds a company batch's ``/link`` calls behind earlier ones of its clients."""
        gate = gate or OpenGate()
        try:
            with lane.store.transaction():
                pass   # an empty unit: its BEGIN revives a connection the server dropped since the last batch
            snapshots = read_snapshots(lane.billing, kind, sorted({w.billmgr_id for w in works}), self.rules)
            gate.plan_after(clients_of(kind, snapshots))
            inputs = gather(kind, works, lane.billing, lane.store, self.rules,
                            self.state.contacts_not_coming, snapshots)
            plan = planner.plan_batch(works, inputs, self.rules, self.ctx)
            sent = [(c.work.billmgr_id, c.payload) for c in plan.creates]
            sent += [(u.work.billmgr_id, u.payload) for u in plan.updates]
            fingerprints = {b: fingerprint(payload, plan.parents.get(b, ())) for b, payload in sent}
            books = replace(self.books, store=lane.store)
            return apply_batch(Prepared(kind, list(works), plan, fingerprints),
                               Ledger(books, self.state, fingerprints, gate), self.steps(lane))
        except Halted as exc:
            raise PassStopped("halted", exc) from exc
        except PassStopped:
            self.halt.set()   # from now on, not when the dispatcher hears of it: the others send nothing
            raise

    def steps(self, lane: Lane) -> Steps:
        """The writing parts of one batch, on ``lane``'s connection."""
        amo = cast(AmoApi, HaltingAmo(self.amo, self.halt.is_set))
        store = lane.store
        linker = Linker(amo, store)
        updater = Updater(amo, store, linker, Relinker(amo, lane.billing, store),
                          recreate_deleted=self.recreate_deleted)
        return Steps(settler=Settler(amo, store, updater, self.ctx, settle_after=self.settle_after),
                     updater=updater,
                     creator=Creator(amo, store, linker, settle_after=self.settle_after,
                                     marker_field_ids=self.ctx.marker_field_ids, fence=self.fence),
                     unlinker=Unlinker(amo, lane.billing, store),
                     defer_seconds=self.books.policy.defer_seconds)

    @property
    def own_lane(self) -> Lane:
        """The engine's own connection: where batches run one at a time without lanes."""
        return Lane(self.billing, self.store)
