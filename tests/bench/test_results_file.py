"""A partial bench run never replaces the whole run's committed figures."""

from __future__ import annotations

from tests.bench.__main__ import SCENARIOS, results_file
from tests.bench.report import PARTIAL_RESULTS, RESULTS


def test_only_a_whole_full_size_run_writes_the_committed_results() -> None:
    assert results_file(list(SCENARIOS), quick=False) == RESULTS
    assert results_file(list(reversed(SCENARIOS)), quick=False) == RESULTS


def test_a_run_of_some_scenarios_or_a_quick_run_writes_apart() -> None:
    assert results_file(["limited"], quick=False) == PARTIAL_RESULTS
    assert results_file(list(SCENARIOS), quick=True) == PARTIAL_RESULTS
    assert PARTIAL_RESULTS != RESULTS and PARTIAL_RESULTS.parent == RESULTS.parent
