"""Operator scenarios 1-4 (issue 14, point 10): several engines started at once by an admin,
cron, the daemon or a second host; only one may send at a time (the engine lease,
store/lease.py), and the audit proves nothing was sent twice or lost.

Why each can fail: every entity here is created in amoCRM during the race. Two engines
sending the same queue rows would each commit a create intent and POST the same marker,
and ``audit()`` counts markers per amoCRM entity (``duplicates``); a row one engine claimed
and dropped shows as ``missing`` or ``pending``. Checked by hand on 2026-12-06 with the lease
bypassed (``EngineLease.acquire`` always True, ``verify``/``heartbeat`` no-ops): scenarios 1
and 3 failed with duplicated markers (contacts and leads) in both runs, scenario 2 in one of
two runs (its two engines do not always overlap on creates), scenario 4 with "no worker runs
the engine". With the real lease all four pass.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable

import pymysql

from billmgr_amocrm.bootstrap import token_status
from billmgr_amocrm.sync.notes import queue_payments

from .activity_rig import activities_done, due_renewals_and_payments, noted_and_tasked, still_due
from .operator_rig import Cron, Operator, drained_by_worker, record_figures, second_host, wait_until
from .support import CI_CLIENTS, CI_SERVICES, USABLE_TOKEN_STATES, ProofRig, all_keys

FULL_CLIENTS, FULL_SERVICES = 300, 1500
DEADLOCK = 1213       # ER_LOCK_DEADLOCK
STAGGER = 0.5          # the second command starts this long after the first


def _events(rig: ProofRig, count: int, rng: random.Random, serial: int) -> int:
    """Panel-like changes, each queued as the worker queues a spool file: one unit each. An
    InnoDB deadlock with an engine's unit in another process is retried: the worker would leave
    the spool file in place and queue it at its next run (store/spool.py)."""
    for n in range(count):
        key, reason = rig.random_change(rng, serial + n)
        for attempt in range(5):
            try:
                rig.enqueue(key[0], key[1], reason)
                break
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != DEADLOCK or attempt == 4:
                    raise
    return serial + count


def _rig(factory: Callable[..., ProofRig], scale: Any) -> ProofRig:
    return factory(clients=scale(CI_CLIENTS, FULL_CLIENTS), services=scale(CI_SERVICES, FULL_SERVICES))


def _task_log(operator: Operator) -> str:
    return operator.paths.task_log.read_text(encoding="utf-8", errors="replace")


def _assert_consistent(rig: ProofRig, started: float, **extra: Any) -> None:
    audit = rig.audit(all_keys(rig))
    assert audit.ok, audit.summary()
    record_figures(rig, started, **extra)


def test_two_syncs_started_at_once_send_everything_once(proof_rig_factory: Callable[..., ProofRig],
                                                         scale: Any) -> None:
    """Scenario 1: an admin runs ``amocrm sync`` twice, 0.5 s apart, over a backlog (the
    initial export the authorization asked for, plus edits), round after round."""
    started = time.monotonic()
    rig = _rig(proof_rig_factory, scale)
    admin = Operator(rig.root)
    rng, serial, overlapped = random.Random(1), 0, 0
    try:
        for _ in range(scale(2, 6)):
            serial = _events(rig, scale(60, 400), rng, serial)
            first = admin.start_cli("sync")
            time.sleep(STAGGER)
            second = admin.start_cli("sync")
            outs = [proc.communicate(timeout=600) for proc in (first, second)]
            assert [first.returncode, second.returncode] == [0, 0], outs
            # the second found the engine busy and waited for it (or ran after it): never beside it
            overlapped += any("busy" in err for _, err in outs)
            while rig.depth():        # a retry put off by a transient answer: time passes
                rig.make_due()
                admin.cli("sync")
        _assert_consistent(rig, started, overlapping_rounds=overlapped)
        assert overlapped, "the two commands never met: the scenario proved nothing"
    finally:
        admin.kill_all()


def test_daemon_and_export_at_once_send_everything_once(proof_rig_factory: Callable[..., ProofRig],
                                                         scale: Any) -> None:
    """Scenario 2: the daemon runs (systemd) while an admin runs ``amocrm export``: the export
    is handed to the daemon, which holds the engine, and the command follows it to the end."""
    started = time.monotonic()
    rig = _rig(proof_rig_factory, scale)
    admin = Operator(rig.root)
    rng = random.Random(2)
    try:
        daemon = admin.start_daemon()
        time.sleep(STAGGER)
        export = admin.cli("export", timeout=900)
        assert "export:" in export.stdout, export.stdout
        _events(rig, scale(100, 1000), rng, 0)           # live edits after the export
        wait_until(drained_by_worker(rig), scale(120, 900), "the daemon to drain the queue")
        Operator.stop(daemon)
        _assert_consistent(rig, started)
        # one of the two found the other running the engine (the export handed over, or the
        # daemon waited for the command's export)
        assert "done by" in export.stdout or "engine is busy" in _task_log(admin), \
            "the daemon and the export never met: the scenario proved nothing"
    finally:
        admin.kill_all()


def test_cron_every_few_seconds_and_sync_send_everything_once(proof_rig_factory: Callable[..., ProofRig],
                                                               scale: Any) -> None:
    """Scenario 3: cron starts ``amocrm_task --once`` every 2 s (a minute in production) while
    edits arrive and an admin runs ``amocrm sync`` now and then."""
    started = time.monotonic()
    rig = _rig(proof_rig_factory, scale)
    admin = Operator(rig.root)
    rng, serial = random.Random(3), 0
    try:
        # the admin's sync and cron's first run start together on the initial export (creates:
        # what two engines at once would duplicate), then edits keep coming between their runs
        sync = admin.start_cli("sync")
        with Cron(admin, every=2.0) as cron:
            out, err = sync.communicate(timeout=600)
            assert sync.returncode == 0, (out, err)
            waited = [err]
            for _ in range(scale(3, 20)):
                serial = _events(rig, scale(40, 200), rng, serial)
                waited.append(admin.cli("sync").stderr)
                time.sleep(rng.uniform(0.5, 2.0))
            wait_until(drained_by_worker(rig), scale(120, 900), "cron to drain the queue")
        assert not cron.errors, cron.errors
        _assert_consistent(rig, started, cron_runs=cron.runs)
        # cron's run found the admin's sync running the engine, or the other way round
        assert "engine is busy" in _task_log(admin) + "".join(waited), \
            "cron and the admin's sync never met: the scenario proved nothing"
    finally:
        admin.kill_all()


def test_two_hosts_with_their_own_workers_send_everything_once(
        proof_rig_factory: Callable[..., ProofRig], tmp_path: Path, scale: Any) -> None:
    """Scenario 4: two BILLmanager roots (two hosts: own tokens, spool, worker lock) on one
    database and one amoCRM account, each with its daemon; edits arrive on both; payments wait
    to be noted and services' renewal tasks come due while the engine moves between hosts."""
    started = time.monotonic()
    rig = _rig(proof_rig_factory, scale)
    soon, payments = due_renewals_and_payments(rig, random.Random(40), scale)
    host_a = Operator(rig.root)
    # An authorization is not counted by the other host's limiter (only running workers publish
    # their shares, hosts.py), so its ~5 requests and another host's traffic can meet in one
    # second and draw a 429 (seen here; the client backs off). Not what this scenario is about:
    # the authorization keeps amoCRM's 1-s window apart from the rig's and the workers' traffic.
    time.sleep(1.1)
    host_b = second_host(rig, tmp_path / "host-b")
    time.sleep(1.1)
    rng, serial = random.Random(4), 0
    since = max((int(r["seq"]) for r in rig.control.requests()), default=0)
    try:
        # Host A's worker runs the initial export alone (while two hosts are alive, a worker that
        # has just taken the engine sends one request per second until the previous holder's
        # share lapses, hosts.SHARE_TTL: 30 s, too slow for an export at CI scale)
        rig.enqueue_everything()          # the export, queued: "drained" below means it was sent
        # the renewal duty every few seconds (in production: hourly), on whichever host holds the engine
        duties = {"BILLMGR_AMOCRM_RECONCILE_EVERY": "5"}
        daemons = [host_a.start_daemon(duties)]
        queue_payments(rig.app.store, rig.app.billing, rig.app.config.notes, payments)
        wait_until(drained_by_worker(rig, host_a), scale(120, 900), "host A's worker to export")
        daemons.append(host_b.start_daemon(duties))
        rounds = scale(4, 12)
        for n in range(rounds):
            last = n == rounds - 1
            serial = _events(rig, 5 if last else scale(40, 250), rng, serial)
            # saves in the panels of both hosts: each host's hook, spool and worker
            for key in rng.sample(sorted(rig.touched), 3 if last else scale(5, 20)):
                rng.choice((host_a, host_b)).save(rig, key)
            if n == rounds - 2:
                # the engine's host reboots: its worker stops, the other host's takes over (and
                # sends at one request per second until the old holder's rate share lapses,
                # hosts.SHARE_TTL: the last round is small for that)
                holder = rig.app.lease().holder()
                assert holder is not None, "no worker runs the engine"
                which = [d.pid for d in daemons].index(holder.pid)
                Operator.stop(daemons[which])
                daemons[which] = (host_a, host_b)[which].start_daemon(duties)
            time.sleep(rng.uniform(0.5, 2.0))
        wait_until(drained_by_worker(rig, host_a, host_b), scale(180, 1200),
                   "the two hosts' workers to drain their spools and the queue")
        wait_until(activities_done(rig), scale(120, 600), "the workers to make every note and task")
        for daemon in daemons:
            Operator.stop(daemon)
        for host in (host_a, host_b):
            assert "lease taken" in _task_log(host), \
                f"{host.root}'s worker never ran the engine: the scenario proved nothing"
        for host in (host_a, host_b):
            assert token_status(host.paths).state in USABLE_TOKEN_STATES, host.root
        assert max(rig.control.refresh_token_uses().values(), default=0) <= 1
        # each host's limiter counts its own processes; the shares they publish must keep the
        # two workers together within amoCRM's limit
        refused = [r["seq"] for r in rig.control.requests(since=since) if r["status"] == 429]
        assert not refused, f"the hosts' shares overran amoCRM's limit: 429 at {refused}"
        # every payment noted on its contact, every due service with its one open task (the
        # audit fails on a payment noted twice on one entity or two open tasks for one date)
        assert rig.sql("SELECT (SELECT COUNT(*) FROM amocrm_payment2note WHERE status = 'failed') + "
                       "(SELECT COUNT(*) FROM amocrm_renewal_task WHERE status = 'failed')") == [(0,)]
        noted, tasked = noted_and_tasked(rig)
        assert noted == set(payments)
        due = still_due(rig, soon)
        assert tasked == due and due, (tasked, due)
        _assert_consistent(rig, started, notes=len(noted), tasks=len(tasked))
    finally:
        host_a.kill_all()
        host_b.kill_all()
