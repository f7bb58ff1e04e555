"""Values crossing the child's data channel: the student's values out as plain data (numbers, strings,
arrays, tensors' values, tuples, lists, string-keyed dicts), anything else kept here behind a handle;
the trusted side's arguments in (plain data, tensors to make, handles it was given)."""
from __future__ import annotations

import sys

from .wire import MAX_STRING, array_to_bytes, bytes_to_array


class Kept:
    """A value the trusted side asked to keep here: it crosses back as a handle, never as data."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


class Handles(dict):
    """handle number -> the object it stands for, in this child only."""

    def __init__(self):
        super().__init__()
        self.next = 1

    def keep(self, obj) -> int:
        h = self.next
        self.next += 1
        self[h] = obj
        return h


def encode(obj, blobs: list, handles: Handles, depth: int = 0):
    """A value of the student's making -> a plain-data tree (arrays appended to ``blobs``)."""
    import numpy as np

    if type(obj) is Kept:
        return {"t": "obj", "h": handles.keep(obj.v), "type": type(obj.v).__name__[:100]}
    if depth > 16:
        return {"t": "obj", "h": handles.keep(obj), "type": "deeply nested value"}
    torch = sys.modules.get("torch")
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, (bool, np.bool_)) and type(obj) in (bool, np.bool_):
        return {"t": "bool", "v": bool(obj)}
    if type(obj) is int:
        if -(2**63) <= obj < 2**63:
            return {"t": "int", "v": obj}
        return {"t": "obj", "h": handles.keep(obj), "type": "int (too large)"}
    if type(obj) is float:
        return {"t": "float", "v": obj}
    if type(obj) is str:
        return {"t": "str", "v": obj[:MAX_STRING]}
    if isinstance(obj, np.ndarray):
        blobs.append(array_to_bytes(np.asarray(obj)))
        d = {"t": "arr", "i": len(blobs) - 1}
        if type(obj) is not np.ndarray:
            d["cls"] = type(obj).__name__[:100]
        return d
    if isinstance(obj, np.generic):
        blobs.append(array_to_bytes(np.asarray(obj)))
        return {"t": "npscalar", "i": len(blobs) - 1}
    if torch is not None and isinstance(obj, torch.Tensor):
        t = obj.detach()
        blobs.append(array_to_bytes(t.cpu().numpy()))
        return {"t": "tensor", "i": len(blobs) - 1, "dtype": str(t.dtype), "device": str(obj.device),
                "rg": bool(obj.requires_grad), "h": handles.keep(obj), "cls": type(obj).__name__[:100]}
    if type(obj) in (tuple, list):
        if len(obj) > 10_000:
            return {"t": "obj", "h": handles.keep(obj), "type": f"{type(obj).__name__} of {len(obj)} items"}
        return {"t": type(obj).__name__, "v": [encode(v, blobs, handles, depth + 1) for v in obj]}
    if isinstance(obj, dict) and all(type(k) is str for k in obj) and len(obj) <= 10_000:
        return {"t": "dict", "k": [k[:MAX_STRING] for k in obj.keys()],
                "v": [encode(v, blobs, handles, depth + 1) for v in obj.values()],
                "cls": type(obj).__name__[:100]}
    return {"t": "obj", "h": handles.keep(obj), "type": type(obj).__name__[:100]}


def decode(tree, blobs, handles: Handles):
    """Arguments from the trusted side: plain data, tensors to make, and handles."""
    t = tree["t"]
    if t == "arr":
        return bytes_to_array(blobs[tree["i"]]).copy()
    if t == "npscalar":
        return bytes_to_array(blobs[tree["i"]])[()]
    if t == "tensor_in":
        import torch

        x = torch.from_numpy(bytes_to_array(blobs[tree["i"]]).copy()).to(tree.get("device", "cpu"))
        return x.requires_grad_(tree.get("rg", False))
    if t == "handle":
        return handles[tree["h"]]
    if t in ("tuple", "list"):
        vals = [decode(v, blobs, handles) for v in tree["v"]]
        return tuple(vals) if t == "tuple" else vals
    if t == "dict":
        return {k: decode(v, blobs, handles) for k, v in zip(tree["k"], tree["v"])}
    if t == "none":
        return None
    return tree["v"]


def keep_parts(value, keep):
    """``keep``: None, "all", or the indices of a returned tuple/list to keep here as handles."""
    if keep is None:
        return value
    if keep == "all":
        return Kept(value)
    if isinstance(value, (tuple, list)):
        idx = {int(i) for i in keep}
        parts = [Kept(v) if i in idx else v for i, v in enumerate(value)]
        return parts if type(value) is list else tuple(parts)
    return value
