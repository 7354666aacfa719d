"""Crontab meaning, checked against answers cron itself gives."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from snapshotd.schedule import CrontabError, parse_crontab

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def at(text: str, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # day-of-week 0 and 7 are Sunday (APScheduler's from_crontab reads 0 as Monday)
        ("0 6 * * 0", "2026-12-02 12:00", ["2026-12-06 06:00", "2026-12-13 06:00"]),
        ("0 6 * * 7", "2026-12-02 12:00", ["2026-12-06 06:00", "2026-12-13 06:00"]),
        ("0 6 * * sun", "2026-12-02 12:00", ["2026-12-06 06:00", "2026-12-13 06:00"]),
        ("0 9 * * 1-5", "2026-12-04 10:00", ["2026-12-07 09:00", "2026-12-08 09:00"]),
        ("0 9 * * Mon-Fri", "2026-12-04 10:00", ["2026-12-07 09:00", "2026-12-08 09:00"]),
        (
            "0 0 * * 5-7",
            "2026-12-03 12:00",
            ["2026-12-04 00:00", "2026-12-05 00:00", "2026-12-06 00:00", "2026-12-11 00:00"],
        ),
        # day-of-month and day-of-week both restricted: either one fires (cron's OR rule)
        (
            "0 0 13 * 5",
            "2026-11-01 00:00",
            ["2026-11-06 00:00", "2026-11-13 00:00", "2026-11-20 00:00"],
        ),
        (
            "0 0 1 * 1",
            "2026-11-28 00:00",
            ["2026-11-30 00:00", "2026-12-01 00:00", "2026-12-07 00:00"],
        ),
        # a leading '*' in day-of-week means "unrestricted" for the OR rule
        ("0 0 1 * *", "2026-11-28 00:00", ["2026-12-01 00:00", "2027-01-01 00:00"]),
        # macros and month names
        ("@daily", "2026-12-03 12:00", ["2026-12-04 00:00", "2026-12-05 00:00"]),
        ("@hourly", "2026-12-03 12:30", ["2026-12-03 13:00", "2026-12-03 14:00"]),
        ("@weekly", "2026-12-03 12:00", ["2026-12-06 00:00", "2026-12-13 00:00"]),
        ("@monthly", "2026-12-03 12:00", ["2027-01-01 00:00", "2027-02-01 00:00"]),
        ("0 3 1 jan,jul *", "2026-12-03 12:00", ["2027-01-01 03:00", "2027-07-01 03:00"]),
        ("*/15 * * * *", "2026-12-03 12:07", ["2026-12-03 12:15", "2026-12-03 12:30"]),
        # DST in Europe/Berlin: 06:00 stays 06:00 local across the spring and autumn changes
        ("0 6 * * *", "2026-03-28 07:00", ["2026-03-29 06:00", "2026-03-30 06:00"]),
        ("0 6 * * *", "2026-10-24 07:00", ["2026-10-25 06:00", "2026-10-26 06:00"]),
    ],
)
def test_next_fire_times_match_cron(expression: str, after: str, expected: list[str]) -> None:
    crontab = parse_crontab(expression)
    times = crontab.next_fire_times(BERLIN, at(after), len(expected))
    assert [t.strftime("%Y-%m-%d %H:%M") for t in times] == expected


def test_dst_change_keeps_local_time_and_shifts_utc_offset() -> None:
    times = parse_crontab("0 6 * * *").next_fire_times(BERLIN, at("2026-03-28 07:00"), 2)
    assert [t.utcoffset().total_seconds() / 3600 for t in times] == [2.0, 2.0]
    before = parse_crontab("0 6 * * *").next_fire_times(BERLIN, at("2026-03-27 07:00"), 1)
    assert before[0].utcoffset().total_seconds() / 3600 == 1.0


def test_six_fields_add_a_leading_seconds_field() -> None:
    crontab = parse_crontab("*/10 * * * * *")
    times = crontab.next_fire_times(UTC, at("2026-12-03 12:00:01", UTC), 3)
    assert [t.strftime("%H:%M:%S") for t in times] == ["12:00:10", "12:00:20", "12:00:30"]


def test_previous_fire_time_is_the_latest_slot_not_after_now() -> None:
    crontab = parse_crontab("0 6 * * *")
    assert crontab.previous_fire_time(BERLIN, at("2026-12-03 05:59")) == at("2026-12-02 06:00")
    assert crontab.previous_fire_time(BERLIN, at("2026-12-03 06:00")) == at("2026-12-03 06:00")
    yearly = parse_crontab("0 0 29 2 *")
    assert yearly.previous_fire_time(BERLIN, at("2026-12-03 00:00")) == at("2024-02-29 00:00")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty schedule"),
        ("0 6 * *", "has 4 fields"),
        ("0 6 * * * * *", "has 7 fields"),
        ("60 * * * *", "bad minute field '60'"),
        ("0 24 * * *", "bad hour field '24'"),
        ("0 0 32 * *", "bad day field '32'"),
        ("0 0 * 13 *", "bad month field '13'"),
        ("0 0 * * 8", "days run from 0 to 7"),
        ("0 0 * * funday", "unknown name 'funday'"),
        ("@fortnightly", "unknown macro '@fortnightly'"),
    ],
)
def test_bad_expressions_say_why(expression: str, message: str) -> None:
    with pytest.raises(CrontabError, match=message):
        parse_crontab(expression)


def test_describe_in_words() -> None:
    assert parse_crontab("0 6 * * *").describe() == "at 06:00 every day"
    assert parse_crontab("30 2 * * 0").describe() == "at 02:30 on Sun"
    assert parse_crontab("0 0 1 * 1").describe() == "at 00:00 on day-of-month 1 or on Mon"
