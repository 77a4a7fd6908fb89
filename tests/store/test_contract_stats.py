"""The Store contract for the daily counts (the panel's report, the status view): MySqlStore
and FakeStore must both pass every test."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from billmgr_amocrm.foundation.clock import local_day


def test_counts_add_up_per_local_day_and_metric_and_zeros_write_nothing(any_store: Any) -> None:
    noon = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    any_store.count_daily({"contact": 3, "failed": 0}, noon)
    any_store.count_daily({"contact": 2, "lead": 250}, noon + timedelta(minutes=5))
    any_store.count_daily({"note": 1}, noon + timedelta(days=1))
    any_store.count_daily({}, noon)
    day = local_day(noon)
    assert any_store.daily_counts(day) == {
        day: {"contact": 5, "lead": 250},
        local_day(noon + timedelta(days=1)): {"note": 1},
    }
    assert any_store.daily_counts(day + timedelta(days=1)) == {day + timedelta(days=1): {"note": 1}}
    assert any_store.daily_counts(date(2027, 1, 1)) == {}


def test_a_count_inside_a_failed_unit_of_work_is_rolled_back(any_store: Any) -> None:
    noon = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    try:
        with any_store.transaction():
            any_store.count_daily({"contact": 7}, noon)
            raise RuntimeError("the batch failed")
    except RuntimeError:
        pass
    assert any_store.daily_counts(local_day(noon)) == {}
