"""The course's autograder: hidden tests (``autograder/tests/<assignment>/``) and the engine that
runs them against student notebooks in a sandbox. Command line: ``python -m autograder --help``."""
