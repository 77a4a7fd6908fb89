"""Scenario 7: a 24-hour amoCRM outage (fake clock) with a big backlog: everything is delivered
after recovery, nothing dead-letters, and coalescing cuts the API calls at least 5 times."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from billmgr_amocrm.foundation.clock import utcnow
from billmgr_amocrm.sync.engine import Engine

from .support import FAST_POLICY, ProofRig, settle_options

DAY = 86400
POLL_MINUTES = 120   # the worker polls every minute; fewer polls keep CI short


def test_a_day_long_outage_delivers_everything_with_five_times_fewer_calls(proof_rig: ProofRig,
                                                                          scale: Any) -> None:
    rig = proof_rig
    rig.enqueue_everything()
    rig.drain()
    events = scale(2000, 50_000)
    rig.control.add_fault("status", path="^/api/v4/", status=503)
    start_seq = max(r["seq"] for r in rig.control.requests())
    offset = [timedelta(0)]

    def fake_now() -> Any:
        return utcnow() + offset[0]

    app = rig.app
    engine = Engine(app.amo(), app.billing, app.store, app.rules, app.context(), policy=FAST_POLICY,
                    clock=fake_now, **settle_options())
    rng = random.Random(7)
    polls = DAY // (POLL_MINUTES * 60)
    per_poll = events // polls
    for poll in range(polls):                     # the worker keeps trying every half hour
        for serial in range(per_poll):
            rig.random_event(rng, poll * per_poll + serial)
        offset[0] += timedelta(minutes=POLL_MINUTES)
        rig.make_due()
        assert engine.run_pass().stopped == "retry_later"
    assert not rig.audit().failed, "good records were dead-lettered during the outage"
    rig.control.clear_faults()
    rig.control.advance(DAY)                      # amoCRM's clock too: the access token expired
    offset[0] += timedelta(minutes=POLL_MINUTES)
    rig.make_due()
    rig.drain(engine=engine)          # the intents of the outage carry its (fake) times

    audit = rig.audit()
    assert audit.ok, audit.summary()
    calls = [r for r in rig.control.requests(since=start_seq) if not r["path"].startswith("/_emulator")]
    assert rig.events - 0 >= events
    assert len(calls) * 5 <= events, f"{len(calls)} API calls for {events} events"
