"""Local dates and periods: the return window and, for reconciliation, working days.

The alliance counts in Asia/Shanghai local time. China has kept UTC+8 without daylight
saving since 1991, so a fixed offset is exact for every date the log can hold and needs
no time-zone database on the machine.

A period of N days from a purchase (民法典 art. 201) starts the day after it and ends at
24:00 local on its last day, purchase date + N; if that last day is a day off in the
policy's calendar, the period ends on the next working day instead (art. 203).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from schemas.bodies import CalendarModel
from schemas.errors import PolicyError, invariant

LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
# Built once: the rules count days for every return, and timedelta(days=n) with a keyword
# costs about ten times ONE_DAY * n (both exact for an integer n).
ONE_DAY = timedelta(days=1)
ONE_SECOND = timedelta(seconds=1)
MIDNIGHT = time(0)
DAYS_OFF_IN_A_ROW_MAX = 366  # a calendar with more consecutive days off is broken


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of an aware moment."""
    invariant(moment.tzinfo is not None, "local_date() needs an aware datetime")
    return moment.astimezone(LOCAL).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The moments 00:00 local on ``day`` (included) and 00:00 local the next day
    (excluded)."""
    start = datetime.combine(day, MIDNIGHT, LOCAL)
    return start, start + ONE_DAY


def is_day_off(calendar: CalendarModel | None, day: date) -> bool:
    """Whether ``day`` is a statutory day off under the policy's calendar (no calendar:
    every day is a working day)."""
    if calendar is None:
        return False
    text = day.isoformat()
    if text in calendar.holidays:
        return True
    return day.isoweekday() in calendar.rest_weekdays and text not in calendar.workdays


def next_working_day(calendar: CalendarModel | None, day: date) -> date:
    """``day`` itself if it is a working day, else the first working day after it."""
    for _ in range(DAYS_OFF_IN_A_ROW_MAX):
        if not is_day_off(calendar, day):
            return day
        day += ONE_DAY
    raise PolicyError(f"the policy calendar has no working day within a year of {day}")


def period_end(start: date, days: int, calendar: CalendarModel | None) -> datetime:
    """The end of a period of ``days`` days counted from ``start`` (excluded): 24:00
    local on its last day, moved to the next working day when that day is off."""
    last_day = next_working_day(calendar, start + ONE_DAY * days)
    return datetime.combine(last_day + ONE_DAY, MIDNIGHT, LOCAL)


def add_working_days(calendar: CalendarModel | None, start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (for settlement due dates)."""
    day = start
    for _ in range(days):
        day = next_working_day(calendar, day + ONE_DAY)
    return day
