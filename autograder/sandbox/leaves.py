"""Cache repair's plumbing, on the student's side: the float leaves of a kept value (a cache) read out as
plain data, and plain values put back at their paths. Generic data walking: no course logic, no
reference number is computed here (``autograder/testkit/repair.py`` decides what to put where)."""
from __future__ import annotations


def leaves(root, limit=4096):
    """[[path, value]] for every float array, float and int (a size kept in a cache) inside a kept value (tuples, lists, str-keyed
    dicts, attributes of the notebook's own objects), a path being [["i", index] | ["k", key] |
    ["a", attribute], ...]. Generic data plumbing: no course logic."""
    import numpy as np

    out, seen = [], set()

    def walk(o, path, depth):
        if len(out) >= limit or depth > 12:
            return
        if type(o) is np.ndarray:
            if o.dtype.kind == "f":
                out.append([path, o])
            return
        if type(o) in (float, int):
            out.append([path, o])
            return
        if id(o) in seen:
            return
        if type(o) in (tuple, list):
            seen.add(id(o))
            for i, v in enumerate(o):
                walk(v, path + [["i", i]], depth + 1)
        elif type(o) is dict:
            seen.add(id(o))
            for k, v in list(o.items()):
                if type(k) is str:
                    walk(v, path + [["k", k]], depth + 1)
        elif getattr(type(o), "__module__", None) == "__main__" and not isinstance(o, type) and not callable(o):
            seen.add(id(o))
            d = getattr(o, "__dict__", None)
            if type(d) is dict:
                for k, v in list(d.items()):
                    if type(k) is str:
                        walk(v, path + [["a", k]], depth + 1)

    walk(root, [], 0)
    return out


def put(o, path, value):
    """``o`` with the value at ``path`` (as ``leaves`` gives it) replaced; tuples are rebuilt."""
    if not path:
        return value
    (kind, key), rest = path[0], path[1:]
    if kind == "i" and type(o) in (tuple, list):
        new = put(o[key], rest, value)
        if type(o) is list:
            o[key] = new
            return o
        return o[:key] + (new,) + o[key + 1:]
    if kind == "k" and type(o) is dict:
        o[key] = put(o[key], rest, value)
        return o
    if kind == "a":
        setattr(o, key, put(getattr(o, key), rest, value))
        return o
    raise ValueError("a path that does not lead to a value")
