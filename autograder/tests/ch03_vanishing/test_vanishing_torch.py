"""Hidden tests for solutions/ch03_vanishing/vanishing_torch.ipynb (book: ch03_vanishing).

The student's clip_grad_norm_ runs on tensors with gradients in their own process; the same
gradients are clipped here by torch.nn.utils.clip_grad_norm_ and compared.
"""
import numpy as np
import torch

from autograder.core.api import Fail, RemoteTensor, check_array, check_scalar, graded, tensor
from autograder.testkit.manifest import forbidden
from autograder.testkit.remote import remote_iterator, remote_tensors

FORBIDDEN = forbidden(__name__)  # {graded name: [names its answer may not use]}, from chapters.yml

SHAPES = [(3, 4), (4,), (2, 3, 2), (5, 1)]


def _setup(sub, rng, dtype=np.float64, scale=1.0, with_none=False):
    """Tensors with .grad set in the student's process, and trusted twins here."""
    values = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
    remote = remote_tensors(sub, *[tensor(v, requires_grad=True) for v in values])
    if not with_none:
        sub.backward(remote, grads)  # on leaves, backward with a given gradient sets .grad to it
    else:
        sub.backward(remote[:-1], grads[:-1])  # the last parameter has no gradient (.grad is None)
    twins = []
    for v, g in zip(values, grads):
        p = torch.tensor(v, requires_grad=True)
        p.grad = torch.tensor(g)
        twins.append(p)
    if with_none:
        twins[-1].grad = None
    return remote, twins


def _total(total, what):
    if isinstance(total, RemoteTensor):
        if total.array.size != 1:
            raise Fail(f"{what}: total_norm should be a scalar, got shape {total.shape}")
        return float(total.array.reshape(()))
    return total


def _compare(sub, remote, twins, total, rtotal, what, rtol=1e-9, atol=None):
    check_scalar(_total(total, what), float(rtotal), f"{what}: total_norm", rtol=rtol)
    for i, (r, p) in enumerate(zip(remote, twins)):
        g = sub.getattr(r, "grad")
        if p.grad is None:
            if g is not None:
                raise Fail(f"{what}: parameter {i} had no gradient and should keep none")
            continue
        if g is None:
            raise Fail(f"{what}: the gradient of parameter {i} is gone")
        check_array(g, p.grad.numpy(), f"{what}: clipped gradient of parameter {i} (shape {tuple(p.shape)}); "
                    "clip in place, every gradient by the same factor", atol=atol)


@graded("clip_grad_norm_", points=2)
def test_clip_grad_norm__parity(sub, rng):
    for max_norm in (0.5, 3.0):
        remote, twins = _setup(sub, rng)
        total = sub.call("clip_grad_norm_", remote, max_norm)
        rtotal = torch.nn.utils.clip_grad_norm_(twins, max_norm)
        _compare(sub, remote, twins, total, rtotal, f"clip_grad_norm_(params, {max_norm})")


@graded("clip_grad_norm_", points=1)
def test_clip_grad_norm__below_threshold(sub, rng):
    remote, twins = _setup(sub, rng, scale=0.05)
    total = sub.call("clip_grad_norm_", remote, 10.0)
    rtotal = torch.nn.utils.clip_grad_norm_(twins, 10.0)
    _compare(sub, remote, twins, total, rtotal, "clip_grad_norm_ below max_norm (never scale up)")


@graded("clip_grad_norm_", points=2)
def test_clip_grad_norm__generator(sub, rng):
    # model.parameters() is a generator: an answer that iterates it twice clips nothing.
    remote, twins = _setup(sub, rng, scale=2.0)
    gen = remote_iterator(sub, *remote)
    total = sub.call("clip_grad_norm_", gen, 1.0)
    rtotal = torch.nn.utils.clip_grad_norm_(iter(twins), 1.0)
    _compare(sub, remote, twins, total, rtotal, "clip_grad_norm_(model.parameters(), 1.0) with a generator "
             "(it can be iterated only once)")


@graded("clip_grad_norm_", points=1)
def test_clip_grad_norm__single_tensor_and_none(sub, rng):
    remote, twins = _setup(sub, rng, scale=2.0)
    total = sub.call("clip_grad_norm_", remote[2], 1.0)
    rtotal = torch.nn.utils.clip_grad_norm_(twins[2], 1.0)
    _compare(sub, remote[2:3], twins[2:3], total, rtotal, "clip_grad_norm_(one_tensor, 1.0)")
    remote, twins = _setup(sub, rng, scale=2.0, with_none=True)
    total = sub.call("clip_grad_norm_", remote, 1.0)
    rtotal = torch.nn.utils.clip_grad_norm_(twins, 1.0)
    _compare(sub, remote, twins, total, rtotal, "clip_grad_norm_ when a parameter's .grad is None (skip it)")


@graded("clip_grad_norm_", points=1)
def test_clip_grad_norm__tiny_and_no_grads(sub, rng):
    # A total norm comparable to the 1e-6 of max_norm / (total_norm + 1e-6): the epsilon shows.
    remote, twins = _setup(sub, rng, scale=1e-7)
    total = sub.call("clip_grad_norm_", remote, 1e-7)
    rtotal = torch.nn.utils.clip_grad_norm_(twins, 1e-7)
    _compare(sub, remote, twins, total, rtotal, "clip_grad_norm_ with a tiny norm (the factor is "
             "max_norm / (total_norm + 1e-6))", atol=1e-20)
    no_grads = remote_tensors(sub, *[tensor(np.ones(s), requires_grad=True) for s in SHAPES[:2]])
    total = sub.call("clip_grad_norm_", no_grads, 1.0)
    check_scalar(_total(total, "clip_grad_norm_"), 0.0, "clip_grad_norm_ when no parameter has a gradient: "
                 "total_norm")


@graded("clip_grad_norm_", points=2)
def test_clip_grad_norm__norm_types(sub, rng):
    for norm_type in (1.0, 3.0, float("inf")):
        remote, twins = _setup(sub, rng, scale=1.5)
        total = sub.call("clip_grad_norm_", remote, 0.7, norm_type)
        rtotal = torch.nn.utils.clip_grad_norm_(twins, 0.7, norm_type)
        _compare(sub, remote, twins, total, rtotal, f"clip_grad_norm_(params, 0.7, norm_type={norm_type})")


@graded("clip_grad_norm_", points=1)
def test_clip_grad_norm__float32(sub, rng):
    remote, twins = _setup(sub, rng, np.float32, scale=2.0)
    total = sub.call("clip_grad_norm_", remote, 1.0)
    rtotal = torch.nn.utils.clip_grad_norm_(twins, 1.0)
    _compare(sub, remote, twins, total, rtotal, "clip_grad_norm_ (float32 gradients)", rtol=1e-5)
    for i, r in enumerate(remote):
        g = sub.getattr(r, "grad")
        if g.dtype != "torch.float32":
            raise Fail(f"clip_grad_norm_: gradient {i} changed dtype to {g.dtype}; keep float32")
