"""Period arithmetic in the org timezone with a fiscal year start (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from agent.kpi.periods import elapsed_days, instant_of, local_day_of, period_start, previous_windows, shift, window


@pytest.mark.parametrize(
    "grain,day,fiscal,start",
    [
        ("month", date(2024, 2, 29), 1, date(2024, 2, 1)),
        ("week", date(2024, 1, 3), 1, date(2024, 1, 1)),  # ISO week: Monday
        ("quarter", date(2024, 5, 10), 1, date(2024, 4, 1)),
        ("quarter", date(2024, 5, 10), 4, date(2024, 4, 1)),  # fiscal year from April: Q1 = Apr–Jun
        ("quarter", date(2024, 3, 31), 4, date(2024, 1, 1)),  # ... and Q4 = Jan–Mar
        ("quarter", date(2024, 1, 15), 2, date(2023, 11, 1)),  # from February: Nov–Jan
        ("year", date(2024, 3, 31), 4, date(2023, 4, 1)),
        ("year", date(2024, 4, 1), 4, date(2024, 4, 1)),
    ],
)
def test_period_start(grain: str, day: date, fiscal: int, start: date) -> None:
    assert period_start(grain, day, fiscal) == start


def test_periods_are_local_days_in_utc() -> None:
    january = window("month", date(2024, 1, 1), "Asia/Jakarta")
    assert january.start_utc == datetime(2023, 12, 31, 17, tzinfo=UTC)  # 00:00 in Jakarta (UTC+7)
    assert january.end_utc == datetime(2024, 1, 31, 17, tzinfo=UTC)
    assert shift("quarter", date(2024, 11, 1), 1) == date(2025, 2, 1)


def test_a_date_means_the_end_of_that_local_day() -> None:
    now = instant_of(date(2024, 2, 15), "Asia/Jakarta")
    assert now == datetime(2024, 2, 15, 17, tzinfo=UTC)
    assert local_day_of(now, "Asia/Jakarta") == date(2024, 2, 15)


def test_running_period_growth_compares_the_same_elapsed_days() -> None:
    march = window("month", date(2024, 3, 1), "UTC")
    now = datetime(2024, 3, 31, 12, tzinfo=UTC)
    assert elapsed_days(march, now, "UTC") == 31
    [(label, before)] = previous_windows("month", [march], march, now, "UTC")
    assert label == date(2024, 3, 1)
    assert (before.start_date, before.end_date) == (date(2024, 2, 1), date(2024, 3, 1))  # February has only 29
