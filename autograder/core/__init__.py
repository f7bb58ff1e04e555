"""The trusted grading core: the engine that drives a sandboxed child (``engine``), the test authors'
API (``api``), the grading of one submission (``runner``, ``notebook``, ``policy``, ``feedback``), and
the class run over worker pools (``classrun``, ``worker``, ``pools``). It imports nothing of
``autograder.platforms`` (``tests/test_layout.py`` checks it)."""
