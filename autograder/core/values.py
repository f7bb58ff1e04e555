"""The trusted side's codec of the values a hidden test exchanges with the student's process: arguments
out as plain data (``encode_args``: arrays, tensors to make, handles), replies in, decoded strictly
(``decode_reply``: plain data, ``RemoteTensor`` for tensors, ``Remote`` handles for anything else).
Part of the hidden tests' API (re-exported by ``api``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sandbox.wire import MAX_STRING, ProtocolError, array_to_bytes, bytes_to_array


@dataclass(frozen=True)
class Remote:
    """An object that lives in the student's process (a cache, a module...)."""

    handle: int
    type: str


@dataclass(frozen=True)
class RemoteTensor:
    """A torch.Tensor that lives in the student's process, with a copy of its values."""

    array: np.ndarray
    dtype: str
    device: str
    requires_grad: bool
    handle: int
    cls: str = "Tensor"

    @property
    def shape(self):
        return self.array.shape


@dataclass(frozen=True)
class TensorIn:
    """An argument that the student's process receives as a torch.Tensor."""

    array: np.ndarray
    requires_grad: bool = False
    device: str = "cpu"


def tensor(array, requires_grad=False, device="cpu") -> TensorIn:
    return TensorIn(np.asarray(array), requires_grad, device)


class NotPlain:
    """A returned array of a subclass of np.ndarray: never accepted as an answer."""

    def __init__(self, cls, array):
        self.cls, self.array = cls, array

    def __repr__(self):
        return f"<{self.cls} (a subclass of numpy.ndarray)>"


def encode_args(obj, blobs):
    """Trusted values -> a value tree and .npy blobs, for the student's process."""
    if isinstance(obj, np.ndarray):
        blobs.append(array_to_bytes(obj))
        return {"t": "arr", "i": len(blobs) - 1}
    if isinstance(obj, TensorIn):
        blobs.append(array_to_bytes(obj.array))
        return {"t": "tensor_in", "i": len(blobs) - 1, "rg": obj.requires_grad, "device": obj.device}
    if isinstance(obj, (Remote, RemoteTensor)):
        return {"t": "handle", "h": obj.handle}
    if isinstance(obj, (tuple, list)):
        return {"t": type(obj).__name__, "v": [encode_args(v, blobs) for v in obj]}
    if isinstance(obj, dict):
        return {"t": "dict", "k": [str(k) for k in obj], "v": [encode_args(v, blobs) for v in obj.values()]}
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, (bool, np.bool_)):
        return {"t": "bool", "v": bool(obj)}
    if isinstance(obj, (int, np.integer)):
        return {"t": "int", "v": int(obj)}
    if isinstance(obj, (float, np.floating)):
        return {"t": "float", "v": float(obj)}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    raise TypeError(f"cannot send {type(obj).__name__} to the student's process")


def decode_reply(tree, blobs, depth=0):
    """Build trusted Python values from the student's reply. Strict: anything unexpected raises
    ProtocolError (the frame's size and depth were already bounded by ``wire.FrameReader``)."""
    try:
        return _decode(tree, blobs, depth)
    except ProtocolError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ProtocolError(f"a malformed value ({type(e).__name__})") from None


def _decode(tree, blobs, depth=0):
    if depth > 40:
        raise ProtocolError("a value nested too deeply")
    t = tree.get("t") if isinstance(tree, dict) else None
    if t == "arr":
        a = bytes_to_array(blobs[_int(tree["i"])])
        return NotPlain(_text(tree["cls"]), a) if "cls" in tree else a
    if t == "npscalar":
        return bytes_to_array(blobs[_int(tree["i"])])[()]
    if t == "tensor":
        return RemoteTensor(bytes_to_array(blobs[_int(tree["i"])]), _text(tree["dtype"]), _text(tree["device"]),
                            bool(tree["rg"]), _int(tree["h"]), _text(tree.get("cls", "Tensor")))
    if t in ("tuple", "list"):
        if not isinstance(tree["v"], list):
            raise ProtocolError("a malformed sequence")
        vals = [_decode(v, blobs, depth + 1) for v in tree["v"]]
        return tuple(vals) if t == "tuple" else vals
    if t == "dict":
        if not isinstance(tree["k"], list) or not isinstance(tree["v"], list) or len(tree["k"]) != len(tree["v"]):
            raise ProtocolError("a malformed dict")
        return {_text(k): _decode(v, blobs, depth + 1) for k, v in zip(tree["k"], tree["v"])}
    if t == "obj":
        return Remote(_int(tree["h"]), _text(tree["type"]))
    if t == "none":
        return None
    if t == "bool" and isinstance(tree["v"], bool):
        return tree["v"]
    if t == "int" and type(tree["v"]) is int:
        return _int(tree["v"])
    if t == "float" and type(tree["v"]) in (int, float):
        return float(tree["v"])
    if t == "str":
        return _text(tree["v"])
    raise ProtocolError("a malformed value")


def _int(v) -> int:
    if type(v) is not int or not -(2**63) <= v < 2**63:
        raise ProtocolError("a malformed number")
    return v


def _text(v) -> str:
    """A string from the student's side: short, and valid UTF-8 (lone surrogates replaced)."""
    if not isinstance(v, str):
        raise ProtocolError("a malformed string")
    return v[:MAX_STRING].encode("utf-8", "replace").decode("utf-8")
