"""A class run as an instructor lives it: signals, kill -9, I/O errors, the lock on --out, grades.csv
always whole, --only, the rules for the submitted tree, an unreachable scheduler, a missing release."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, load_results, run_grader

A = "ch01_gradients"
NB = "gradients_numpy"


def _class(root: Path, n: int, kinds=("solutions", "exercises")) -> Path:
    sub = root / "submitted"
    for i in range(n):
        d = sub / f"s{i:02d}" / A
        d.mkdir(parents=True)
        shutil.copy(REPO / kinds[i % len(kinds)] / A / f"{NB}.ipynb", d / f"{NB}.ipynb")
    return sub


def _start(sub: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(sub), "--out", str(out), "--no-progress",
                             "--assignment", A, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _alive(pids) -> set[int]:
    alive = set()
    for p in pids:
        try:
            st = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if st.rsplit(")", 1)[1].split()[0] != "Z":
            alive.add(p)
    return alive


def _wait_for_results(out: Path, n: int, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and len(list(out.glob("*/*/results.json"))) < n:
        time.sleep(0.05)
    assert len(list(out.glob("*/*/results.json"))) >= n, "the run made no progress"


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_two_worker_run_within_seconds(tmp_path, sig, code):
    sub, out = _class(tmp_path, 16), tmp_path / "out"
    p = _start(sub, out, "--workers", "2")
    _wait_for_results(out, 2)
    family = _descendants(p.pid)
    t0 = time.monotonic()
    os.kill(p.pid, sig)
    _, err = p.communicate(timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == code, err
    assert took < 10, f"stopping took {took:.1f} s"
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    done = sorted(f.parent.parent.name for f in out.glob("*/*/results.json"))
    rows = list(csv.reader(open(out / "grades.csv")))
    assert sorted(r[0] for r in rows[1:]) == done and len(done) < 16
    assert not list(out.rglob("*.tmp"))
    time.sleep(2)
    assert not _alive(family), "processes of the run outlived it"


def test_kill_9_of_a_two_worker_run_leaves_no_process(tmp_path):
    sub, out = _class(tmp_path, 16), tmp_path / "out"
    p = _start(sub, out, "--workers", "2")
    _wait_for_results(out, 2)
    family = _descendants(p.pid)
    assert len(family) >= 3  # the pool's workers and their sandboxes
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 20
    while time.time() < deadline and _alive(family):
        time.sleep(0.2)
    assert not _alive(family), f"left behind: {_alive(family)}"
    r = run_grader(sub, out, "--assignment", A)  # and the rerun finishes the class
    assert r.returncode == 0, r.stderr
    assert len(list(csv.reader(open(out / "grades.csv")))) == 17


def _mount_tmpfs(path: Path, opts: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def root_mounts():
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only or a full tmpfs needs root")
    mounted = []

    def mount(path: Path, opts: str) -> Path:
        if not _mount_tmpfs(path, opts):
            pytest.skip("mount refused here")
        mounted.append(path)
        return path

    yield mount
    for m in mounted:
        _umount(m)


def test_read_only_out_fails_at_once_with_one_line(tmp_path, root_mounts):
    mnt = root_mounts(tmp_path / "ro", "size=4m,ro")
    sub = _class(tmp_path, 2)
    t0 = time.monotonic()
    r = run_grader(sub, mnt / "out", "--assignment", A, timeout=120)
    assert r.returncode not in (0, None) and time.monotonic() - t0 < 30
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and str(mnt / "out") in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_full_disk_keeps_what_was_written_and_leaves_no_partial_file(tmp_path, root_mounts):
    mnt = root_mounts(tmp_path / "full", "size=1m")
    sub = _class(tmp_path, 12)
    out = mnt / "out"
    out.mkdir()
    (mnt / "ballast").write_bytes(b"\0" * (1024 * 1024 - 160 * 1024))  # room for a few results only
    r = run_grader(sub, out, "--assignment", A, timeout=300)
    assert r.returncode not in (0, None)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert any(str(out) in l and "No space" in l for l in lines) and "Traceback" not in r.stderr, r.stderr
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*.tmp"))
    for f in out.glob("*/*/results.json"):
        json.loads(f.read_text())  # whole, never torn
    (mnt / "ballast").unlink()
    r = run_grader(sub, out, "--assignment", A)
    assert r.returncode == 0, r.stderr
    assert len(list(csv.reader(open(out / "grades.csv")))) == 13


def test_grades_csv_is_always_the_whole_of_out(tmp_path):
    sub = tmp_path / "submitted"
    for s in ("ann", "bob"):
        for a in (A, "ch03_vanishing"):
            (sub / s / a).mkdir(parents=True)
            for nb in (REPO / "exercises" / a).glob("*.ipynb"):
                shutil.copy(nb, sub / s / a / nb.name)
    out = tmp_path / "out"
    assert run_grader(sub, out, "--assignment", A).returncode == 0
    assert run_grader(sub, out, "--assignment", "ch03_vanishing").returncode == 0
    rows = {(r[0], r[1]) for r in list(csv.reader(open(out / "grades.csv")))[1:]}
    assert rows == {(s, a) for s in ("ann", "bob") for a in (A, "ch03_vanishing")}
    r = run_grader(sub, out, "--assignment", A, "--only", "bob")
    assert r.returncode == 0
    assert {(r[0], r[1]) for r in list(csv.reader(open(out / "grades.csv")))[1:]} == rows


def test_only_regrades_just_those_students(tmp_path):
    sub, out = _class(tmp_path, 4), tmp_path / "out"
    assert run_grader(sub, out, "--assignment", A).returncode == 0
    before = {s: (out / s / A / "results.json").stat().st_mtime_ns for s in ("s00", "s01", "s02", "s03")}
    time.sleep(0.05)
    r = run_grader(sub, out, "--assignment", A, "--only", "s01,s02")
    assert r.returncode == 0, r.stderr
    after = {s: (out / s / A / "results.json").stat().st_mtime_ns for s in before}
    assert [s for s in before if after[s] != before[s]] == ["s01", "s02"]
    r = run_grader(sub, out, "--assignment", A, "--only", "nobody")
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "nobody" in lines[0]


def test_a_second_run_on_the_same_out_is_refused_or_waits(tmp_path):
    sub, out = _class(tmp_path, 8), tmp_path / "out"
    p = _start(sub, out)
    _wait_for_results(out, 1)
    r = run_grader(sub, out, "--assignment", A)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "another run" in lines[0] and "--wait" in lines[0], r.stderr
    w = _start(sub, out, "--wait")
    assert p.wait(timeout=300) == 0
    _, err = w.communicate(timeout=300)
    assert w.returncode == 0 and "8 already done" in err, err


def test_a_stale_lock_from_a_killed_run_is_taken_over(tmp_path):
    sub, out = _class(tmp_path, 6), tmp_path / "out"
    p = _start(sub, out)
    _wait_for_results(out, 1)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    r = run_grader(sub, out, "--assignment", A)
    assert r.returncode == 0, r.stderr
    assert "taking over the lock" in r.stderr


def test_every_student_folder_is_graded_or_reported(tmp_path):
    sub = _class(tmp_path, 2)
    (sub / ".hidden_student" / A).mkdir(parents=True)
    (sub / "notes.txt").write_text("not a student")
    (sub / "s00" / "ch99_unknown").mkdir()
    r = run_grader(sub, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    for name in (".hidden_student", "notes.txt", "ch99_unknown"):
        assert name in r.stderr and "not graded" in r.stderr, (name, r.stderr)


def test_several_copies_the_most_complete_is_graded_and_the_others_named(tmp_path):
    sub = tmp_path / "submitted"
    d = sub / "ann" / A
    d.mkdir(parents=True)
    shutil.copy(REPO / "exercises" / A / f"{NB}.ipynb", d / f"Copy of {NB}.ipynb")  # the stub
    nb = json.load(open(REPO / "solutions" / A / f"{NB}.ipynb"))
    for c in nb["cells"]:
        c["source"] = "".join(l for l in c["source"] if "### BEGIN SOLUTION" not in l and "### END SOLUTION" not in l)
    (d / f"{NB} (1).ipynb").write_text(json.dumps(nb))  # the work
    out = tmp_path / "out"
    assert run_grader(sub, out, "--assignment", A).returncode == 0
    doc = load_results(out, "ann", A)
    assert doc["notebooks"][NB]["file"] == f"{NB} (1).ipynb"
    nb_total = doc["subtotals"]["notebooks"][NB]
    assert nb_total["score"] == nb_total["max_score"] > 0
    assert f"Copy of {NB}.ipynb" in " ".join(doc["notebooks"][NB]["notes"])
    assert "Copy of" in (out / "ann" / A / "feedback.md").read_text()


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    sub = _class(tmp_path, 1)
    t0 = time.monotonic()
    r = run_grader(sub, tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "2", timeout=120)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "scheduler" in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert time.monotonic() - t0 < 60
    r = run_grader(sub, tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "0")
    assert r.returncode == 2 and "--scheduler-timeout must be more than 0" in r.stderr, r.stderr


def test_a_missing_release_is_said_loudly(tmp_path):
    sub = _class(tmp_path, 1, kinds=("solutions",))
    fake = tmp_path / "norelease"
    fake.mkdir()
    env = dict(os.environ, AUTOGRADER_RELEASE_DIR=str(fake))
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sub), "--out", str(tmp_path / "out"),
                        "--no-progress"], cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "no release" in r.stderr and "WARNING" in r.stderr
    doc = load_results(tmp_path / "out", "s00", A)
    assert any("release notebook" in n for n in doc["notebooks"][NB]["notes"])
