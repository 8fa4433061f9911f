"""Cron expressions of stored schedules: Huey's crontab, read on a time zone's wall clock."""

from __future__ import annotations

import datetime as dt

import pytest

from litequeue.base import cron
from litequeue.base.errors import ConfigurationError

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_time_zone_moves_the_slot_with_summer_time() -> None:
    nine_berlin = cron.parse("0 9 * * *", "Europe/Berlin")
    assert nine_berlin.matches(at("2026-01-15T08:00")) and not nine_berlin.matches(at("2026-01-15T09:00"))
    assert nine_berlin.matches(at("2026-07-15T07:00")) and not nine_berlin.matches(at("2026-07-15T08:00"))
    assert nine_berlin.next_after(at("2026-03-28T08:30").timestamp()) == at("2026-03-29T07:00").timestamp()


def test_weekdays_count_from_sunday_and_aliases_expand() -> None:
    monday_eight = cron.parse("0 8 * * 1")
    assert monday_eight.next_after(at("2026-11-29T12:00").timestamp()) == at("2026-11-30T08:00").timestamp()
    assert cron.parse("@daily").expression == "@daily"
    assert cron.parse("@daily").matches(at("2026-11-30T00:00"))
    assert cron.parse("0 0 29 2 *").next_after(at("2026-03-01T00:00").timestamp()) is None  # past 31 days


@pytest.mark.parametrize(("expression", "zone", "message"), [
    ("*/5 * * *", "UTC", "bad cron expression '*/5 * * *': it needs 5 fields"),
    ("*/0 * * * *", "UTC", "bad cron expression '*/0 * * * *': slice step cannot be zero"),
    ("0 25 * * *", "UTC", "bad cron expression '0 25 * * *': 25 is not a valid input"),
    ("0 * * * mon", "UTC", "bad cron expression '0 * * * mon': mon is not a valid input"),
    ("* * * * *", "Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
    ("* * * * *", "../../etc/passwd", "unknown timezone '../../etc/passwd'"),
])
def test_mistakes_are_one_line(expression: str, zone: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cron.parse(expression, zone)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_describe_reads_back_huey_crontab_settings() -> None:
    from huey import crontab

    from litequeue.base.cron import describe

    def back(**fields: str) -> str:
        return describe(crontab(**fields).__closure__[0].cell_contents)  # type: ignore[index, union-attr]

    assert back() == "* * * * *"
    assert back(minute="*/5") == "*/5 * * * *"
    assert back(minute="0", hour="3") == "0 3 * * *"
    assert back(minute="0,30", hour="9-17", day_of_week="1-5") == "0,30 9-17 * * 1-5"
    assert back(minute="15", hour="8", day="1", month="1,4,7,10", day_of_week="7") == "15 8 1 */3 0"
