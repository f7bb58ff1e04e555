"""A PyTorch module judged over a one-edit correction of the student's OWN building block.

The torch notebooks build a module on another of the student's answers: ``LSTM`` and ``GRU`` on the
cell (both usually calling one helper, ``lstm_cell(...)``), ``AttentionDecoderStep`` on
``BahdanauAttention``. When that block raises, there is no composition over it to judge the module
by (``modules.composed_run``), and a correct module would lose every point for a bug that is not its
own. The counterpart of ``corrected.py`` for modules:

1. only when the module's check failed, the failure is not a released stub's NotImplementedError,
   and the block itself fails ITS check (``block_ok``: the block against the trusted reference, outputs
   and gradients, on the test's sizes and one probe of other sizes);
2. the student's process binds, one at a time, each one-edit variant of the block's method (the
   ``Class.method`` named here, or a notebook function it calls by name, ``lstm_cell``) IN PLACE of the
   function it edits (``Submission`` op ``bind``: a name and an edit number cross, never code;
   ``autograder/sandbox/variants.py``); a variant is accepted when, bound, the block passes its check;
3. with that binding in place, the module's check runs again against the trusted reference alone (the
   expected values are always torch.nn's or the reference's: a correction never helps a wrong loop);
   its message says it was judged with a corrected copy of the block, never which edit;
4. the binding is undone on the trusted side (``finally``) and, in case that request never arrives,
   by the student's process itself at the next test's first request (it carries the test's seed): a
   binding never outlives its test.

Limits as ``corrected.py``: at most ``MAX_TRIES`` variants and ``SECONDS`` per block and notebook;
the outcome is remembered per notebook (the edit found is tried first next time; none: not searched
again).
"""
from __future__ import annotations

import time
import weakref
from contextlib import contextmanager

from .checks import Fail
from .corrected import MAX_TRIES, SECONDS
from .repair import worth_probing

_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # notebook -> {key: (name, k) or None}


def note(block: str) -> str:
    return f"; judged with a corrected copy of your {block}, which is wrong on its own"


def _memo(sub) -> dict:
    try:
        return _MEMO.setdefault(sub._nb, {})
    except TypeError:  # a notebook object that cannot be weakly referred to: no memory
        return {}


def _bind(sub, name: str | None, k: int | None) -> None:
    """Edit ``k`` of ``name`` bound in place in the student's process; ``k`` None: the original back."""
    sub._req({"op": "bind", "name": name, "k": k}, (), None, "preparing a corrected copy")


def _errors():
    from autograder.core.engine import Missing, StudentError
    from autograder.sandbox.wire import ProtocolError

    return (Fail, Missing, StudentError, ProtocolError, TypeError, ValueError, IndexError, KeyError)


def _ok(block_ok) -> bool:
    try:
        block_ok()
        return True
    except _errors():
        return False


def _search(sub, names, block_ok):
    """(name, k) of the first variant that makes the block pass its check, or None."""
    start, tried = time.monotonic(), 0
    for name in names:
        try:
            n = int(sub.variant(name))
        except _errors():
            continue
        for k in range(n):
            if tried >= MAX_TRIES or time.monotonic() - start > SECONDS:
                return None
            tried += 1
            try:
                _bind(sub, name, k)
            except _errors():
                continue
            if _ok(block_ok):
                return name, k
    return None


@contextmanager
def corrected_binding(sub, key, names, block_ok):
    """Yields True while a one-edit variant that makes the block pass ``block_ok`` is bound in the
    student's process (False when there is none); the original is always back afterwards."""
    memo = _memo(sub)
    found = None
    try:
        if key in memo:
            hit = memo[key]
            if hit is not None:
                _bind(sub, *hit)
                found = hit if _ok(block_ok) else None
        else:
            memo[key] = None
            found = memo[key] = _search(sub, names, block_ok)
        yield found is not None
    finally:
        try:
            _bind(sub, None, None)
        except _errors():
            pass


def judge_corrected(sub, first: BaseException, key, names, block: str, block_ok, again) -> None:
    """After the module's check failed with ``first``: ``again(note)`` (the check, against the trusted
    reference alone) with a corrected copy of the block bound, when the block fails its own check and
    a one-edit variant passes it; else ``first`` is raised as it was."""
    if not worth_probing(first) or _ok(block_ok):  # a stub, or the block is right: the module's own failure
        raise first
    with corrected_binding(sub, key, names, block_ok) as ok:
        if not ok:
            raise first
        again(note(block))
