"""Figure 2's rows from a request log: every column is printed, and a miss says why.

No database, emulator or clock: a synthetic log in the emulator's shape, so this is fast
and deterministic (the bench itself measures; this only checks what it prints).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from tests.bench.arrivals import analyse, explain, rhythm
from tests.bench.grid import Row, add
from tests.bench.report import Results, text_table


def entry(at: float, method: str, path: str, status: Any = 200, items: int = 0,
          refused: Optional[int] = None) -> Dict[str, Any]:
    return {"method": method, "path": path, "status": status, "refused": refused, "arrival_time": at,
            "wall_time": 1000.0 + at, "body": [{"name": str(i)} for i in range(items)] if items else None}


def log() -> List[Dict[str, Any]]:
    out = [entry(i * 0.15, "POST", "/api/v4/contacts", items=250) for i in range(7)]
    out.append(entry(0.5, "POST", "/api/v4/companies/link"))
    out.append(entry(0.6, "POST", "/api/v4/contacts", status=429, refused=429))
    out.append(entry(1.2, "GET", "/api/v4/leads"))
    out.append(entry(2.5, "POST", "/api/v4/leads", status="drop", items=10))
    return out


def test_the_log_is_read_by_arrival():
    arr = analyse(log())
    assert (arr.count, arr.entity_writes, arr.links, arr.lookups) == (11, 9, 1, 1)
    assert arr.refused_429 == 1 and arr.dropped == 1
    assert arr.busiest_second == 9            # 7 writes, the /link and the 429 within 0.9 s
    assert arr.per_second == [9, 1, 1]
    assert arr.items_sent == 7 * 250 + 10
    assert arr.calls["POST companies/link"] == 1


def test_a_row_prints_every_column_and_says_why_it_misses():
    arr = analyse(log())
    results = Results()
    add(results, Row("export", 1.0, 250, 1760, 2.0, 999.5, 1003.0, arr, margin=0.05))
    [figure] = results.figures
    assert figure.name.startswith("2a. export (batch 250), answers 1 s")
    requests = f"requests {arr.count / 2.0:.2f}/s = {arr.count / 2.0 / 7:.0%} of 7"
    for column in ("880 entities/s", "= 50% of 1,750", "busiest 1 s 9", "429s 1", requests):
        assert column in figure.value
    assert figure.verdict == "MISS"
    [note] = results.notes
    for why in ("MISS, because", "carry no entity", "1 /link", "start-up to the first arrival 0.5 s",
                "the last arrival to the end 0.5 s", "ceiling with margin 0.05 s"):
        assert why in note
    assert "2a. export" in text_table(results.figures)


def test_explain_without_requests():
    assert "0 requests" in explain(analyse([]), 0.0, 1.0, 50)


def bursts(periods: int, period: float, skip: tuple = ()) -> List[Dict[str, Any]]:
    """The limiter at its ceiling: 7 arrivals 10 ms apart every ``period`` s (none in ``skip``)."""
    return [entry(p * period + i * 0.01, "POST", "/api/v4/leads", items=250)
            for p in range(periods) if p not in skip for i in range(7)]


def test_the_limiters_rhythm_is_not_reported_as_stalls():
    """Slots cycle every 1 + margin s, so whole seconds alias against the bursts: one second in
    twenty sees none of them. Periods of 1 + margin s show only real stalls (issue 16)."""
    arr = analyse(bursts(40, 1.05))
    assert min(arr.per_second[:-1]) < 6                       # what whole seconds would call a stall
    assert rhythm(arr) == pytest.approx(1.05)
    said = explain(arr, 999.9, 1000.0 + 40 * 1.05, 250, margin=0.05)
    assert "7 arrivals took 1.050 s (median; the floor 1 + margin is 1.050 s)" in said
    assert "0 of 39 whole 1.05-s periods had < 6 arrivals" in said
    stalled = explain(analyse(bursts(40, 1.05, skip=(20, 21))), 999.9, 1042.0, 250, margin=0.05)
    assert "2 of 39 whole 1.05-s periods had < 6 arrivals (p20:0, p21:0)" in stalled


def test_the_bound_is_the_fastest_these_requests_can_go():
    """215 requests at a 50 ms margin: the first 7 at once, 30 more periods of 1.05 s, then the
    last answer; 50,000 entities in that time, against 7 x 250 per second."""
    from tests.bench.arrivals import bound, fastest_seconds

    assert fastest_seconds(215, 2.0, 7, 0.05) == pytest.approx(30 * 1.05 + 2.0)
    assert fastest_seconds(7, 0.0, 7, 0.05) == 0.0 and fastest_seconds(8, 0.3, 7, 0.05) == pytest.approx(1.35)
    arr = analyse([entry(i, "POST", "/api/v4/leads", items=250) for i in range(201)]
                  + [entry(300 + i, "POST", "/api/v4/companies/link") for i in range(14)])
    assert bound(arr, 50_000, 250, 2.0, 7, 0.05) == pytest.approx(50_000 / 33.5 / 1750)
    no_links = bound(arr, 50_000, 250, 2.0, 7, 0.05, without_links=True)
    assert no_links == pytest.approx(50_000 / (28 * 1.05 + 2.0) / 1750)
    results = Results()
    add(results, Row("export", 2.0, 250, 50_000, 35.0, 0.0, 35.0, arr, margin=0.05))
    assert "bound for these 215 requests 85%" in results.figures[0].value
    assert "is 85.3%, 91.0% without the 14 /link calls" in results.notes[0]
