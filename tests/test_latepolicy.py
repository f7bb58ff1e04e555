"""The course's one late policy (autograder/latepolicy.py): the rules of its docstring, case by case."""
from datetime import datetime, timedelta, timezone

import pytest

from autograder.platforms.latepolicy import LatePolicy, LatePolicyError, duration_words

DUE = datetime(2026, 10, 8, 17, 0, tzinfo=timezone.utc)
POLICY = {"due": {"ch02_rnn": "2026-10-08 17:00"}, "grace_minutes": 15, "percent": 10, "per": "day",
          "cap_percent": 50, "zero_after_days": 7, "extensions": {"s_ext": {"ch02_rnn": "2d"}, "s_all": {"*": "36h"}}}


def at(**kw):
    return DUE + timedelta(**kw)


@pytest.fixture
def pol():
    return LatePolicy.from_dict(POLICY)


def test_on_time_grace_late_very_late(pol):
    on = pol.assess("ch02_rnn", "a", at(minutes=-5))
    assert (on.late, on.minutes_late, on.apply(40, 42), on.penalty(40, 42)) == (False, 0.0, 40.0, 0.0)
    assert on.words == "submitted on time"
    grace = pol.assess("ch02_rnn", "b", at(minutes=14))
    assert not grace.late and grace.minutes_late == pytest.approx(14) and grace.apply(40, 42) == 40
    assert "grace" in grace.words
    one = pol.assess("ch02_rnn", "c", at(minutes=16))
    assert one.late and one.percent == 10 and one.apply(40, 42) == pytest.approx(36)
    api = pol.assess("ch02_rnn", "d", at(days=1, hours=15))
    assert api.percent == 20 and api.words == "submitted 1 d 15 h late: -20 % (10 % per day, at most 50 %)"
    capped = pol.assess("ch02_rnn", "e", at(days=6, hours=1))
    assert capped.percent == 50 and capped.apply(40, 42) == pytest.approx(20)
    zero = pol.assess("ch02_rnn", "f", at(days=7, minutes=1))
    assert zero.zero and zero.apply(40, 42) == 0.0 and zero.penalty(40, 42) == 40.0
    assert "score 0" in zero.words


def test_exactly_at_the_boundaries(pol):
    assert not pol.assess("ch02_rnn", "a", DUE).late
    assert not pol.assess("ch02_rnn", "a", at(minutes=15)).late
    assert pol.assess("ch02_rnn", "a", at(days=1)).percent == 10          # exactly one day: one day
    assert pol.assess("ch02_rnn", "a", at(days=1, seconds=1)).percent == 20
    assert not pol.assess("ch02_rnn", "a", at(days=7)).zero               # exactly 7 d: not yet zero


def test_extensions_and_explicit_due(pol):
    assert not pol.assess("ch02_rnn", "s_ext", at(days=1, hours=23)).late
    assert pol.assess("ch02_rnn", "s_ext", at(days=2, hours=1)).percent == 10
    assert not pol.assess("ch02_rnn", "s_all", at(hours=30)).late
    assert pol.due_for("ch02_rnn", "s_all") == at(hours=36)
    # a given due date is used as it is (it already holds any extension)
    lat = pol.assess("ch02_rnn", "s_ext", at(days=1, hours=1), due=DUE)
    assert lat.late and lat.percent == 20


def test_no_due_date_no_submission_none_policy():
    none = LatePolicy.none()
    assert not none.assess("ch02_rnn", "a", DUE).late
    lat = none.assess("ch02_rnn", "a", at(hours=2), due=DUE)   # flagged, not penalised
    assert lat.late and lat.apply(40, 42) == 40 and "no penalty" in lat.words
    pol = LatePolicy.from_dict(POLICY)
    assert not pol.assess("ch03_other", "a", at(days=30)).late    # no due date for that assignment
    miss = pol.assess("ch02_rnn", "a", None)
    assert not miss.late and miss.words == "not submitted"


def test_nbgrader_zero_equivalent_and_basis():
    zero = LatePolicy.from_dict({"due": {"x": DUE}, "zero_after_days": 0})
    assert zero.assess("x", "a", at(minutes=1)).apply(40, 42) == 0
    assert zero.nbgrader_method() == ("zero", "")
    assert LatePolicy.none().nbgrader_method() == ("none", "")
    method, diff = LatePolicy.from_dict(POLICY).nbgrader_method()
    assert method == "none" and "penalty" in diff
    mx = LatePolicy.from_dict({"due": {"x": DUE}, "percent": 10, "basis": "max_score", "per": "hour"})
    lat = mx.assess("x", "a", at(hours=2, minutes=1))
    assert lat.percent == 30 and lat.apply(10, 40) == pytest.approx(0.0) and lat.apply(30, 40) == pytest.approx(18)


def test_timezones_and_timestamps():
    pol = LatePolicy.from_dict({"timezone": "Europe/Paris", "due": {"x": "2026-10-08 19:00"}, "percent": 10})
    assert pol.due_dates["x"] == DUE          # 19:00 in Paris (CEST) is 17:00 UTC
    assert pol.assess("x", "a", "2026-10-08 17:30:00.000000 UTC").late   # nbgrader's timestamp format
    assert not pol.assess("x", "a", "2026-10-08T18:59:00").late          # naive: read in the policy's zone


def test_round_trip_and_files(tmp_path):
    pol = LatePolicy.from_dict(POLICY)
    again = LatePolicy.from_dict(pol.to_dict())
    for minutes in (-1, 10, 16, 60 * 40, 60 * 24 * 8):
        a, b = pol.assess("ch02_rnn", "s_ext", at(minutes=minutes)), again.assess("ch02_rnn", "s_ext", at(minutes=minutes))
        assert a.to_dict() == b.to_dict()
    y = tmp_path / "late_policy.yml"
    y.write_text("due:\n  ch02_rnn: 2026-10-08 17:00\npercent: 10\nper: hour\n")
    assert LatePolicy.load(y).assess("ch02_rnn", "a", at(minutes=61)).percent == 20
    assert LatePolicy.load(None).source == "none"
    import json
    d = pol.assess("ch02_rnn", "a", at(days=2)).to_dict()
    assert json.loads(json.dumps(d)) == d and d["minutes_late"] == 2880 and d["late"]


@pytest.mark.parametrize("bad, word", [({"percent": "ten"}, "percent"), ({"per": "week"}, "per"),
                                       ({"grace": 5}, "unknown key"), ({"extensions": {"a": "2 weeks"}}, "unit"),
                                       ({"basis": "points"}, "basis"), ({"percent": -1}, ">= 0")])
def test_bad_policy_says_what(bad, word):
    with pytest.raises(LatePolicyError, match=word):
        LatePolicy.from_dict(bad)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(LatePolicyError, match="no file"):
        LatePolicy.load(tmp_path / "nope.yml")


def test_duration_words():
    assert duration_words(1) == "1 min" and duration_words(0.01) == "1 min" and duration_words(0) == "0 min"
    assert duration_words(39 * 60) == "1 d 15 h" and duration_words(185) == "3 h 5 min" and duration_words(1440) == "1 d"


@pytest.mark.parametrize("policy, method", [("due: {x: 2026-10-08 17:00}\nzero_after_days: 0\n", "zero"),
                                            ("due: {x: 2026-10-08 17:00}\npercent: 10\n", "none"),
                                            (None, "none")])
def test_nbgrader_config_takes_the_nearest_method_from_the_policy(tmp_path, policy, method):
    """nbgrader_config.py maps late_policy.yml onto nbgrader's none/zero (for an `nbgrader autograde` by hand)."""
    import shutil

    from traitlets.config.loader import PyFileConfigLoader

    from conftest import REPO

    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    if policy is not None:
        (tmp_path / "late_policy.yml").write_text(policy)
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert cfg.LateSubmissionPlugin.penalty_method == method
    assert "student_id" in cfg.FileNameCollectorPlugin.named_regexp  # zip_collect's pattern is set
