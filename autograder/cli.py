"""``python -m autograder grade SUBMITTED_DIR --out RESULTS_DIR [--assignment NAME] [--workers N]``"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core.engine import Limits


# The command line: the parser (a builder per group of commands), then one function per command.
def _grade_parser(sub) -> None:
    g = sub.add_parser("grade", help="grade every submission under SUBMITTED_DIR (nbgrader's submitted/ layout)")
    g.add_argument("submitted", type=Path, metavar="SUBMITTED_DIR")
    g.add_argument("--out", type=Path, required=True, metavar="RESULTS_DIR")
    g.add_argument("--assignment", metavar="NAME", help="grade only this assignment (e.g. ch01_gradients)")
    g.add_argument("--workers", type=int, default=1, metavar="N", help="sandboxed workers in parallel")
    g.add_argument("--force", action="store_true", help="regrade submissions that already have results")
    g.add_argument("--only", metavar="STUDENT[,STUDENT]", help="(re)grade only these students; grades.csv "
                   "still lists every result under RESULTS_DIR")
    g.add_argument("--wait", action="store_true", help="if another run holds RESULTS_DIR, wait for it")
    g.add_argument("--scheduler", metavar="ADDRESS", help="run jobs on a Dask distributed cluster")
    g.add_argument("--scheduler-timeout", type=float, default=15.0, metavar="S",
                   help="how long to try to reach the scheduler before the run stops (default 15)")
    g.add_argument("--cell-timeout", type=float, default=Limits.cell_seconds, metavar="S")
    g.add_argument("--call-timeout", type=float, default=Limits.call_seconds, metavar="S")
    g.add_argument("--notebook-timeout", type=float, default=Limits.notebook_seconds, metavar="S")
    g.add_argument("--submission-timeout", type=float, default=Limits.submission_seconds, metavar="S",
                   help="everything of one submission: every notebook, restart and test")
    g.add_argument("--memory-mb", type=int, default=Limits.memory_bytes // 2**20, metavar="MB",
                   help="memory of one notebook's processes together (and of each one)")
    g.add_argument("--allow-weak-isolation", action="store_true",
                   help="grade even where no isolation is possible (not root, no bubblewrap, no user "
                        "namespaces): student code could read the grader's files; recorded in every result")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--late-policy", type=Path, metavar="FILE", help="the course's late policy (default: "
                   "late_policy.yml in the current directory or the course; docs/publishing.md)")


def _nbgrader_parsers(sub) -> None:
    sp = sub.add_parser("sync-points", help="set each visible test cell's nbgrader points to the hidden points "
                        "of the functions it checks (in solutions/; then run make release)")
    sp.add_argument("chapters", nargs="*", metavar="CHAPTER")
    gbp = sub.add_parser("gradebook", help="load RESULTS_DIR into nbgrader's gradebook (for nbgrader export "
                         "and formgrader)")
    gbp.add_argument("results", type=Path, metavar="RESULTS_DIR")
    gbp.add_argument("--submitted", type=Path, metavar="DIR", help="also copy the notebooks to autograded/")
    gbp.add_argument("--force", action="store_true", help="reload every result, even unchanged ones")
    gbp.add_argument("--export", type=Path, metavar="CSV", help="then write the combined totals (our scores with "
                     "nbgrader's manual grades and late penalties) to CSV")
    gbp.add_argument("--late-policy", type=Path, metavar="FILE", help="default: late_policy.yml (see grade)")


def _publishing_parsers(sub) -> None:
    """gradescope, export, report (autograder/platforms/gradescope.py, export.py, report.py)."""
    gsp = sub.add_parser("gradescope", help="write a Gradescope autograder zip for ASSIGNMENT")
    gsp.add_argument("assignment", metavar="ASSIGNMENT")
    gsp.add_argument("--out", type=Path, metavar="ZIP", help="default: ASSIGNMENT_gradescope.zip")
    gsp.add_argument("--late-policy", type=Path, metavar="FILE", help="the course's late policy (default: "
                     "late_policy.yml when it exists), applied to Gradescope's created_at and due dates")
    gsp.add_argument("--late-penalty", type=float, default=0.0, metavar="PCT",
                     help="instead of --late-policy: percent of the score lost per started late day")
    gsp.add_argument("--late-days", type=float, metavar="N", help="score 0 after N late days")
    gsp.add_argument("--grace-minutes", type=float, default=0.0, metavar="M")
    vis = ("visible", "after_due_date", "after_published", "hidden")
    gsp.add_argument("--visible-tests", choices=vis, help="tests mirroring the notebook's visible tests "
                     "(default: visible)")
    gsp.add_argument("--hidden-tests", choices=vis, help="the other hidden tests (default: after_due_date)")
    gsp.add_argument("--score-visibility", choices=vis, help="the total score and subtotals (default: as "
                     "the most hidden tests; Gradescope hides the total while any test is hidden)")
    gsp.add_argument("--visibility", choices=vis, help="both kinds of tests at once (older option)")
    exp = sub.add_parser("export", help="grades for an LMS: one row per student, a points-possible row")
    exp.add_argument("results", type=Path, metavar="RESULTS_DIR")
    exp.add_argument("--format", choices=["canvas", "moodle", "long", "per-question"], default="per-question")
    exp.add_argument("--out", type=Path, metavar="FILE", help="default: standard output")
    exp.add_argument("--assignment", metavar="NAME", help="only this assignment")
    exp.add_argument("--per-assignment", action="store_true", help="canvas: one column per assignment (the default)")
    exp.add_argument("--per-question", action="store_true", help="canvas: one column per graded name instead")
    exp.add_argument("--non-submitters", choices=["zero", "missing"], default="zero",
                     help="a rostered student without a result: an explicit 0 (default) or missing (empty in "
                     "Canvas/Moodle, 'missing' in the long format)")
    exp.add_argument("--canvas-column", action="append", default=[], metavar="ASSIGNMENT=HEADER",
                     help="Canvas column for ASSIGNMENT, e.g. 'ch02_rnn=RNN lab (73412)' (default: taken from a "
                     "Canvas roster's headers, else the assignment name, which Canvas imports as a new assignment)")
    rep = sub.add_parser("report", help="a self-contained HTML page: where the class struggles")
    rep.add_argument("results", type=Path, metavar="RESULTS_DIR")
    rep.add_argument("--out", type=Path, metavar="FILE.html", help="default: RESULTS_DIR/report.html")
    for sp_ in (exp, rep):
        sp_.add_argument("--roster", type=Path, metavar="CSV", help="the class list (id, name, email, sis_user_id, "
                         "sis_login_id, section) or Canvas's own gradebook export: every rostered student gets a row")
        sp_.add_argument("--late-policy", type=Path, metavar="FILE", help="default: late_policy.yml (see grade)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    _grade_parser(sub)
    sub.add_parser("list", help="list assignments and their graded tests")
    _nbgrader_parsers(sub)
    _publishing_parsers(sub)
    return p


def list_command(a) -> int:
    """``python -m autograder list``"""
    from .core import runner

    for name in runner.assignments():
        for nbt in runner.load_assignment(name):
            pts = sum(t.points for t in nbt.tests)
            print(f"{name}/{nbt.notebook}.ipynb: {len(nbt.tests)} tests, {pts:g} points")
            for t in nbt.tests:
                print(f"    {t.name:50s} {t.function:28s} {t.points:g}")
    return 0


def sync_points_command(a) -> int:
    """``python -m autograder sync-points [CHAPTER ...]``"""
    from .platforms.nbgrader_bridge import sync_points

    for line in sync_points(chapters=a.chapters or None):
        print(line)
    return 0


def gradebook_command(a) -> int:
    """``python -m autograder gradebook RESULTS_DIR [--submitted DIR] [--export CSV]``"""
    from .platforms.nbgrader_bridge import import_results

    if not a.results.is_dir():
        print(f"autograder: error: RESULTS_DIR {a.results} is not a directory", file=sys.stderr)
        return 2
    print(f"autograder: {import_results(a.results, a.submitted, force=a.force, late_policy=a.late_policy)} "
          "results loaded into nbgrader's gradebook", file=sys.stderr)
    if a.export:
        from .platforms.nbgrader_bridge import write_combined_csv

        print(f"autograder: {write_combined_csv(a.export, a.results, late_policy=a.late_policy)} rows written "
              f"to {a.export}", file=sys.stderr)
    return 0


def grade_command(a) -> int:
    """``python -m autograder grade SUBMITTED_DIR --out RESULTS_DIR ...``"""
    from .core import runner

    if not a.submitted.is_dir():
        print(f"autograder: error: SUBMITTED_DIR {a.submitted} is not a directory", file=sys.stderr)
        return 2
    if a.workers < 1:
        print("autograder: error: --workers must be at least 1", file=sys.stderr)
        return 2
    if not a.scheduler_timeout > 0:
        print("autograder: error: --scheduler-timeout must be more than 0 seconds", file=sys.stderr)
        return 2
    if a.assignment and a.assignment not in runner.assignments():
        print(f"autograder: error: no hidden tests for assignment {a.assignment!r} "
              f"(known: {', '.join(runner.assignments())})", file=sys.stderr)
        return 2
    from .core.classrun import Interrupted, RunError, grade_class

    limits = Limits(cell_seconds=a.cell_timeout, call_seconds=a.call_timeout,
                    notebook_seconds=a.notebook_timeout, submission_seconds=a.submission_timeout,
                    memory_bytes=a.memory_mb * 2**20, allow_weak_isolation=a.allow_weak_isolation)
    only = [s.strip() for s in a.only.split(",") if s.strip()] if a.only else None
    from .platforms import latepolicy

    try:
        policy = latepolicy.find(a.late_policy)
    except latepolicy.LatePolicyError as e:
        print(f"autograder: error: {e}", file=sys.stderr)
        return 2
    try:
        s = grade_class(a.submitted, a.out, a.assignment, a.workers, a.force, limits,
                        progress=not a.no_progress, scheduler=a.scheduler, only=only, wait=a.wait,
                        scheduler_timeout=a.scheduler_timeout,
                        stamp_late=latepolicy.stamper(policy, runner.log))
    except RunError as e:
        print(f"autograder: error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        return e.code
    iso = f", isolation: {', '.join(sorted(s.isolation))}" if s.isolation else ""
    print(f"autograder: {s.submissions} submissions, {s.graded} graded, {s.skipped} already "
          f"done, {s.seconds:.1f} s{iso}, results in {a.out}/grades.csv", file=sys.stderr)
    return 0


COMMANDS = {"grade": grade_command, "list": list_command, "sync-points": sync_points_command,
            "gradebook": gradebook_command}


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if a.cmd in ("gradescope", "export", "report"):  # the publishing commands: each platform's command(a)
        import importlib

        return importlib.import_module(f".platforms.{a.cmd}", __package__).command(a)
    return COMMANDS[a.cmd](a)
