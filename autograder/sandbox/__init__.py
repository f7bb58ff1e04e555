"""What runs inside the sandbox, beside the student's bytes: the zygote, the per-notebook child, the
wire format and the reaper. The grader copies this package (and nothing else of ``autograder/``) into
the sandbox; it imports nothing of the trusted side (``tests/test_layout.py`` checks it)."""
