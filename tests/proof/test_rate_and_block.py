"""Scenario 6: never above 7 requests in any second; a 403 block stops traffic, probes once per
15 minutes (fake clock), loses nothing, and sync resumes once amoCRM lifts the block."""

from __future__ import annotations

import random
from typing import Any

from billmgr_amocrm.amocrm.circuit import DEFAULT_PROBE_INTERVAL
from billmgr_amocrm.domain import Kind
from tests.client.conftest import FakeClock
from tests.client.test_processes import max_in_any_second

from .support import ProofRig

AMOCRM_LIMIT = 7


def test_no_second_ever_carries_more_than_seven_requests(proof_rig: ProofRig, scale: Any) -> None:
    rig = proof_rig
    rig.enqueue_everything()
    rig.drain(batch_size=10)            # small batches: many requests, as fast as the module goes
    rng = random.Random(3)
    for serial in range(scale(100, 2000)):
        rig.random_event(rng, serial)
    rig.drain(batch_size=10)
    times = [r["wall_time"] for r in rig.api_requests()]
    assert len(times) > 50
    assert max_in_any_second(times) <= AMOCRM_LIMIT
    assert rig.control.max_requests_per_window(1.0) <= AMOCRM_LIMIT
    assert not [r for r in rig.api_requests() if r["status"] == 429]
    audit = rig.audit()
    assert audit.ok, audit.summary()


def test_a_403_block_stops_traffic_probes_every_15_minutes_and_resumes(proof_rig: ProofRig) -> None:
    rig = proof_rig
    clock = FakeClock()
    rig.rebuild(clock=clock)
    rig.enqueue_everything()
    rig.drain()
    accounts = rig.accounts_with_user()[:20]
    rig.control.block()
    for n, account in enumerate(accounts):
        rig.sandbox.edit_client(account, realname=f"Во время блокировки {n}")
        rig.enqueue(Kind.CONTACT, account, "edit")
    before = len(rig.api_requests())
    engine = rig.engine()

    def attempt() -> Any:
        report = engine.run_pass()
        rig.make_due()
        return report

    assert attempt().stopped == "stopped"              # the 403 itself
    assert len(rig.api_requests()) == before + 1
    for _ in range(5):                                   # minutes pass: nothing is sent
        clock.advance(60)
        assert attempt().stopped == "stopped"
    assert len(rig.api_requests()) == before + 1
    # two hours of a worker polling every minute: one probe per 15 minutes
    for _ in range(120):
        clock.advance(60)
        attempt()
    sent = len(rig.api_requests()) - before - 1
    assert 7 <= sent <= 2 * 60 / (DEFAULT_PROBE_INTERVAL / 60) <= 8, sent
    assert rig.depth() == len(accounts) and not rig.audit().failed     # nothing lost, nothing failed
    rig.control.unblock()
    clock.advance(DEFAULT_PROBE_INTERVAL)
    rig.drain()
    audit = rig.audit()
    assert audit.ok, audit.summary()
