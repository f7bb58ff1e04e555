# nbgrader's view of the course: solutions/ is the source, exercises/ the release.
# `nbgrader generate_assignment ch01_gradients` regenerates exercises/ch01_gradients/ from solutions/.
import os
import sys

c = get_config()  # noqa: F821 (provided by nbgrader)

# nbgrader creates a gradebook by running `alembic` from PATH: put this interpreter's own bin directory
# (.venv/bin) first, so that `.venv/bin/nbgrader ...` works from a shell where the venv is not activated.
_BIN = os.path.dirname(os.path.abspath(sys.executable))
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join(p for p in (_BIN, os.environ.get("PATH", "")) if p)

ROOT = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(ROOT, ".nbgrader"), exist_ok=True)
c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "solutions"  # reference notebooks, with solution markers
c.CourseDirectory.release_directory = "exercises"  # what students get (generated, never edited)
c.CourseDirectory.submitted_directory = "submitted"  # collected work: submitted/<student>/<chapter>/
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = f"sqlite:///{ROOT}/.nbgrader/gradebook.db"  # local, not committed
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".nbgrader"]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.enforce_metadata = True
c.ClearOutput.enabled = True
c.Execute.timeout = 300
# Late work: a submission's time is the timestamp.txt that `nbgrader collect` / `zip_collect` write beside
# it; `python -m autograder gradebook` carries it into the gradebook, where nbgrader compares it with the
# assignment's due date and any extension. Set a due date with
#   .venv/bin/nbgrader db assignment add ch01_gradients --duedate="2026-10-01 17:00 UTC"
# "none" flags late work only; "zero" gives a late notebook no points (docs/grading-nbgrader.md).
c.LateSubmissionPlugin.penalty_method = "none"
