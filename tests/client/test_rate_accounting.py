"""The limiter over real HTTP: a slot is bounded by the request's departure, not its answer."""

from __future__ import annotations

import json
import threading
import time

from tests.client.conftest import Setup


def _entries(setup: Setup) -> list:
    return json.loads(setup.paths.rate_state.read_text(encoding="utf-8"))["requests"]


def test_a_slow_answer_holds_its_slot_only_until_the_request_can_have_arrived(setup: Setup) -> None:
    setup.emu.control.add_fault(action="delay", delay=1.5, path="/api/v4/account", count=1)
    client = setup.client(timeout=(2.0, 5.0))
    done = threading.Event()
    thread = threading.Thread(target=lambda: (client.account(), done.set()))
    thread.start()
    time.sleep(0.6)
    try:
        (entry,) = [e for e in _entries(setup) if e[2] is None]
        acquired, arrived_by, answered, _ = entry
        # sent long before the answer: the arrival bound is known while the answer is pending
        assert arrived_by is not None and answered is None
        assert arrived_by - acquired < 0.3
    finally:
        thread.join(10)
    assert done.is_set()
    (entry,) = [e for e in _entries(setup) if e[0] == acquired]
    assert entry[2] - entry[0] > 1.4      # the answer came 1.5 s later and is recorded too


def test_a_request_that_never_left_frees_its_slot_at_once(setup: Setup) -> None:
    from billmgr_amocrm.amocrm.ratelimit import RateLimiter

    limiter = RateLimiter(setup.paths.rate_state)
    ticket = limiter.acquire()
    assert [e for e in _entries(setup) if e[0] == ticket]
    limiter.release(ticket, left_host=False)
    assert not [e for e in _entries(setup) if e[0] == ticket]
