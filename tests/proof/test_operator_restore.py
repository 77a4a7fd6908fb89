"""Operator scenario 11: BILLmanager's database restored from a backup while cron keeps running.

The module has exported everything; cron runs ``amocrm_task --once`` every 2 s and saves arrive
through the hook. The admin takes a backup with ``mysqldump --single-transaction`` while this
goes on; billing goes on (clients signed up and renamed, payers and services added and edited)
and the module sends it all. Then the admin restores the backup with ``mysql``, cron still
running (a run may meet a table half restored); billing goes on from the restored state, and
sign-ups take the ids of the clients the restore lost.

amoCRM must end a mirror of billing as it is after the restore: the audit of everything billing
holds (every link live and carrying its own marker, every mapped field as billing holds it now,
nothing pending or failed), and everything the backup held bound to the amoCRM entity it was
bound to before the restore (adopted again where the backup had not bound it yet, never made
anew). Allowed, and only these: the marker of an id the restore lost twice (the lost record's
entity stays, nobody's now, beside the new record's with the same id), and, as in scenario 10,
an entity the backup had not bound yet and billing changed beyond recognition after the backup
(the change went back with the restore, amoCRM kept it: nothing the module wrote still names
it) made anew once. A company the module linked after the backup to a client the restore left
without that payer leaves the client's contact and leads (the audit's company check). Not
handled, counted: a service lost with the restore whose id went to a new service of the same
tariff gets the lost record's deal (its name is the evidence), with the lost client's company.
"""

from __future__ import annotations

import random
import subprocess
import time
from typing import Any, Callable, Dict, Set, Tuple

from billmgr_amocrm.domain import KIND_ORDER, Kind
from billmgr_amocrm.sync.timeline import QUIET_ENV, RESTORED, Restore

from .operator_rig import Cron, Operator, drained_by_worker, record_figures, wait_until
from .support import CI_CLIENTS, CI_SERVICES, ProofRig, all_keys

FULL_CLIENTS, FULL_SERVICES = 1000, 5000
# how long the tables must stay as they are before the module acts on a restore (120 s shipped)
QUIET = 5.0


def _item_of(rig: ProofRig, lead: int) -> int:
    return next((b for b, a in rig.links(Kind.LEAD).items() if a == lead), 0)


def released(rig: ProofRig, since: int) -> int:
    """How many links of companies no client has any more the module removed after the restore."""
    return sum(len(r.get("body") or []) for r in rig.control.requests(since=since)
               if r["method"] == "POST" and r["path"] == "/api/v4/companies/unlink")


def _mysql(tool: str, rig: ProofRig) -> list:
    db = rig.db
    args = [tool, "-h", db.host, "-P", str(db.port), "-u", db.user]
    return args + ([f"-p{db.password}"] if db.password else []) + [db.database]


def _held(rig: ProofRig) -> Dict[Kind, Set[int]]:
    return {kind: set(rig.ids(kind)) for kind in KIND_ORDER}


def _restore_state(rig: ProofRig) -> str:
    rows = rig.sql("SELECT value FROM amocrm_cursor WHERE name = %s", (RESTORED,))
    return str(rows[0][0]) if rows else ""


def _changes(rig: ProofRig, admin: Operator, rng: random.Random, serials: range) -> Set[Tuple[Kind, int]]:
    changed = set()
    for serial in serials:
        key, _ = rig.random_change(rng, serial)
        changed.add(key)
        admin.save(rig, key)
        time.sleep(rng.uniform(0.0, 0.05))
    return changed


def test_a_database_restored_from_a_backup_under_cron_makes_nothing_twice(
        proof_rig_factory: Callable[..., ProofRig], scale: Any) -> None:
    started = time.monotonic()
    rig = proof_rig_factory(clients=scale(CI_CLIENTS, FULL_CLIENTS),
                            services=scale(CI_SERVICES, FULL_SERVICES))
    admin = Operator(rig.root, env={QUIET_ENV: str(QUIET)})
    admin.cli("sync", timeout=900)
    while rig.depth():
        rig.make_due()
        admin.cli("sync", timeout=900)
    assert rig.audit(all_keys(rig)).ok
    rng = random.Random(11)
    rounds = scale(20, 200)
    try:
        with Cron(admin, every=2.0) as cron:
            _changes(rig, admin, rng, range(0, rounds))          # queued, some sent before the backup
            dump = subprocess.run([*_mysql("mysqldump", rig), "--single-transaction"], check=True,
                                  capture_output=True, timeout=600).stdout
            held = _held(rig)
            after_backup = _changes(rig, admin, rng, range(rounds, 2 * rounds))
            wait_until(drained_by_worker(rig, admin), scale(180, 900),
                       "cron to send what came after the backup")
            before = {kind: rig.links(kind) for kind in KIND_ORDER}
            lost = {(kind, i) for kind, ids in _held_now(rig, held).items() for i in ids}
            seq = int(rig.control.requests()[-1]["seq"])
            rig.close()                       # the test's own sessions hold no table open
            restore_began = time.monotonic()
            subprocess.run(_mysql("mysql", rig), input=dump, check=True, capture_output=True, timeout=900)
            restore_seconds = time.monotonic() - restore_began
            failed_under_restore = list(cron.errors)
        rig.rebuild()
        rig._pools.clear()                    # billing is the backup's again
        assert _held(rig) == held
        with Cron(admin, every=2.0) as cron:
            wait_until(lambda: Restore.parse(_restore_state(rig)) is not None
                       and not Restore.parse(_restore_state(rig)).pending,   # type: ignore[union-attr]
                       scale(120, 600), "cron to notice the restore and act once it is over")
            # billing goes on: sign-ups take the lost clients' ids
            _changes(rig, admin, rng, range(2 * rounds, 3 * rounds))
            wait_until(drained_by_worker(rig, admin), scale(180, 1200), "cron to drain the queue")
        assert not cron.errors, cron.errors
        rig.rebuild()

        audit = rig.audit(all_keys(rig))
        twice = {(kind, int(marker.rsplit(":", 1)[1])): n for kind in KIND_ORDER
                 for marker, n in audit.duplicates.get(kind.amo_entity, {}).items()}
        assert set(twice) <= lost | after_backup, sorted(set(twice) - lost - after_backup)[:10]
        assert all(n == 2 for n in twice.values()), twice
        audit.duplicates = {}
        # a company the module linked after the backup (a payer added, or made a legal entity
        # again) leaves the client's contact and leads when the restore leaves the client without
        # that payer: the adoption after the restore finds it unbound and unlinks it (until stop
        # 31 it stayed linked: 28 such links at full scale)
        # Not handled (README): a service lost with the restore whose id BILLmanager gave to a new
        # service of the same tariff: the adoption takes the lost record's deal for it (the same
        # name is its evidence), and the company of the lost record's client stays on it. Allowed
        # only on the deals of lost ids given again, counted
        on_lost_ids = [w for w in audit.wrong_company if w.endswith("not None") and " lead " in w
                       and (Kind.LEAD, _item_of(rig, int(w.split()[3]))) in lost]
        audit.wrong_company = [w for w in audit.wrong_company if w not in on_lost_ids]
        assert audit.ok, audit.summary()
        after = {kind: rig.links(kind) for kind in KIND_ORDER}
        moved = [(kind.value, b, a, after[kind].get(b)) for kind in KIND_ORDER
                 for b, a in before[kind].items()
                 if b in held[kind] and after[kind].get(b) != a and (kind, b) not in twice]
        assert not moved, f"bound to another amoCRM entity than before the restore: {moved[:5]}"
        scans = {r["path"] for r in rig.control.requests(since=seq) if r["method"] == "GET"
                 and "filter[created_at][from]" in str(r.get("query"))}
        assert scans == {"/api/v4/contacts", "/api/v4/companies", "/api/v4/leads"}, scans
        print(f"runs failed while mysql restored the dump ({restore_seconds:.1f} s): "
              f"{failed_under_restore[:3]}")
        record_figures(rig, started, lost=len(lost), twice=len(twice),
                       changed_after_backup=len(after_backup), restore_seconds=round(restore_seconds, 1),
                       failed_under_restore=len(failed_under_restore), saves=3 * rounds,
                       released=released(rig, seq), lost_deals_taken_with_their_company=len(on_lost_ids))
    finally:
        admin.kill_all()


def _held_now(rig: ProofRig, held: Dict[Kind, Set[int]]) -> Dict[Kind, Set[int]]:
    """What billing holds now that the backup did not: lost with the restore."""
    return {kind: set(rig.ids(kind)) - held[kind] for kind in KIND_ORDER}
