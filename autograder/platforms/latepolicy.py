"""The course's one late policy: every output (grades.csv, results.json, the combined CSV, nbgrader's
gradebook, the Canvas/Moodle/long exports, the report, the Gradescope bundle) asks this module, with
the same timestamps, how late a submission is and what that costs.

The policy is declared once, in a YAML (or JSON) file, by default ``late_policy.yml`` at the course root::

    timezone: UTC                 # how to read a date written without a zone (here and in timestamps)
    due:                          # the due date of each assignment
      ch02_rnn: 2026-10-08 17:00
    grace_minutes: 15             # up to this late is on time (no penalty, not flagged late)
    percent: 10                   # percent removed per started period late (counted from the due date)
    per: day                      # "day" or "hour"
    cap_percent: 50               # the most the per-period penalty removes (omit: no cap)
    zero_after_days: 7            # later than this (days after the due date): the score is 0 (omit: never)
    basis: score                  # the percent is of the student's "score" (default) or of "max_score"
    extensions:                   # per student: extra time, for every assignment ("*") or one
      s003: {ch02_rnn: 2d}        # "2d", "36h", "90min", a number of minutes, or a new due date
      s004: {"*": 48h}

Rules (one function, ``LatePolicy.assess``):
- A submission is late when it arrives more than ``grace_minutes`` after its due date (the
  assignment's, pushed back by the student's extension). Within the grace period nothing is removed.
- Beyond it, every started period (day or hour) counts from the due date: 1 min late is 1 day,
  1 d 15 h late is 2 days; the penalty is ``percent`` times that, at most ``cap_percent``, of the
  student's score (or of ``max_score`` with ``basis: max_score``); a score never goes below 0.
- More than ``zero_after_days`` days late, the score is 0. ``zero_after_days: 0`` with no percent is
  nbgrader's "zero" method (any late work gets 0); no percent and no zero is nbgrader's "none" method.
- No due date (none in the file and none given by the caller): never late.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .latetime import LatePolicyError, _minutes, _zone, duration_words, parse_time  # times and durations

__all__ = ["DEFAULT_FILE", "LatePolicy", "LatePolicyError", "Lateness", "duration_words", "find", "lateness_of",
           "parse_time", "read_timestamp", "stamp", "stamper"]

DEFAULT_FILE = "late_policy.yml"


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Lateness:
    """How late one submission is under the course's policy, and what that costs."""
    assignment: str
    student: str
    submitted: datetime | None
    due: datetime | None
    minutes_late: float          # 0.0 when on time (or no due date, or not submitted)
    late: bool                   # beyond the grace period
    percent: float               # percent removed (0 when not late or when zeroed)
    zero: bool                   # past zero_after_days: the score becomes 0
    basis: str = "score"
    words: str = ""
    policy: dict = field(default_factory=dict, compare=False)

    def apply(self, score: float, max_score: float) -> float:
        """The score after the penalty (never below 0, never above the score)."""
        score = float(score)
        if not self.late:
            return score
        if self.zero:
            return 0.0
        base = float(max_score) if self.basis == "max_score" else score
        return round(max(0.0, score - base * self.percent / 100.0), 6)

    def penalty(self, score: float, max_score: float) -> float:
        """The points removed."""
        return round(float(score) - self.apply(score, max_score), 6)

    def to_dict(self) -> dict:
        return {"assignment": self.assignment, "student": self.student,
                "submitted": self.submitted.isoformat() if self.submitted else None,
                "due": self.due.isoformat() if self.due else None,
                "minutes_late": round(self.minutes_late, 3), "late": self.late,
                "percent": self.percent, "zero": self.zero, "basis": self.basis, "words": self.words}


@dataclass(frozen=True)
class LatePolicy:
    """The course's late policy (see the module docstring for the file and the rules)."""
    due_dates: dict = field(default_factory=dict)        # assignment -> aware datetime
    grace_minutes: float = 0.0
    percent: float = 0.0
    per: str = "day"
    cap_percent: float | None = None
    zero_after_days: float | None = None
    basis: str = "score"
    extensions: dict = field(default_factory=dict)       # student -> {assignment or "*": minutes or datetime}
    tz: Any = timezone.utc
    source: str = ""

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def none(cls) -> "LatePolicy":
        """No policy: nothing is ever late unless a caller gives a due date; then late work is only flagged."""
        return cls(source="none")

    @classmethod
    def from_dict(cls, d: dict | None, source: str = "dict") -> "LatePolicy":
        d = dict(d or {})
        known = {"timezone", "due", "grace_minutes", "percent", "per", "cap_percent", "zero_after_days",
                 "basis", "extensions"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise LatePolicyError(f"late policy ({source}): unknown key(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(sorted(known))}")
        tz = _zone(d.get("timezone"))
        due = {}
        for a, v in (d.get("due") or {}).items():
            t = parse_time(v, tz)
            if t is not None:
                due[str(a)] = t

        def number(key, default, lo=0.0):
            v = d.get(key, default)
            if v is None:
                return None
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise LatePolicyError(f"late policy ({source}): {key} must be a number, not {v!r}") from None
            if v < lo:
                raise LatePolicyError(f"late policy ({source}): {key} must be >= {lo:g}, not {v:g}")
            return v

        grace = _minutes(d.get("grace_minutes", 0) or 0, "grace_minutes")
        per = str(d.get("per", "day")).lower().rstrip("s")
        if per not in ("day", "hour"):
            raise LatePolicyError(f"late policy ({source}): per must be 'day' or 'hour', not {d.get('per')!r}")
        basis = str(d.get("basis", "score"))
        if basis not in ("score", "max_score"):
            raise LatePolicyError(f"late policy ({source}): basis must be 'score' or 'max_score', not {basis!r}")
        ext = {}
        for student, v in (d.get("extensions") or {}).items():
            if not isinstance(v, dict):
                v = {"*": v}
            e = {}
            for a, x in v.items():
                if isinstance(x, datetime) or (isinstance(x, str) and re.match(r"\d{4}-\d\d-\d\d", x)):
                    e[str(a)] = parse_time(x, tz)
                else:
                    e[str(a)] = _minutes(x, f"extensions.{student}.{a}")
            ext[str(student)] = e
        return cls(due_dates=due, grace_minutes=grace, percent=number("percent", 0.0),
                   per=per, cap_percent=number("cap_percent", None), zero_after_days=number("zero_after_days", None),
                   basis=basis, extensions=ext, tz=tz, source=source)

    @classmethod
    def load(cls, path: str | Path | None) -> "LatePolicy":
        """The policy in ``path`` (YAML or JSON); None or a missing default file: ``LatePolicy.none()``."""
        if path is None:
            return cls.none()
        p = Path(path)
        if not p.is_file():
            raise LatePolicyError(f"late policy: no file {p}")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() == ".json":
                d = json.loads(text)
            else:
                import yaml
                d = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001
            raise LatePolicyError(f"late policy: cannot read {p}: {exc}") from exc
        if d is not None and not isinstance(d, dict):
            raise LatePolicyError(f"late policy: {p} must hold a mapping of keys (due, grace_minutes, ...)")
        return cls.from_dict(d, source=str(p))

    # -- the one function ------------------------------------------------------------------------------
    def due_for(self, assignment: str, student: str) -> datetime | None:
        """The assignment's due date pushed back by the student's extension (None: no due date)."""
        return self._extend(self.due_dates.get(assignment), assignment, student)

    def _extend(self, due, assignment, student):
        if due is None:
            return None
        e = self.extensions.get(student) or {}
        x = e.get(assignment, e.get("*"))
        if x is None:
            return due
        if isinstance(x, datetime):
            return max(due, x)
        return due + timedelta(minutes=x)

    def assess(self, assignment: str, student: str, submitted: datetime | str | None,
               due: datetime | str | None = None) -> Lateness:
        """How late ``student``'s ``assignment`` submitted at ``submitted`` is. ``due=None``: the policy's due
        date for the assignment plus the student's extension; a given ``due`` is used as it is (it already
        holds any extension, e.g. nbgrader's or Gradescope's). ``submitted=None``: not late."""
        sub = parse_time(submitted, self.tz)
        d = parse_time(due, self.tz) if due is not None else self.due_for(assignment, student)
        pol = self.summary()
        if sub is None or d is None:
            words = "not submitted" if sub is None else "no due date: on time"
            return Lateness(assignment, student, sub, d, 0.0, False, 0.0, False, self.basis, words, pol)
        minutes = max(0.0, (sub - d).total_seconds() / 60.0)
        if minutes <= 0:
            return Lateness(assignment, student, sub, d, 0.0, False, 0.0, False, self.basis,
                            "submitted on time", pol)
        if minutes <= self.grace_minutes:
            return Lateness(assignment, student, sub, d, minutes, False, 0.0, False, self.basis,
                            f"submitted {duration_words(minutes)} late, within the "
                            f"{duration_words(self.grace_minutes)} grace period: no penalty", pol)
        if self.zero_after_days is not None and minutes > self.zero_after_days * 1440.0:
            limit = "after the due date" if self.zero_after_days == 0 else \
                f"more than {duration_words(self.zero_after_days * 1440)} late"
            return Lateness(assignment, student, sub, d, minutes, True, 0.0, True, self.basis,
                            f"submitted {duration_words(minutes)} late ({limit}): score 0", pol)
        unit = 1440.0 if self.per == "day" else 60.0
        periods = math.ceil(minutes / unit - 1e-9)
        pct = self.percent * periods
        if self.cap_percent is not None:
            pct = min(pct, self.cap_percent)
        pct = min(pct, 100.0)
        if self.percent:
            rule = f"{_num(self.percent)} % per {self.per}"
            if self.cap_percent is not None:
                rule += f", at most {_num(self.cap_percent)} %"
            if self.basis == "max_score":
                rule += ", of the maximum score"
            words = f"submitted {duration_words(minutes)} late: -{_num(pct)} % ({rule})"
        else:
            words = f"submitted {duration_words(minutes)} late (no penalty in this course)"
        return Lateness(assignment, student, sub, d, minutes, True, float(pct), False, self.basis, words, pol)

    # -- descriptions ------------------------------------------------------------------------------------
    def summary(self) -> dict:
        return {"grace_minutes": self.grace_minutes, "percent": self.percent, "per": self.per,
                "cap_percent": self.cap_percent, "zero_after_days": self.zero_after_days, "basis": self.basis}

    def to_dict(self) -> dict:
        """A dict ``from_dict`` reads back (for the Gradescope bundle)."""
        tzname = "UTC" if self.tz is timezone.utc else str(getattr(self.tz, "key", self.tz))
        ext = {s: {a: (x.isoformat() if isinstance(x, datetime) else x) for a, x in e.items()}
               for s, e in self.extensions.items()}
        d = {"timezone": tzname, "due": {a: t.isoformat() for a, t in self.due_dates.items()},
             "grace_minutes": self.grace_minutes, "percent": self.percent, "per": self.per,
             "basis": self.basis, "extensions": ext}
        if self.cap_percent is not None:
            d["cap_percent"] = self.cap_percent
        if self.zero_after_days is not None:
            d["zero_after_days"] = self.zero_after_days
        return d

    def describe(self) -> str:
        """One sentence for a syllabus or a report header."""
        if not self.percent and self.zero_after_days is None:
            rule = "late work is flagged, not penalised"
        elif not self.percent:
            rule = ("late work scores 0" if self.zero_after_days == 0 else
                    f"work more than {duration_words(self.zero_after_days * 1440)} late scores 0")
        else:
            rule = f"{_num(self.percent)} % off per started {self.per} late"
            if self.cap_percent is not None:
                rule += f", at most {_num(self.cap_percent)} %"
            if self.zero_after_days is not None:
                rule += f"; more than {duration_words(self.zero_after_days * 1440)} late scores 0"
        if self.grace_minutes:
            rule += f" (grace period {duration_words(self.grace_minutes)})"
        return rule[0].upper() + rule[1:] + "."

    def nbgrader_method(self) -> tuple[str, str]:
        """nbgrader's nearest ``LateSubmissionPlugin.penalty_method`` ("none" or "zero") and, where nbgrader
        cannot express this policy, one sentence saying what differs (else "")."""
        if not self.percent and self.zero_after_days is None:
            diff = "" if not self.grace_minutes else \
                f"nbgrader has no grace period: it flags work up to {duration_words(self.grace_minutes)} late"
            return "none", diff
        if not self.percent and self.zero_after_days == 0:
            diff = "" if not self.grace_minutes else \
                (f"nbgrader has no grace period; the course's grade (autograder's combined CSV and exports) "
                 f"forgives {duration_words(self.grace_minutes)}")
            return "zero", diff
        return "none", ("nbgrader's methods are none and zero only: its gradebook flags late work without "
                        "the course's penalty; the combined CSV, grades.csv and the exports apply it ("
                        + self.describe() + ")")


# ------------------------------------------------------------------ where the policy and the times come from
def find(path: str | Path | None = None, root: str | Path | None = None) -> LatePolicy:
    """The course's policy: ``path`` when given, else ``late_policy.yml`` in ``root`` (a course root, e.g.
    nbgrader's), else in the current directory, else in the course repository; none: ``LatePolicy.none()``."""
    if path is not None:
        return LatePolicy.load(path)
    for d in ([Path(root)] if root is not None else []) + [Path.cwd(), Path(__file__).resolve().parents[2]]:
        if (d / DEFAULT_FILE).is_file():
            return LatePolicy.load(d / DEFAULT_FILE)
    return LatePolicy.none()


def read_timestamp(folder: str | Path) -> datetime | None:
    """The submission time that ``nbgrader collect`` / ``zip_collect`` write in ``<folder>/timestamp.txt``
    ("2026-10-08 17:00:00.000000 UTC"); None when there is none. An unreadable one raises LatePolicyError."""
    p = Path(folder) / "timestamp.txt"
    try:
        text = p.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text:
        return None
    return parse_time(text)


def lateness_of(doc: dict, policy: LatePolicy, submitted: datetime | str | None = None) -> Lateness:
    """The Lateness of one results.json document: its submission time is ``submitted`` when given, else the
    time the grader recorded in ``doc["late"]["submitted"]`` (from timestamp.txt); no time: on time."""
    if submitted is None:
        rec = doc.get("late") if isinstance(doc.get("late"), dict) else {}
        submitted = rec.get("submitted")
    lat = policy.assess(str(doc["assignment"]), str(doc["student_id"]), submitted)
    if submitted is None:
        from dataclasses import replace
        lat = replace(lat, words="no submission time (no timestamp.txt): on time")
    return lat


def stamp(doc: dict, policy: LatePolicy, submitted: datetime | str | None) -> bool:
    """Record the lateness and the score after the penalty in a results.json document (keys ``late`` and
    ``final_score``; ``score`` stays the sum of the tests' points). Returns whether the document changed.
    Nothing is added when there is neither a submission time nor a due date (the document stays as the
    grader wrote it)."""
    lat = lateness_of(doc, policy, submitted)
    if lat.submitted is None and lat.due is None:
        changed = "late" in doc or "final_score" in doc
        doc.pop("late", None)
        doc.pop("final_score", None)
        return changed
    rec = lat.to_dict()
    final = lat.apply(float(doc["score"]), float(doc["max_score"]))
    changed = doc.get("late") != rec or doc.get("final_score") != final
    doc["late"], doc["final_score"] = rec, final
    return changed


def stamper(policy: LatePolicy, log=None):
    """The class run's hook (``classrun.rebuild_grades_csv``): ``stamp_late(result, folder) -> changed``
    stamps a results document with its lateness under ``policy``, the submission time read from
    ``folder/timestamp.txt`` (or the one the document already holds)."""
    def stamp_late(r: dict, folder) -> bool:
        try:
            when = read_timestamp(folder) if folder is not None else None
        except ValueError:
            when = None
            if log is not None:
                log(f"{r.get('student_id')}/{r.get('assignment')}: timestamp.txt is not a time "
                    "(e.g. 2026-10-01 17:00:00 UTC): graded as on time")
        if when is None and isinstance(r.get("late"), dict):
            when = r["late"].get("submitted")
        return stamp(r, policy, when)

    return stamp_late
