"""Operator scenario 10: the admin starts over while billing goes on and cron keeps running.

The module has exported everything; the admin removes it with its data (the module's tables,
etc/amocrm and var/amocrm go: what ``amocrm-purge --yes`` removes; amoCRM keeps everything);
billing goes on meanwhile (clients renamed, payers and services edited, new ones opened: no
module hears of it); the module is installed again (its default config) and cron's worker,
run before the admin authorizes, sends nothing; the admin authorizes the same account with a
new code, cron runs ``amocrm_task --once`` every 2 s, and saves arrive through the hook while
the export runs.

amoCRM must end a mirror of billing: the audit (every link live and carrying its own marker,
every mapped field as billing holds it now, nothing pending or failed), every entity bound
before bound again to the same amoCRM entity (adopted, not made anew), and the adoption really
ran (the scan read the lists). The one exception, as documented: an entity the gap changed so
that nothing the module wrote still names it (a payer renamed whose company was not its
client's main one, a client renamed with neither e-mail nor phone) is made anew, the old one
left beside it; the test allows those, once each, and only among what was changed after the
removal (in the gap, or by the saves while the adoption ran).
"""

from __future__ import annotations

import random
import shutil
import time
from typing import Any, Callable

from billmgr_amocrm.domain import KIND_ORDER
from billmgr_amocrm.store.migrations import drop_all
from tests.fixtures.mgr5 import make_root

from .operator_rig import Cron, Operator, drained_by_worker, record_figures, wait_until
from .support import CI_CLIENTS, CI_SERVICES, ProofRig, all_keys, write_module_config

FULL_CLIENTS, FULL_SERVICES = 1000, 5000


def _remove_with_data(rig: ProofRig) -> None:
    """What ``amocrm-install --uninstall --drop-data`` (or ``amocrm-purge --yes``) removes of the data,
    then what a new install lays down: the default etc/amocrm, no tokens, no tables yet."""
    rig.app.close()
    assert drop_all(rig.sandbox.conn)
    shutil.rmtree(rig.root / "etc" / "amocrm")
    for state in (rig.root / "var").glob("amocrm*"):
        shutil.rmtree(state) if state.is_dir() else state.unlink()
    make_root(rig.root.parent)
    write_module_config(rig.root)


def _cursor(rig: ProofRig, name: str) -> str:
    rows = rig.sql("SELECT value FROM amocrm_cursor WHERE name = %s", (name,))
    return str(rows[0][0]) if rows else ""


def test_removed_with_its_data_and_installed_again_under_cron_nothing_is_made_twice(
        proof_rig_factory: Callable[..., ProofRig], scale: Any) -> None:
    started = time.monotonic()
    rig = proof_rig_factory(clients=scale(CI_CLIENTS, FULL_CLIENTS),
                            services=scale(CI_SERVICES, FULL_SERVICES))
    admin = Operator(rig.root)
    admin.cli("sync", timeout=900)
    while rig.depth():
        rig.make_due()
        admin.cli("sync", timeout=900)
    assert rig.audit(all_keys(rig)).ok
    before = {kind: rig.links(kind) for kind in KIND_ORDER}
    rng = random.Random(10)
    try:
        _remove_with_data(rig)
        gap = scale(30, 300)
        changed_in_gap = set()
        for serial in range(gap):        # billing goes on; no module hears of it
            key = rig.random_change(rng, serial)[0]
            changed_in_gap.add(key)
            rig.touched.add(key)
        seq = int(rig.control.requests()[-1]["seq"])
        # cron's entry is back with the install, before the admin authorizes: it makes the new
        # tables, says the module is not authorized (exit 3) and sends nothing
        for _ in range(2):
            admin.once(expect=3)
        assert int(rig.control.requests()[-1]["seq"]) == seq
        out = admin.authorize(rig).stdout
        assert "initial export requested" in out, out
        with Cron(admin, every=2.0) as cron:
            for serial in range(gap, gap + scale(20, 200)):   # saves while it exports
                key, _ = rig.random_change(rng, serial)
                changed_in_gap.add(key)   # the adoption may read it after this change
                admin.save(rig, key)
                time.sleep(rng.uniform(0.0, 0.05))
            wait_until(lambda: not _cursor(rig, "export:requested"), scale(120, 900),
                       "cron to queue the export")
            wait_until(drained_by_worker(rig, admin), scale(180, 1200), "cron to drain the queue")
            assert not any(_cursor(rig, f"adopt:{kind.value}") for kind in KIND_ORDER)
        assert not cron.errors, cron.errors
        rig.rebuild()

        audit = rig.audit(all_keys(rig))
        # made anew: only what was changed (before its kind was adopted) so that nothing the
        # module wrote still names it
        # (a payer renamed whose company was not its client's main one, a client renamed with
        # neither e-mail nor phone): the old entity stays in amoCRM beside the new one
        made_anew = {(kind, int(marker.rsplit(":", 1)[1])) for kind in KIND_ORDER
                     for marker in audit.duplicates.get(kind.amo_entity, {})}
        assert made_anew <= changed_in_gap, sorted(made_anew - changed_in_gap)[:10]
        assert all(n == 2 for dups in audit.duplicates.values() for n in dups.values()), audit.duplicates
        audit.duplicates = {}
        assert audit.ok, audit.summary()
        after = {kind: rig.links(kind) for kind in KIND_ORDER}
        for kind in KIND_ORDER:
            moved = [(b, a, after[kind].get(b)) for b, a in before[kind].items()
                     if after[kind].get(b) != a and (kind, b) not in made_anew]
            assert not moved, f"{kind.value} bound to another amoCRM entity than before: {moved[:5]}"
        scans = {r["path"] for r in rig.control.requests(since=seq) if r["method"] == "GET"
                 and "filter[created_at][from]" in str(r.get("query"))}
        assert scans == {"/api/v4/contacts", "/api/v4/companies", "/api/v4/leads"}, scans
        rebound = sum(1 for kind in KIND_ORDER for b, a in before[kind].items() if after[kind].get(b) == a)
        audit.duplicates = {}   # record_figures reports "duplicates": made_anew is counted on its own
        print(f"made anew (changed in the gap beyond recognition): {sorted(made_anew)}")
        record_figures(rig, started, cron_runs=cron.runs, changed_in_gap=len(changed_in_gap), rebound=rebound,
                       made_anew=len(made_anew), saves=scale(20, 200), scans=sorted(scans))
    finally:
        admin.kill_all()
