"""Fair credit by composition: a sequence function is judged on the student's own step functions.

The course's loop (trusted code, here) calls the student's step forward in their process once per
step, keeping each step's cache there as a handle (``sub.call_keep``); the student's sequence forward
must equal that loop. Their sequence backward, given the cache of their own sequence forward, must
equal the course's backward loop over their step backward fed with the caches their step forward
produced. A wrong step then costs nothing on the sequence function, and any cache layout works (a
cache never leaves the student's process).

When a step raises, is missing or returns something the loop cannot use, the test raises
``api.StepFallback``; the runner reruns it with the trusted steps of ``graded(..., fallback=...)``
standing in (they run on the trusted side), and here the loop calls those trusted steps directly.

A sequence function written without calling the steps (inlined) is also accepted when it equals the
trusted reference (``either``).
"""
from __future__ import annotations

import numpy as np

from autograder.core.api import Fail, StepFallback
from autograder.core.engine import Missing, StudentError
from autograder.sandbox.wire import ProtocolError

# kind: (step forward, step backward, number of state arrays)
SPECS = {"rnn": ("rnn_step_forward", "rnn_step_backward", 1),
         "lstm": ("lstm_step_forward", "lstm_step_backward", 2),
         "gru": ("gru_step_forward", "gru_step_backward", 1)}
KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _trusted(sub, name):
    return (getattr(sub, "_stand_ins", None) or {}).get(name)


def _call(sub, name, keep, *args):
    local = _trusted(sub, name)
    if local is not None:  # the fallback run: the trusted step, here
        return local(*args)
    try:
        return sub.call_keep(name, keep, *args) if keep is not None else sub.call(name, *args)
    except Missing as e:
        raise StepFallback(f"{name} is missing ({e})") from None
    except StudentError as e:
        raise StepFallback(f"your {name} raised {e}") from None
    except ProtocolError as e:
        raise StepFallback(f"your {name} returned {e}") from None


def _is_array(a, shape):
    return isinstance(a, np.ndarray) and a.shape == tuple(shape) and np.issubdtype(a.dtype, np.floating)


def seq_forward(sub, kind, x, state, params):
    """The course's loop over the student's step forward: (h (N, T, H), [cache per step])."""
    fwd, _, S = SPECS[kind]
    state = tuple(state)
    N, T = x.shape[:2]
    hs, caches = [], []
    for t in range(T):
        out = _call(sub, fwd, (S,), x[:, t], *state, params)
        if not isinstance(out, (tuple, list)) or len(out) != S + 1 or not all(
                _is_array(s, state[0].shape) for s in out[:S]):
            raise StepFallback(f"your {fwd} did not return {S} arrays of shape {state[0].shape} and a cache")
        state = tuple(out[:S])
        hs.append(state[0])
        caches.append(out[S])
    h = np.stack(hs, axis=1)
    _informative(fwd, h)
    return h, caches


def _informative(name, *arrays):
    """A composition of steps that return only zeros (or non-finite values) cannot judge anything:
    an answer of zeros would match it. Then the trusted steps judge instead (StepFallback)."""
    if all(not np.any(a) for a in arrays) or not all(np.all(np.isfinite(a)) for a in arrays):
        raise StepFallback(f"your {name} returns only zeros or non-finite values")


def seq_backward(sub, kind, dh, caches, x_shape, h_shape, carry=True, accumulate=True, reverse=True):
    """The course's backward loop over the student's step backward: (dx, [dstate0], grads). The
    keyword arguments reproduce the classic mistakes (for hints)."""
    _, bwd, S = SPECS[kind]
    N, T, D = x_shape
    dstate = [np.zeros(h_shape, dtype=dh.dtype) for _ in range(S)]
    dxs, grads = [None] * T, None
    for t in (reversed(range(T)) if reverse else range(T)):
        d = [dh[:, t] + (dstate[0] if carry else 0)] + [s if carry else np.zeros_like(s) for s in dstate[1:]]
        out = _call(sub, bwd, None, *d, caches[t])
        if not isinstance(out, (tuple, list)) or len(out) != S + 2 or not _is_array(out[0], (N, D)) or not all(
                _is_array(s, h_shape) for s in out[1:S + 1]):
            raise StepFallback(f"your {bwd} did not return dx, the state gradients and grads")
        g = out[S + 1]
        if not isinstance(g, dict) or sorted(g) != sorted(KEYS) or not all(isinstance(g[k], np.ndarray) for k in KEYS):
            raise StepFallback(f"your {bwd} did not return a grads dict with keys {sorted(KEYS)}")
        dxs[t], dstate = out[0], list(out[1:S + 1])
        if grads is None or not accumulate:
            grads = {k: np.array(g[k]) for k in KEYS}
        else:
            try:
                grads = {k: grads[k] + g[k] for k in KEYS}
            except ValueError:
                raise StepFallback(f"your {bwd} returned gradients of changing shapes") from None
    dx = np.stack(dxs, axis=1)
    _informative(bwd, dx, *grads.values())
    return dx, dstate, grads


def either(check_composed, check_reference):
    """Pass when the student's answer equals the composition over their own steps, or the trusted
    reference (a sequence function that does not call the steps); else the composition's failure."""
    try:
        check_composed()
    except Fail as first:
        try:
            check_reference()
        except Fail:
            raise first from None


def steps_match(sub, kind, composed, reference) -> bool:
    """Whether the composition equals the trusted reference (the student's steps are right here):
    then the composition's messages and the reference's hints say the same thing."""
    try:
        single = any(np.asarray(a).dtype == np.float32 for a in list(composed) + list(reference))
        rtol, atol = (1e-4, 1e-6) if single else (1e-6, 1e-9)  # float32's own rounding is not a mismatch
        return all(np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)
                   for a, b in zip(composed, reference))
    except Exception:  # noqa: BLE001 - shapes that differ: not a match
        return False
