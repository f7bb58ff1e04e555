"""Text the course wrote itself, and a character vocabulary. Introduced in chapter 2, "A character-level
language model".

The essay below was written for this course (no outside corpus, no licence to track). It is small
(about 4,500 characters), plain ASCII, and long enough for a character-level model to learn spelling, spaces and
punctuation in a few seconds of training. Other chapters reuse it for generation.

    >>> from rnnlib.text import course_text, CharVocab
    >>> text = course_text()
    >>> vocab = CharVocab(text)
    >>> ids = vocab.encode("the state")          # numpy int64 array
    >>> vocab.decode(ids)
    'the state'
"""
from __future__ import annotations

import numpy as np

_ESSAY = """\
On machines that remember

A sequence is a list of things in an order that matters. The words of a sentence, the notes of a
song, the prices of a market and the samples of a voice are all sequences. Shuffle the words of a
sentence and the meaning is gone; play the notes of a song backwards and the tune is gone. A model of
a sequence must therefore read its input one step at a time and carry something forward from each
step to the next.

A feed forward network has no such memory. It sees a window of fixed width, and whatever falls
outside the window does not exist for it. It also learns a separate weight for every position in the
window, so a pattern that it has learned at the start of the window must be learned again at the end.
A recurrent network solves both problems with one idea: it keeps a hidden state, a vector of numbers
that summarises the past, and it updates that state with the same small cell at every step.

The cell is simple. It takes the current input and the previous state, multiplies each by a matrix,
adds a bias, and squashes the sum with a hyperbolic tangent. The result is the new state. The same
matrices are used at the first step and at the thousandth step, which is why the network can read a
sequence of any length and why what it learns about one position holds at every other position.

To train the network we unroll it. We draw one copy of the cell for every step of the sequence, wire
the state of each copy into the next, and obtain a deep feed forward network whose layers happen to
share their weights. The loss is a sum over the steps, and the gradient is found by backpropagation
through this unrolled graph. People call this backpropagation through time, but it is the same chain
rule as always. The only new thing is that a shared weight collects a gradient from every step, and
the gradient on a hidden state arrives from two places: from the loss at its own step and from the
state that follows it.

The unrolled network is deep, and depth has a price. The gradient that flows from a late step back
to an early one is multiplied, at every step on the way, by the recurrent matrix and by the slope of
the tangent. If these factors are small the gradient shrinks geometrically and the early steps learn
nothing; if they are large it grows geometrically and a single update can throw the weights far away.
The first problem is called the vanishing gradient and the second the exploding gradient. Clipping
the norm of the gradient tames the second. The first asked for a new cell, with gates that decide
what to keep and what to forget, and a memory that is carried forward by addition rather than by
repeated multiplication.

A recurrent network can be used in several shapes. It can read a whole sequence and give one answer
at the end, as when it decides whether a review is kind or unkind. It can give an answer at every
step, as when it tags each word of a sentence with its part of speech. It can start from a single
input and produce a sequence, as when it writes a caption for a picture or a melody from a first
note. And two networks can be joined, one reading a sentence in one language into a state and the
other writing that state out as a sentence in another language.

The simplest useful task is to predict the next character of a text. The network reads one character
at a time and outputs a score for every character that could come next. After training, we can ask
it to write: we feed it a first character, draw the next one from its scores, feed that back in, and
repeat. A temperature below one makes the drawing cautious and the text repetitive; a temperature
above one makes it bold and the text strange. Nothing in the network knows what a word is, yet after
a few minutes it puts spaces between words, closes its sentences with a full stop and spells the
common words of its text correctly. It has learned all of this from the order of the characters
alone.

This is the lesson of recurrent networks. A small cell, applied again and again, and trained with
nothing but the chain rule, can learn structure that spans many steps. Where it fails, it fails for
reasons that we can write down and measure, and the cures that followed, from careful initialisation
to gated cells and attention, were found by measuring those reasons. The chapters of this course
follow the same path: write the cell by hand, check its gradient against a numerical one, measure
where it breaks, and then build the cell that does not break.
"""


def course_text() -> str:
    """The course's own essay on recurrent networks (plain ASCII, about 4,500 characters)."""
    return _ESSAY


class CharVocab:
    """A character vocabulary: every distinct character of a text gets an integer id.

    Ids follow sorted character order, so the same text always gives the same vocabulary.

    - ``len(vocab)``: the number of characters; ``vocab.chars``: the characters in id order.
    - ``encode(text) -> np.ndarray`` of int64 ids; ``decode(ids) -> str`` (accepts a list, an array
      or a 1-D tensor).
    """

    def __init__(self, text: str):
        self.chars: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        try:
            return np.array([self.stoi[c] for c in text], dtype=np.int64)
        except KeyError as e:
            raise KeyError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return "".join(self.chars[int(i)] for i in ids)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"
