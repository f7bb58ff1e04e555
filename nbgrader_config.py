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
# it. The course's ONE late policy is late_policy.yml (due dates, grace, percent per day or hour, cap, zero
# after N days, extensions; docs/publishing.md): `python -m autograder grade`, `gradebook`, the exports and
# the report all apply it, and `gradebook` writes its due dates and penalties into nbgrader's gradebook,
# so `nbgrader export` agrees. nbgrader's own methods are "none" and "zero" only; the nearest one is set
# here for an `nbgrader autograde` run by hand (docs/grading-nbgrader.md lists what it cannot express).
# Without late_policy.yml, this setting and nbgrader's due dates (`nbgrader db assignment add NAME
# --duedate=...`) are the policy of the gradebook: "none" flags late work only; "zero" gives it no points.
c.LateSubmissionPlugin.penalty_method = "none"
if os.path.isfile(os.path.join(ROOT, "late_policy.yml")):
    try:
        from autograder.platforms.latepolicy import LatePolicy

        c.LateSubmissionPlugin.penalty_method = LatePolicy.load(os.path.join(ROOT, "late_policy.yml")).nbgrader_method()[0]
    except ImportError:  # a course root without the autograder on the path: the gradebook step sets penalties
        pass

# `nbgrader zip_collect NAME`: put the downloaded files (or zips of them) in downloaded/NAME/archive/, each
# named <student id>_<submission time, UTC, to the minute>_<notebook>.ipynb, e.g.
#   alice_2026-10-08T1705_rnn_numpy.ipynb
# zip_collect then fills submitted/<student>/NAME/ with the notebook and a timestamp.txt (the late policy
# reads it). A file whose name does not match is skipped with a warning.
c.ZipCollectApp.collector_plugin = "nbgrader.plugins.zipcollect.FileNameCollectorPlugin"
c.FileNameCollectorPlugin.named_regexp = (
    r"(?:.*/)?(?P<student_id>[^/]+?)_(?P<timestamp>\d{4}-\d\d-\d\dT\d{4})_(?P<file_id>[^/]+)$")
c.FileNameCollectorPlugin.valid_ext = [".ipynb"]
