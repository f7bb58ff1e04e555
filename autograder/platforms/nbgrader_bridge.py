"""Keeping nbgrader in step: test-cell points, and loading results into nbgrader's gradebook.

Each visible test cell sits under the answer cells it checks. A test cell's nbgrader points are the
hidden points of the graded names answered since the previous test cell, so nbgrader's totals (its
gradebook, ``nbgrader export``, formgrader, even ``nbgrader autograde``) have the same maximum as
``python -m autograder grade``, and loading our results gives each cell exactly what its functions
earned.

    python -m autograder sync-points          # rewrite test-cell points in solutions/ (then make release)
    python -m autograder gradebook RESULTS_DIR [--submitted DIR]   # results -> nbgrader's gradebook

Loading results does to the gradebook what ``nbgrader autograde`` does, through nbgrader's own code
wherever it has some: the student and submission (with the ``timestamp.txt`` that ``nbgrader collect``
and ``zip_collect`` write, read by nbgrader's ``CourseDirectory``), the submitted notebooks cleaned by
nbgrader's own sanitising preprocessors into ``autograded/`` (read-only cells restored, outputs
cleared, each test cell's output replaced by our results for the functions it checks), every grade
cell's ``auto_score`` and ``needs_manual_grade`` by nbgrader's rule, and answer-cell comments. Manual
grades given in formgrader are never touched; ``combined_totals`` adds them to ours, as ``nbgrader export``
does. See docs/grading-nbgrader.md.

Its rooms: nbgrader_points.py (the test cells' points), nbgrader_course.py (the course, the gradebook's
assignments and the late policy in it), nbgrader_gradebook.py (results -> the gradebook) and
nbgrader_combined.py (our totals plus the manual grades). Every public name stays importable from here.

The late penalty is the course's one late policy (autograder/latepolicy.py, ``late_policy.yml``), the same
function on the same timestamp as grades.csv and every export: its due dates and extensions are written
into the gradebook (so formgrader shows the same lateness) and its penalty into each submitted notebook's
``late_submission_penalty``, which ``nbgrader export`` subtracts. nbgrader's own methods (``none``,
``zero``) cannot express a percent per day, a cap or a grace period, so nbgrader's ``AssignLatePenalties``
is not used. Without a ``late_policy.yml``, nbgrader's settings are the policy: its due dates, and
``penalty_method = "zero"`` read as "any late work scores 0" (``none``: late work is only flagged); the
gradebook and the combined CSV then apply them, but ``grade``'s grades.csv and the exports do not know
them, and a warning says so.
"""

from __future__ import annotations

from .nbgrader_combined import COMBINED_COLUMNS, combined_rows, combined_totals, write_combined_csv
from .nbgrader_course import add_assignments, course, course_policy, default_course_root, tools_on_path
from .nbgrader_gradebook import import_results
from .nbgrader_points import cell_functions, expected_cell_points, hidden_points, sync_points

__all__ = ["COMBINED_COLUMNS", "add_assignments", "cell_functions", "combined_rows", "combined_totals", "course",
           "course_policy", "default_course_root", "expected_cell_points", "hidden_points", "import_results",
           "sync_points", "tools_on_path", "write_combined_csv"]
