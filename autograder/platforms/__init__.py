"""What the course's grading meets outside: nbgrader, Gradescope, LMS exports, the class report and the
late policy. Built on ``autograder.core``, which never imports back."""
