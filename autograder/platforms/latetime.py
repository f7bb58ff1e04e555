"""The late policy's times and durations, read and written one way: dates with or without a zone
("2026-10-08 17:00", nbgrader's "... UTC"), durations ("2d", "36h", "90min") and the words that say how
late a submission is ("1 d 15 h"). The policy itself: latepolicy.py.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

_UNITS = {"d": 1440.0, "day": 1440.0, "days": 1440.0, "h": 60.0, "hour": 60.0, "hours": 60.0,
          "min": 1.0, "m": 1.0, "minute": 1.0, "minutes": 1.0}


class LatePolicyError(ValueError):
    """A late-policy file or dict that cannot be read; the message says which key and why."""


def _zone(name: str | None):
    if not name or str(name).upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(str(name))
    except Exception as exc:  # noqa: BLE001 - unknown zone name
        raise LatePolicyError(f"late policy: unknown timezone {name!r}") from exc


def parse_time(value: Any, tz=timezone.utc) -> datetime | None:
    """A datetime (aware) from a datetime, an ISO string ("2026-10-08 17:00", "...T17:00:00+02:00",
    nbgrader's "2026-10-08 17:00:00.123456 UTC"), or None. A time without a zone is read in ``tz``."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        s = str(value).strip()
        m = re.fullmatch(r"(.*?)\s*(UTC|GMT|Z)", s)
        if m:
            s, dt_tz = m.group(1), timezone.utc
        else:
            dt_tz = None
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            try:
                from dateutil import parser as _p
                dt = _p.parse(s)
            except Exception as exc:  # noqa: BLE001
                raise LatePolicyError(f"late policy: cannot read the date {value!r}") from exc
        if dt_tz is not None and dt.tzinfo is None:
            dt = dt.replace(tzinfo=dt_tz)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt


def _minutes(value: Any, what: str) -> float:
    """Minutes from 90, "90", "90min", "36h", "2d", "1 d 12 h"."""
    if isinstance(value, bool):
        raise LatePolicyError(f"late policy: {what}: {value!r} is not a duration")
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip().lower()
    if re.fullmatch(r"[0-9.]+", s):
        return float(s)
    parts = re.findall(r"([0-9.]+)\s*([a-z]+)", s)
    if not parts or re.sub(r"[0-9.]+\s*[a-z]+|\s", "", s):
        raise LatePolicyError(f"late policy: {what}: cannot read the duration {value!r} (e.g. 2d, 36h, 90min)")
    total = 0.0
    for num, unit in parts:
        if unit not in _UNITS:
            raise LatePolicyError(f"late policy: {what}: unknown unit {unit!r} in {value!r} (d, h, min)")
        total += float(num) * _UNITS[unit]
    return total


def duration_words(minutes: float) -> str:
    """'1 d 15 h', '3 h 5 min', '1 min', '0 min' (whole minutes, rounded up: 1 s late reads '1 min')."""
    m = int(math.ceil(max(0.0, minutes) - 1e-9))
    d, rest = divmod(m, 1440)
    h, mi = divmod(rest, 60)
    out = []
    if d:
        out.append(f"{d} d")
    if h:
        out.append(f"{h} h")
    if mi and not d:
        out.append(f"{mi} min")
    return " ".join(out) if out else ("0 min" if m == 0 else f"{d} d")
