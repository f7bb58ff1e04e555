"""Values that must live in the student's process (tensors with gradients, an iterator, a NumPy
generator), made without sending any code there: the engine's own operations and forwarders
(``sub.callback``) whose function runs here, on the trusted side."""
from __future__ import annotations

from autograder.core.api import Fail, Remote


def _identity(*values):
    return list(values)


def remote_tensors(sub, *tensors) -> list:
    """``tensors``: ``api.tensor(...)`` arguments; returns them as ``RemoteTensor`` handles (leaves of
    the student's process, e.g. to call ``backward`` on and read ``.grad`` from)."""
    ident = sub.callback(_identity, "ident")
    return list(sub.invoke(ident, *tensors))


def remote_list(sub, *remotes) -> Remote:
    """A list that lives in the student's process, holding ``remotes`` (handles), as one handle."""
    ident = sub.callback(_identity, "ident")
    return sub.invoke_keep(ident, "all", *remotes)


def remote_iterator(sub, *remotes) -> Remote:
    """An iterator over ``remotes`` in the student's process: it can be walked only once, like
    ``model.parameters()``."""
    it = sub.method(remote_list(sub, *remotes), "__iter__")
    if not isinstance(it, Remote):
        raise RuntimeError("the grader could not make an iterator in the student's process")
    return it


def mro_modules(sub, module) -> list[str]:
    """'module.qualname' of every class in the MRO of a remote module's type (read attribute by
    attribute: no code of ours runs there)."""
    cls = sub.getattr(module, "__class__")
    mro = sub.getattr(cls, "__mro__") if isinstance(cls, Remote) else None
    if not isinstance(mro, (tuple, list)):
        raise Fail("the module's class could not be inspected")
    out = []
    for c in mro[:50]:
        if not isinstance(c, Remote):
            continue
        mod, qual = sub.getattr(c, "__module__"), sub.getattr(c, "__qualname__")
        out.append(f"{mod}.{qual}")
    return out
