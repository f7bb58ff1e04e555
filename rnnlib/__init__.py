"""rnnlib: the small library that the book, the exercise notebooks and the grader share.

Each helper names the section that introduces it. Nothing here implements a graded name: the
exercises are yours to write. Modules:

- ``rnnlib.utils``: seeding and device choice (chapter 1, "Tensors on devices").
- ``rnnlib.gradcheck``: numerical gradient checks for the visible tests (chapter 1, "Gradient checking").
- ``rnnlib.testing``: the checks that visible tests use, with messages that say what is wrong.
- ``rnnlib.plotting``: one figure style for the book, and interactive figures that need no kernel.
- ``rnnlib.diagrams``: the book's diagrams (unrolled RNN, LSTM and GRU cells...), drawn as SVG from code.
- ``rnnlib.tasks``: synthetic sequence tasks the chapters train on (chapter 3 onwards).
- ``rnnlib.text``: the course's own essay, the corpus of the character-level models (chapter 2).
"""
__version__ = "0.1.0"
