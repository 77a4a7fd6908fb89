"""The proof rig: a sandbox BILLmanager + the emulator + the real module, and the audits.

``ProofRig`` drives the real adapters (``bootstrap.build``: MySqlStore, BillingDb, the
rules, the real ``AmoClient`` over HTTP) with test-friendly timings: short HTTP timeouts
and backoff, and a retry policy whose delays are zero, because "time passes" is played
by :meth:`ProofRig.make_due` instead of sleeping. ``audit()`` states the invariants every
scenario checks: nothing lost, nothing duplicated, amoCRM shows the latest state: every
field the rules map as the rules compute it now, absences included, and each client's
contact and leads linked to its main company (``mirror_audit``).
"""

from __future__ import annotations

import inspect
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import pymysql

from billmgr_amocrm import service
from billmgr_amocrm.amocrm import AmoClient
from billmgr_amocrm.amocrm.backoff import Backoff
from billmgr_amocrm.bootstrap import App, build, build_amo_client
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import KIND_ORDER, Kind
from billmgr_amocrm.foundation.files import write_atomic
from billmgr_amocrm.markers import marker_identity, marker_value
from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import SyncConfig
from billmgr_amocrm.sync.engine import Engine
from billmgr_amocrm.sync.outcomes import Report
from billmgr_amocrm.sync.retry import RetryPolicy
from tests.sandbox import Sandbox, create_sandbox
from tests.sandbox.dbconf import render_db_conf

from .mirror_audit import accounts_of, body_mismatches, company_mismatches, notes_twice, open_tasks_twice

REPO = Path(__file__).resolve().parents[2]
CI_CLIENTS = 60
CI_SERVICES = 200
SEED = 11
# The product's first delay (2 s) and no longer: later delays are played by make_due(). The
# delay must stay real: a row retried at once would be re-claimed in the same pass while its
# timed-out create is still in flight at amoCRM (the settle cannot see it yet).
FAST_POLICY = RetryPolicy(base_seconds=2.0, cap_seconds=2.0)
FAST_BACKOFF = Backoff(base=0.01, cap=0.05)
READ_TIMEOUT = 0.6
# A timed-out write the emulator still applies lands this long after the client gave up.
IN_FLIGHT = 0.3
# An unanswered create is looked up by its marker only this long after it was sent (the
# product's default is 60 s, for amoCRM's 30 s read timeout); longer than any injected
# delay. make_due() plays this time passing too.
SETTLE_AFTER = 2.0
Key = Tuple[Kind, int]
DEADLOCK = 1213       # ER_LOCK_DEADLOCK

# The seven transient faults of scenario 1, each ~3.2 % so that ~20 % of requests fail.
TRANSIENT_FAULTS: Tuple[Dict[str, Any], ...] = (
    {"action": "status", "status": 500},
    {"action": "status", "status": 502},
    {"action": "status", "status": 503},
    {"action": "status", "status": 504},
    {"action": "status", "status": 429},          # the gateway's HTML 429
    {"action": "reset"},                          # connection reset
    {"action": "delay", "delay": READ_TIMEOUT + IN_FLIGHT},   # read timeout (the write may be applied)
)


def per_rule_probability(total: float, rules: int) -> float:
    """Each of ``rules`` independent rolls fires with p so that one of them fires with ``total``."""
    return 1.0 - (1.0 - total) ** (1.0 / rules)


def fast_client_factory(paths: HostPaths, rate: float, clock: Optional[Any] = None) -> Any:
    """Clients with short timeouts and backoff; ``clock`` (fake time) drives expiry and 403 probes."""
    extra = {"clock": clock} if clock is not None else {}

    def make(chunk_size: int) -> AmoClient:
        return build_amo_client(paths, rate=rate, chunk_size=chunk_size, timeout=(1.0, READ_TIMEOUT),
                                backoff=FAST_BACKOFF, **extra)
    return make


def settle_options() -> Dict[str, Any]:
    """``settle_after`` for an Engine that has it (an unanswered create waits that long before
    its marker lookup); empty for one that does not."""
    return {"settle_after": SETTLE_AFTER} if "settle_after" in inspect.signature(Engine).parameters else {}


def write_module_config(root: Path) -> None:
    """The default amocrm.conf, with the proof's short ``sync.settle_after`` where the product has it
    (worker subprocesses read it from here)."""
    conf = json.loads((REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text(encoding="utf-8"))
    if "settle_after" in SyncConfig.model_fields:
        conf["sync"]["settle_after"] = SETTLE_AFTER
    (root / "etc" / "amocrm" / "amocrm.conf").write_text(json.dumps(conf, ensure_ascii=False, indent=2),
                                                         encoding="utf-8")


def open_rig(db: DbSettings, root: Path, emulator: Any, *, clients: int, services: int,
             today: date, seed: int = SEED, secret_override: Optional[str] = None) -> ProofRig:
    """Fill ``db`` with a sandbox, authorize the module against ``emulator`` and build it."""
    create_sandbox(db, clients=clients, services=services, seed=seed, today=today, create_db=False)
    db_conf = root / "etc" / "billmgr.conf.d" / "db.conf"
    db_conf.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(db_conf, render_db_conf(db))
    write_module_config(root)
    integ = emulator.integration
    service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                      integ["auth_code"])
    paths = HostPaths(root)
    probe = build(paths)
    rate = float(probe.config.sync.rate_limit)
    probe.close()
    app = build(paths, amo_factory=fast_client_factory(paths, rate))
    return ProofRig(root=root, db=db, sandbox=Sandbox(db), emulator=emulator, app=app)


@dataclass
class Audit:
    """What is wrong after a run; every list empty (and counts zero) means consistent."""

    duplicates: Dict[str, Dict[str, int]] = field(default_factory=dict)   # entity -> marker -> count
    missing: List[Key] = field(default_factory=list)        # wanted but not linked
    dangling: List[Key] = field(default_factory=list)       # linked to no live amoCRM entity
    wrong_marker: List[Key] = field(default_factory=list)   # linked entity carries another marker
    stale: List[str] = field(default_factory=list)          # amoCRM does not show the latest state
    wrong_company: List[str] = field(default_factory=list)  # a contact or lead not on its main company
    pending: int = 0
    failed: List[str] = field(default_factory=list)
    notes_twice: Dict[str, int] = field(default_factory=dict)       # a payment noted twice on one entity
    tasks_twice: Dict[str, int] = field(default_factory=dict)       # two open tasks: one service and date

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing or self.dangling or self.wrong_marker or self.stale
                    or self.wrong_company or self.pending or self.failed or self.notes_twice
                    or self.tasks_twice)

    def summary(self) -> str:
        return (f"duplicates={self.duplicates} missing={self.missing[:10]} dangling={self.dangling[:10]} "
                f"wrong_marker={self.wrong_marker[:10]} stale={self.stale[:5]} "
                f"wrong_company={self.wrong_company[:5]} pending={self.pending} failed={self.failed[:5]} "
                f"notes_twice={self.notes_twice} tasks_twice={self.tasks_twice}")


@dataclass
class ProofRig:
    root: Path
    db: DbSettings
    sandbox: Sandbox
    emulator: Any
    app: App
    touched: Set[Key] = field(default_factory=set)
    events: int = 0
    _seen_seq: int = 0
    _pools: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def control(self) -> Any:
        return self.emulator.control

    @property
    def paths(self) -> HostPaths:
        return self.app.paths

    def close(self) -> None:
        self.app.close()
        self.sandbox.close()

    def rebuild(self, clock: Optional[Any] = None) -> None:
        """A new App (new MySQL session, new client) as a restarted worker would have."""
        self.app.close()
        rate = float(self.app.config.sync.rate_limit)
        self.app = build(self.paths, amo_factory=fast_client_factory(self.paths, rate, clock))

    # ------------------------------------------------------------------ driving
    def engine(self, batch_size: Optional[int] = None, policy: RetryPolicy = FAST_POLICY) -> Engine:
        size = batch_size or int(self.app.config.sync.batch_size)
        return Engine(self.app.amo(size), self.app.billing, self.app.store, self.app.rules,
                      self.app.context(), batch_size=size, policy=policy, **settle_options())

    def enqueue(self, kind: Kind, billmgr_id: int, reason: str = "edit") -> None:
        self.app.store.enqueue(kind, billmgr_id, reason)
        self.touched.add((kind, billmgr_id))
        self.events += 1

    def enqueue_everything(self) -> int:
        """The initial export's queueing (every entity of every kind)."""
        count = 0
        for kind in KIND_ORDER:
            for ids in self.app.billing.iter_ids(kind, 0, 1000):
                with self.app.store.transaction():
                    for billmgr_id in ids:
                        self.enqueue(kind, billmgr_id, "export")
                        count += 1
        return count

    def sql(self, statement: str, args: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        """One statement of the test's own (autocommit); an InnoDB deadlock with an engine's unit
        in another process is retried, as the worker would retry its unit (seen in a full run:
        make_due's UPDATE of the queue against a daemon's claim)."""
        for attempt in range(5):
            try:
                return self.sandbox.query(statement, args)
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != DEADLOCK or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def make_due(self) -> None:
        """Time passes: every pending row's backoff is over, every open create intent is
        ``SETTLE_AFTER`` older.

        The product's shortest retry delay (2 s) is longer than the time a timed-out write
        of the emulator stays in flight, so "time passes" waits for those writes to land
        first (and only then may an intent's marker lookup run).
        """
        seq = self._seen_seq
        log = self.control.requests(since=seq)
        if log:
            self._seen_seq = max(int(r["seq"]) for r in log)
            if any((r.get("fault") or {}).get("action") == "delay" for r in log):
                time.sleep(IN_FLIGHT + 0.1)
        self.sql("UPDATE amocrm_queue SET next_attempt_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND "
                 "WHERE state = 'pending'")
        self.sql("UPDATE amocrm_sync_state SET create_started_at = create_started_at - INTERVAL %s "
                 "MICROSECOND WHERE create_started_at IS NOT NULL", (int(SETTLE_AFTER * 1_000_000),))
        for table in ("amocrm_payment2note", "amocrm_renewal_task"):     # notes' and tasks' intents too
            self.sql(f"UPDATE {table} SET intent_at = intent_at - INTERVAL %s MICROSECOND "
                     "WHERE intent_at IS NOT NULL", (int(SETTLE_AFTER * 1_000_000),))

    def depth(self) -> int:
        return int(self.sql("SELECT COUNT(*) FROM amocrm_queue WHERE state = 'pending'")[0][0])

    def drain(self, max_passes: int = 200, batch_size: Optional[int] = None,
              engine: Optional[Engine] = None) -> Report:
        """Run passes (making retries due in between) until the queue is empty."""
        total = Report()
        engine = engine or self.engine(batch_size)
        for _ in range(max_passes):
            report = engine.run_pass()
            total.add(report)
            if not self.depth():
                return total
            self.make_due()
        raise AssertionError(f"queue not drained after {max_passes} passes: {self.depth()} rows pending")

    def run_worker(self, timeout: float = 120,
                   env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        """``sbin/amocrm_task --once`` as cron runs it."""
        return subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                              capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                              timeout=timeout, check=False)

    # ------------------------------------------------------------------ BILLmanager changes
    def ids(self, kind: Kind) -> List[int]:
        table = {Kind.CONTACT: "account", Kind.COMPANY: "profile", Kind.LEAD: "item"}[kind]
        return [int(r[0]) for r in self.sql(f"SELECT id FROM {table} ORDER BY id")]  # noqa: S608

    def accounts_with_user(self) -> List[int]:
        return [int(r[0]) for r in self.sql("SELECT DISTINCT account FROM user ORDER BY account")]

    def _pool(self, name: str) -> List[int]:
        """Ids to pick from, read once (random_event appends what it creates)."""
        if name not in self._pools:
            self._pools[name] = (self.accounts_with_user() if name == "users"
                                 else self.ids(Kind(name)))
        return self._pools[name]

    def random_event(self, rng: random.Random, serial: int) -> Key:
        """One panel-like change in BILLmanager and the event the hook would record for it."""
        key, reason = self.random_change(rng, serial)
        self.enqueue(key[0], key[1], reason)
        return key

    def random_change(self, rng: random.Random, serial: int) -> Tuple[Key, str]:
        """One panel-like change in BILLmanager: the entity and the event's reason (not queued)."""
        roll = rng.random()
        if roll < 0.30:
            account = rng.choice(self._pool("users"))
            self.sandbox.edit_client(account, realname=f"Клиент Правка{serial}")
            key = (Kind.CONTACT, account)
            reason = "edit"
        elif roll < 0.38:
            account = self.sandbox.add_client(name=f"Новый {serial}",
                                              email=f"new{serial}@example.com").account_id
            key, reason = (Kind.CONTACT, account), "edit"
            self._pool("contact").append(account)
            self._pool("users").append(account)
        elif roll < 0.50:
            payer = rng.choice(self._pool("company"))
            self.sandbox.edit_payer(payer, name=f'ООО "Правка {serial}"')
            key, reason = (Kind.COMPANY, payer), "edit"
        elif roll < 0.55:
            payer = rng.choice(self._pool("company"))
            self.sandbox.edit_payer(payer, profiletype=rng.choice((1, 2, 3)))
            key, reason = (Kind.COMPANY, payer), "edit"
        elif roll < 0.60:
            account = rng.choice(self._pool("contact"))
            payer = self.sandbox.add_payer(account, name=f'ООО "Новая {serial}"')
            key, reason = (Kind.COMPANY, payer), "edit"
            self._pool("company").append(payer)
        elif roll < 0.80:
            item = rng.choice(self._pool("lead"))
            self.sandbox.prolong_service(item)
            key, reason = (Kind.LEAD, item), "prolong"
        elif roll < 0.92:
            item = rng.choice(self._pool("lead"))
            self.sandbox.set_service_param(item, "domain", f"site{serial}.example.ru")
            key, reason = (Kind.LEAD, item), "edit"
        else:
            account = rng.choice(self._pool("contact"))
            item = self.sandbox.open_service(account)
            key, reason = (Kind.LEAD, item), "open"
            self._pool("lead").append(item)
        return key, reason

    # ------------------------------------------------------------------ audits
    def links(self, kind: Kind) -> Dict[int, int]:
        rows = self.sql(f"SELECT billmgr_id, amocrm_id FROM {kind.link_table}")  # noqa: S608
        return {int(b): int(a) for b, a in rows}

    def live_entities(self, kind: Kind) -> Dict[int, Dict[str, Any]]:
        return {int(e["id"]): e for e in self.control.entities(kind.amo_entity, include_deleted=False)}

    def markers_of(self, kind: Kind, entity: Dict[str, Any]) -> List[str]:
        field_id = self.app.marker_fields()[kind]
        return [marker_identity(str(v["value"])) for cf in entity.get("custom_fields_values") or []
                if cf.get("field_id") == field_id for v in cf.get("values") or []]

    def snapshots(self, kind: Kind, ids: Sequence[int]) -> Dict[int, Any]:
        reader = {Kind.CONTACT: self.app.billing.clients, Kind.COMPANY: self.app.billing.payers,
                  Kind.LEAD: self.app.billing.services}[kind]
        out: Dict[int, Any] = {}
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), 500):
            out.update(reader(ordered[start:start + 500]))
        return out

    def wanted(self, kind: Kind, snapshot: Any) -> bool:
        if snapshot is None:
            return False
        if kind is Kind.COMPANY and int(snapshot.profiletype) != 2:
            return False
        return bool(self.app.rules.wants(kind, snapshot))

    def audit(self, keys: Optional[Iterable[Key]] = None) -> Audit:
        """Check every key (default: everything touched) against amoCRM and the tables."""
        keys = set(self.touched if keys is None else keys)
        # The App reads BILLmanager on the store's connection (REPEATABLE READ, autocommit off):
        # a billing read outside a store unit opens a snapshot that lasts until the next unit
        # begins, e.g. from the previous audit's company check to this one. Without this commit
        # the audit compared amoCRM with BILLmanager as it was then (edits made since unseen).
        self.app.conn.commit()
        audit = Audit()
        ctx = self.app.context()
        for kind in KIND_ORDER:
            entities = self.live_entities(kind)
            counts: Dict[str, int] = {}
            for entity in entities.values():
                for marker in self.markers_of(kind, entity):
                    counts[marker] = counts.get(marker, 0) + 1
            dups = {m: n for m, n in counts.items() if n > 1}
            if dups:
                audit.duplicates[kind.amo_entity] = dups
            links = self.links(kind)
            for billmgr_id, amocrm_id in links.items():
                linked = entities.get(amocrm_id)
                if linked is None:
                    audit.dangling.append((kind, billmgr_id))
                elif marker_value(kind, billmgr_id) not in self.markers_of(kind, linked):
                    audit.wrong_marker.append((kind, billmgr_id))
            mine = [i for k, i in keys if k is kind]
            snaps = self.snapshots(kind, mine)
            # a lead is mapped with its last service event, as the worker maps it
            events = self.app.store.service_events(mine) if kind is Kind.LEAD else {}
            for billmgr_id in mine:
                snap = snaps.get(billmgr_id)
                if not self.wanted(kind, snap):
                    continue
                if billmgr_id not in links:
                    audit.missing.append((kind, billmgr_id))
                    continue
                shown = entities.get(links[billmgr_id])
                if shown is None:
                    continue
                expected = self.app.rules.payload(kind, snap, replace(ctx, event=events.get(billmgr_id)))
                audit.stale += body_mismatches(f"{kind.value} {billmgr_id}", expected.body, shown)
        audit.wrong_company = company_mismatches(self, accounts_of(self, keys))
        audit.pending = self.depth()
        audit.failed = [f"{k} {b}: {e}" for k, b, e in
                        self.sql("SELECT kind, billmgr_id, last_error FROM amocrm_queue "
                                 "WHERE state = 'failed'")]
        state = self.control.state()
        audit.notes_twice = notes_twice(state)
        audit.tasks_twice = open_tasks_twice(state)
        return audit

    # ------------------------------------------------------------------ emulator views
    def api_requests(self) -> List[Dict[str, Any]]:
        return [r for r in self.control.requests() if not r["path"].startswith("/_emulator")]

    def writes(self) -> int:
        return sum(1 for r in self.api_requests() if r["method"] in ("POST", "PATCH"))


def all_keys(rig: ProofRig) -> Set[Key]:
    return {(kind, i) for kind in KIND_ORDER for i in rig.ids(kind)}


# token_status() states in which the module still works without a new authorization code (an
# expired access token is refreshed on the next request); anything else ("needs_reauth", a stop)
# means the admin must act.
USABLE_TOKEN_STATES = ("ok", "expiring", "expired")
