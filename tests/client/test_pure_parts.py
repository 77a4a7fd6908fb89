"""Pure pieces of the client: limiter math, backoff, batch correlation, error text."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest

from billmgr_amocrm.amocrm.backoff import Backoff, parse_retry_after
from billmgr_amocrm.amocrm.batch import accepted_ids, attribute_issues, check_items, chunks, describe
from billmgr_amocrm.amocrm.models import ProblemBody
from billmgr_amocrm.amocrm.oauth import jwt_claims
from billmgr_amocrm.amocrm.ratelimit import Budget, decide
from billmgr_amocrm.amocrm.transport import Reply
from billmgr_amocrm.errors import AmbiguousWriteError, FixData, RetryLater
from billmgr_amocrm.logsetup import register_secret


def test_budget_of_a_rate() -> None:
    assert Budget.for_rate(6.0) == Budget(6, 1.0)
    assert Budget.for_rate(7.0) == Budget(7, 1.0)
    assert Budget.for_rate(6.5) == Budget(7, pytest.approx(7 / 6.5))   # no longer floored to 6
    assert Budget.for_rate(6.9) == Budget(7, pytest.approx(7 / 6.9))
    assert Budget.for_rate(6.5, slack=0.2) == Budget(7, 1.2)            # the window never shrinks
    assert Budget.for_rate(0.5) == Budget(1, 2.0)
    with pytest.raises(ValueError):
        Budget.for_rate(0)


@pytest.mark.parametrize("rate", [6.5, 7.0, 3.3])
def test_a_fractional_rate_is_kept_and_no_second_sees_more_than_amocrm_allows(rate: float) -> None:
    """Drive the pure limiter with instant answers: the long-run rate reaches the configured
    one (6.5 is not floored to 6) and no 1-second window holds more than ceil(rate) arrivals."""
    budget, now, sent = Budget.for_rate(rate), 0.0, []
    entries: list = []
    while now < 60.0:
        entries, wait = decide(entries, now, budget, alive=lambda p: True)
        if wait > 0:
            now += wait
            continue
        sent.append(now)
        entries.append([now, now + 0.001 + 0.025, now + 0.03, 1.0])   # sent at once, answered 30 ms later
        now += 0.001
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest <= math.ceil(rate)
    assert len(sent) / 60.0 <= rate
    if rate != math.floor(rate):   # a floored budget could never pass floor(rate) per second
        assert len(sent) / 60.0 > math.floor(rate)


def _simulate(margin: float, up: tuple[float, float], answer: tuple[float, float], seconds: float = 120.0,
              seed: int = 5) -> tuple[list[float], int]:
    """Many writes in flight against the pure limiter, each with a random one-way delay in and
    out and a random answer time: (arrival times at amoCRM, requests sent)."""
    import heapq
    import random

    rng = random.Random(seed)
    budget = Budget.for_rate(7.0)
    entries: list = []
    events: list = []          # (time, order, kind, entry) answers to record
    arrivals: list[float] = []
    now, order, count = 0.0, 0, 0
    while now < seconds:
        while events and events[0][0] <= now:
            _, _, entry, at = heapq.heappop(events)
            entry[2] = at
        entries, wait = decide(entries, now, budget, margin=margin, alive=lambda p: True)
        if wait > 0:
            step = min(wait, events[0][0] - now) if events else wait
            now += max(step, 1e-6)
            continue
        sent = now + 0.002                          # writing the request takes 2 ms
        arrive = sent + rng.uniform(*up)
        answered = arrive + rng.uniform(*answer) + rng.uniform(*up)
        entry = [now, sent + margin, None, 1.0]
        entries.append(entry)
        order += 1
        heapq.heappush(events, (answered, order, entry, answered))
        arrivals.append(arrive)
        count += 1
    return sorted(arrivals), count


def _busiest(arrivals: list[float]) -> int:
    from bisect import bisect_left

    return max(bisect_left(arrivals, t + 1.0) - i for i, t in enumerate(arrivals))


@pytest.mark.parametrize("answer", [(0.0, 0.0), (0.2, 2.0), (1.0, 1.0), (2.0, 2.0)])
def test_arrivals_never_exceed_the_limit_and_slow_answers_cost_no_rate(answer: tuple[float, float]) -> None:
    """Counted by arrival with a network delay up to the margin, no second ever sees more than
    7 requests, and the rate does not fall with the answer time: about 7 / (1 + margin)."""
    margin = 0.2
    arrivals, count = _simulate(margin, (0.0, margin), answer)
    assert _busiest(arrivals) <= 7
    assert count / 120.0 >= 0.97 * 7 / (1 + margin + 0.002)


def test_a_margin_shorter_than_the_network_delay_lets_bursts_through() -> None:
    """Why the margin must cover the route: with 0-200 ms one-way and no margin, windows of 8 occur."""
    arrivals, _ = _simulate(0.0, (0.0, 0.2), (1.0, 2.0))
    assert _busiest(arrivals) > 7


def test_limiter_frees_a_slot_a_window_after_the_latest_possible_arrival() -> None:
    budget, pid = Budget(3, 1.0), 7.0
    kept, wait = decide([], 10.0, budget)
    assert wait == 0 and kept == []
    # [acquired, sent + margin, answered, pid]
    done = [[9.0, 9.6, 9.7, pid],       # answered after the bound: frees at 9.6 + 1
            [9.9, 10.4, 10.2, pid],     # answered before the bound: frees at 10.2 + 1
            [10.1, 10.3, None, pid]]    # no answer yet (slow): frees at 10.3 + 1 anyway
    kept, wait = decide(done, 10.5, budget)
    assert wait == pytest.approx(0.1)
    kept, wait = decide(done, 10.7, budget)
    assert wait == 0 and len(kept) == 2               # stale entries are dropped
    sending = [[5.0, None, None, pid], [10.0, None, None, pid], [10.1, None, None, pid]]
    _, wait = decide(sending, 10.2, budget, alive=lambda p: True)
    assert 0 < wait < 0.1                             # all still being sent: poll
    kept, wait = decide(sending, 10.2, budget, margin=0.05, alive=lambda p: False)
    assert wait > 0 and all(e[1] == pytest.approx(10.25) for e in kept)   # dead: may arrive until now


def test_limiter_honours_a_shared_pause() -> None:
    _, wait = decide([], 10.0, Budget(6, 1.0), pause_until=12.5)
    assert wait == pytest.approx(2.5)


def test_backoff_grows_caps_and_honours_retry_after() -> None:
    b = Backoff(base=0.5, cap=4.0, rng=lambda: 1.0)
    assert [b.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert Backoff(base=0.5, cap=4.0, rng=lambda: 0.0).delay(2) == 1.0   # jitter halves at most
    assert b.delay(0, retry_after=7) == 7.5
    assert parse_retry_after("3", 0) == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None


def test_chunks_and_item_checks() -> None:
    assert [len(c) for c in chunks(list(range(7)), 3)] == [3, 3, 1]
    assert [len(c) for c in chunks(list(range(300)), 999)] == [250, 50]
    with pytest.raises(ValueError, match="twice"):
        check_items("POST", [{"request_id": "a"}, {"request_id": "a"}])
    with pytest.raises(ValueError, match="integer id"):
        check_items("PATCH", [{"request_id": "a"}])


def test_validation_errors_map_to_items_by_request_id_index_or_entity_id() -> None:
    pending = [{"request_id": "contact-1", "id": 11}, {"request_id": "contact-2", "id": 12}]
    body = ProblemBody.model_validate({"validation-errors": [
        {"request_id": "contact-2", "errors": [
            {"code": "NotSupportedChoice", "path": "custom_fields_values.0.field_id", "detail": "bad"}]},
        {"request_id": "0", "errors": [{"code": "FieldNotExpected", "path": "x", "detail": "d"}]}]})
    found, complete = attribute_issues(body, pending, by_id=False)
    assert complete and set(found) == {"contact-1", "contact-2"}
    assert "custom_fields_values.0.field_id" in describe("contacts", found["contact-2"])
    by_entity = ProblemBody.model_validate({"errors": {"12": "Loss reason only for lost lead"}})
    found, complete = attribute_issues(by_entity, pending, by_id=True)
    assert complete and list(found) == ["contact-2"]
    orphan = ProblemBody.model_validate({"detail": "Код ошибки 244"})
    assert attribute_issues(orphan, pending, by_id=False) == ({}, False)


def test_accepted_ids_by_request_id_and_by_entity_id() -> None:
    pending = [{"request_id": "a", "id": 5}, {"request_id": "b", "id": 6}]
    data = {"_embedded": {"leads": [{"id": 100, "request_id": "a"}, {"id": 6, "request_id": "6"}]}}
    assert accepted_ids("leads", pending, data, by_id=True) == {"a": 100, "b": 6}
    assert accepted_ids("leads", pending, data, by_id=False) == {"a": 100}


def test_jwt_claims_are_read_without_trusting_them() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"api_domain": "api-b.amocrm.ru"}).encode()).rstrip(b"=")
    assert jwt_claims(f"x.{payload.decode()}.sig") == {"api_domain": "api-b.amocrm.ru"}
    assert jwt_claims("def50200opaque") == {}


def test_error_text_names_the_request_but_never_a_registered_secret() -> None:
    register_secret("canary-secret-8f1e2d")
    reply = Reply("GET", "/api/v4/leads", 503, {"X-Request-Id": "rid-42"},
                  b"<html><title>503 canary-secret-8f1e2d</title></html>")
    err = RetryLater("server error", detail=reply.summary(), **reply.where())
    text = str(err)
    assert "GET /api/v4/leads -> 503" in text and "rid-42" in text
    assert "canary-secret-8f1e2d" not in text
    assert not issubclass(AmbiguousWriteError, RetryLater)   # never retried by a blanket handler
    assert "contacts" in str(FixData("refused", method="POST", path="/api/v4/contacts", status=400))


def test_chunk_size_shrinks_to_an_eighth_at_most_and_recovers_after_five_clean_chunks(
        tmp_path: Path) -> None:
    """Under steady transient faults the chunk must not sink to 1 (proof scenario 1, full scale)."""
    from billmgr_amocrm.amocrm.api import GROW_AFTER
    from billmgr_amocrm.bootstrap import build_amo_client
    from billmgr_amocrm.paths import HostPaths

    client = build_amo_client(HostPaths(tmp_path), base_url="https://example.amocrm.ru", chunk_size=250)
    sizes = []
    for _ in range(6):
        client._shrink()
        sizes.append(client.chunk_size)
    assert sizes == [125, 62, 31, 31, 31, 31]
    for _ in range(GROW_AFTER):
        client._grow()
    assert client.chunk_size == 62


def test_hosts_share_the_integrations_rate_and_a_lapsed_share_falls_back_to_one() -> None:
    from billmgr_amocrm.amocrm.ratelimit import shared_capacity
    from billmgr_amocrm.hosts import SHARE_TTL, share_for

    assert share_for(7, 1, holds_engine=False, held_for=0, just_joined=False) == 7      # one host: all
    assert share_for(7, 2, holds_engine=True, held_for=SHARE_TTL, just_joined=False) == 6
    assert share_for(7, 3, holds_engine=True, held_for=SHARE_TTL, just_joined=False) == 5
    assert share_for(7, 2, holds_engine=True, held_for=1.0, just_joined=False) == 1     # ramps up late
    assert share_for(7, 2, holds_engine=False, held_for=0, just_joined=False) == 1
    assert share_for(7, 2, holds_engine=False, held_for=0, just_joined=True) == 0
    # every host's share adds up to at most the limit
    for hosts in range(2, 8):
        others = (hosts - 1) * share_for(7, hosts, False, 0, False)
        assert share_for(7, hosts, True, SHARE_TTL, False) + others == 7
    assert shared_capacity(7, None, 10.0) == 7
    assert shared_capacity(7, {"capacity": 6, "hosts": 2, "until": 11.0}, 10.0) == 6
    assert shared_capacity(7, {"capacity": 6, "hosts": 2, "until": 9.0}, 10.0) == 1      # lapsed
    assert shared_capacity(7, {"capacity": 7, "hosts": 1, "until": 9.0}, 10.0) == 7      # alone
    assert shared_capacity(7, {"capacity": 0, "hosts": 2, "until": 11.0}, 10.0) == 0


def test_an_entity_read_tolerates_an_empty_embedded_encoded_as_a_list() -> None:
    """PHP encodes an empty array as ``[]``: an entity whose ``_embedded`` is one still reads,
    and its linked ids are those of well-formed references only."""
    from billmgr_amocrm.amocrm.models import Entity

    assert Entity.model_validate({"id": 1, "_embedded": []}).embedded_ids("contacts") == []
    linked = Entity.model_validate({"id": 1, "_embedded": {"contacts": [{"id": 5}, {"id": "x"}, 3]}})
    assert linked.embedded_ids("contacts") == [5] and linked.embedded_ids("companies") == []
