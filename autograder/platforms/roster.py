"""The class list an export or the report is given (``--roster CSV``): our roster CSV (id, name, email,
sis_user_id, sis_login_id, section; any order, any case) or Canvas's own gradebook export, read into people
that a student id is matched against (id, SIS login, SIS user id, email, Canvas id), with Canvas's own
assignment headers when the roster is a Canvas export.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

ROSTER_KEYS = {  # our key: the headers accepted for it (lower case; Canvas's export's own names included)
    "id": ("id", "student_id", "student id", "nbgrader id", "username", "user"),
    "name": ("name", "student", "full name", "student name"),
    "email": ("email", "e-mail", "email address"),
    "sis_user_id": ("sis user id", "sis_user_id", "id number", "idnumber"),
    "sis_login_id": ("sis login id", "sis_login_id", "login", "login id"),
    "section": ("section", "sections"),
}
CANVAS_FIXED = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


class RosterError(ValueError):
    pass


@dataclass
class Person:
    id: str = ""
    name: str = ""
    email: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    canvas_id: str = ""

    def keys(self) -> list[str]:
        return [k for k in (self.id, self.sis_login_id, self.sis_user_id, self.email, self.canvas_id) if k]

    @property
    def first_last(self) -> tuple[str, str]:
        """("First", "Last") from "Last, First" (Canvas's order) or "First Last"."""
        if "," in self.name:
            last, first = [x.strip() for x in self.name.split(",", 1)]
            return first, last
        parts = self.name.split()
        return (" ".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (self.name, "")


@dataclass
class Roster:
    people: list = field(default_factory=list)
    canvas_headers: dict = field(default_factory=dict)  # assignment name -> "Name (canvas id)"
    source: str = ""

    def find(self, student_id: str) -> Person | None:
        """The rostered person whose id, SIS login, SIS user id, email or Canvas id is ``student_id``."""
        for field_ in ("id", "sis_login_id", "sis_user_id", "email", "canvas_id"):
            for p in self.people:
                if getattr(p, field_) and getattr(p, field_) == student_id:
                    return p
        low = student_id.lower()
        for p in self.people:
            if p.email and p.email.lower() == low:
                return p
        return None


_CANVAS_HEADER = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")


def load_roster(path: Path) -> Roster:
    """Our roster CSV (id, name, email, sis_user_id, sis_login_id, section; any order, any case) or Canvas's
    own gradebook export (Student, ID, SIS User ID, SIS Login ID, Section, then ``Name (id)`` columns, a
    ``Points Possible`` row and perhaps a "Student, Test" row): the people, and Canvas's assignment headers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise RosterError(f"--roster: cannot read {path}: {e.strerror or e}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise RosterError(f"--roster: {path} is empty")
    head = [h.strip() for h in rows[0]]
    low = [h.lower() for h in head]
    canvas = low[:2] == ["student", "id"] and "sis user id" in low
    col = {}
    for key, names in ROSTER_KEYS.items():
        if canvas and key == "id":
            continue
        for i, h in enumerate(low):
            if h in names and key not in col:
                col[key] = i
    if canvas:
        col["canvas_id"] = 1
    if not canvas and "id" not in col:
        raise RosterError(f"--roster: {path} has no id column (expected headers: id, name, email, sis_user_id, "
                          f"sis_login_id, section; or a Canvas gradebook export); found: {', '.join(head)}")
    r = Roster(source=str(path))
    if canvas:
        for h in head[5:]:
            m = _CANVAS_HEADER.match(h)
            if m:
                r.canvas_headers.setdefault(m.group("name"), h)
    seen = set()
    for row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        first = row[0].strip()
        if first.lower() in ("points possible", "student, test") or (canvas and first.lower() == "test student"):
            continue
        get = lambda k: row[col[k]].strip() if k in col and col[k] < len(row) else ""  # noqa: E731
        p = Person(id=get("id"), name=get("name"), email=get("email"), sis_user_id=get("sis_user_id"),
                   sis_login_id=get("sis_login_id"), section=get("section"), canvas_id=get("canvas_id"))
        if canvas and p.name.lower() == "student, test":
            continue
        if not p.keys():
            continue
        key = tuple(p.keys())
        if key in seen:
            continue
        seen.add(key)
        r.people.append(p)
    if not r.people:
        raise RosterError(f"--roster: {path} lists no student")
    return r
