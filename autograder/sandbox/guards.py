"""Forbidden names, unusable at run time: the second line behind the static check of a notebook's
source (``autograder/core/policy.py``). Each forbidden dotted name (``torch.nn.LSTM``), and every
callable a forbidden module stands for (``torch._VF`` -> the recurrent kernels, wherever torch exposes
them), is replaced by a guard before student code runs; the ways around the guards (frames, closures,
the heap, ctypes) are refused to student code."""
from __future__ import annotations

import sys

from .names import (_AUDIT_FRAMES, _AUDIT_REFUSED, _CLIPPING, _DECOMP, _ELSEWHERE, _ESCAPES, _KERNELS,  # noqa: F401
                    _LAYERS, _NEVER_EXPOSE)

_EXPOSED = None  # {id(callable): [(module dict, key)]}, made once in the zygote by _block_prepare


def _exposures(ids):
    """[(module dict, key)] for every module attribute whose value's id is in ``ids``. The standard
    library and the big numeric packages never re-export torch's functions: skipped, for speed."""
    out = []
    skip = sys.stdlib_module_names
    for mname, m in list(sys.modules.items()):
        if mname.partition(".")[0] in skip or mname.startswith(_NEVER_EXPOSE):
            continue
        d = getattr(m, "__dict__", None)
        if type(d) is not dict:
            continue
        if any(id(v) in ids for v in list(d.values())):
            out += [(d, k) for k, v in list(d.items()) if id(v) in ids]
    return out


def _candidates() -> list:
    """Every callable that some FORBIDDEN list may guard (kernels, decompositions, clipping, elsewhere)."""
    import importlib

    torch = sys.modules.get("torch")
    if torch is None:
        return []
    out = [getattr(torch._C._VariableFunctions, n, None) for n in _KERNELS]
    for mod, ns in (("torch._decomp.decompositions", _DECOMP), ("torch.nn.utils.clip_grad", _CLIPPING)):
        try:
            m = importlib.import_module(mod)
            out += [getattr(m, n, None) for n in ns]
        except Exception:
            pass
    for dotted in ("torch._C._jit_get_operation",) + _ELSEWHERE:
        obj = torch
        for p in dotted.split(".")[1:]:
            obj = getattr(obj, p, None)
        out.append(obj)
    return [o for o in out if o is not None]


def _block_prepare() -> None:
    """In the zygote, after the imports: index where each candidate is exposed, so that each child's
    ``_block`` replaces them in a millisecond instead of scanning every module (~35 ms)."""
    global _EXPOSED
    cands = _candidates()
    index = {id(o): [] for o in cands}
    for d, k in _exposures(set(index)):
        index[id(d[k])].append((d, k))
    _EXPOSED = index


class _Blocked:
    """Stands where a forbidden name was: only a read-only cell of the release may call it or read from it.

    The original is not held here: it lives in the vault (``_block``), which hands it out only to the
    release's read-only cells, in the main thread, with no student code on the stack."""

    _vault = None  # set by _block: vault(op, key, arg) -> the original (context checked) / isinstance

    def __init__(self, name, original=None):
        object.__setattr__(self, "_name", name)
        if original is not None and _Blocked._vault is not None:
            _Blocked._vault("put", name, original)

    def _refuse(self):
        raise PermissionError(f"{self._name} is not allowed in this exercise: write it from scratch")

    def _get(self):
        fn = _Blocked._vault("get", self._name, None) if _Blocked._vault is not None else None
        if fn is None:
            self._refuse()
        return fn

    def __call__(self, *a, **k):
        return self._get()(*a, **k)

    def __getattr__(self, attr):
        return getattr(self._get(), attr)

    def __instancecheck__(self, obj):
        return bool(_Blocked._vault("isinstance", self._name, obj))

    def __subclasscheck__(self, cls):
        return bool(_Blocked._vault("issubclass", self._name, cls))

    def __mro_entries__(self, bases):
        self._refuse()  # subclassing the forbidden class is using it

    def __repr__(self):
        return f"<{self._name}: not allowed in this exercise>"


def _block(names) -> None:
    """Replace each forbidden dotted name (``torch.nn.LSTM``), and every callable that a forbidden module
    stands for (``torch._VF`` -> the recurrent kernels, wherever torch exposes them), by a guard, before
    student code runs; then refuse the ways around the guards (frames, closures, the heap, ctypes).

    Only the release's read-only cells may still use them. The static check of the notebook's source is
    the rule; this is the second line: a path that the check misses finds nothing to call."""
    import _thread

    names = list(names)
    if not names:
        return
    base, f = set(), sys._getframe(0)
    while f is not None:  # the child's own stack (the zygote may run as `python -c`: "<string>")
        base.add(id(f))
        f = f.f_back
    stack = _StackRules(base, _thread.get_ident())
    _open_vault(stack)
    wanted, installed = _guard_dotted(names)  # id(original) -> guard; dotted names replaced
    torch = sys.modules.get("torch")
    recurrent = any(n.split(".")[-1] in _LAYERS or n.endswith(".modules.rnn") for n in names)
    kernels = any((recurrent and n.startswith(("torch._VF", "torch._C", "torch.ops"))) or n.split(".")[-1] in _KERNELS
                  for n in names)  # (a chapter that allows torch.nn.GRUCell keeps its kernel)
    if torch is not None and kernels:
        _guard_kernels(torch, wanted)
    if torch is not None and any(n.startswith("torch.nn.utils") for n in names):
        _guard_clipping(wanted)
    _replace_exposures(wanted)
    if not wanted and not installed:
        return  # nothing is guarded (a numpy notebook: its FORBIDDEN is the syntax check's alone)
    _refuse_ways_around(stack)


_real_getattr, _real_vars, _real_isinstance, _real_issubclass = getattr, vars, isinstance, issubclass


def _StackRules(base: set, main: int):
    """Who is on the stack: ``foreign(frame)`` (code the student made), ``untrusted_on_stack(depth)``,
    ``read_only_context()`` (a release cell in the main thread, no student code on the stack),
    ``caller_untrusted()``; ``busy`` is set while they walk the stack (the audit hook stands aside).
    Closures, not an object: nothing here is reachable through an attribute."""
    import _thread

    getframe, get_ident = sys._getframe, _thread.get_ident
    busy = [False]

    def foreign(f):  # code the student made: its cells, and anything compiled from a string
        fn = f.f_code.co_filename
        return fn.startswith("<") and fn != "<read-only cell>" and not fn.startswith("<frozen ") \
            and id(f) not in base

    def untrusted_on_stack(depth):
        was, busy[0] = busy[0], True
        try:
            f = getframe(depth)
            while f is not None:
                if foreign(f):
                    return True
                f = f.f_back
            return False
        finally:
            busy[0] = was

    def read_only_context():  # the release's cell, in the main thread, no student code on the stack
        if get_ident() != main:
            return False
        f, ro = getframe(3), False
        while f is not None:
            if f.f_code.co_filename == "<read-only cell>":
                ro = True
            elif foreign(f):
                return False
            f = f.f_back
        return ro

    def caller_untrusted():
        was, busy[0] = busy[0], True
        try:
            return foreign(getframe(2))
        finally:
            busy[0] = was

    return foreign, untrusted_on_stack, read_only_context, caller_untrusted, busy


def _open_vault(stack) -> None:
    """The originals live in a generator's frame only (gi_frame is refused to student code)."""
    _, _, read_only_context, _, busy = stack
    real_isinstance, real_issubclass = _real_isinstance, _real_issubclass  # closed over: out of reach

    def vault_gen():
        table, reply = {}, None
        while True:
            op, key, arg = yield reply
            reply = None
            if op == "put":
                table.setdefault(key, arg)
            elif op == "get":
                busy[0] = True
                try:
                    ok = read_only_context()
                finally:
                    busy[0] = False
                reply = table.get(key) if ok else None
            elif op in ("isinstance", "issubclass") and real_isinstance(table.get(key), type):
                reply = (real_isinstance if op == "isinstance" else real_issubclass)(arg, table[key])

    gen = vault_gen()
    next(gen)
    send = gen.send
    _Blocked._vault = lambda op, key, arg: send((op, key, arg))


def _guard(dotted, original):
    return original if _real_isinstance(original, _Blocked) else _Blocked(dotted, original)


def _guard_dotted(names):
    """1. the dotted names themselves (classes and functions: torch.nn.LSTM, torch.lstm_cell, ...)."""
    import importlib

    wanted = {}  # id(original) -> guard, replaced wherever a module exposes it
    installed = []  # dotted names replaced by a guard
    for dotted in names:
        parts = dotted.split(".")
        for k in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:k]))
            except Exception:
                continue
            try:
                for p in parts[k:-1]:
                    obj = _real_getattr(obj, p)
                original = _real_getattr(obj, parts[-1])
            except Exception:
                break
            if isinstance(original, type(sys)) or original is None:
                break  # a module: what it stands for is guarded below
            try:
                g = _guard(dotted, original)
                setattr(obj, parts[-1], g)
                installed.append(dotted)
                if not isinstance(original, type):
                    wanted[id(original)] = g
            except Exception:
                pass
            break
    return wanted, installed


def _guard_kernels(torch, wanted) -> None:
    """2. what a forbidden module stands for: the recurrent kernels, their decompositions, aten's ops,
    torch._VF and torch._C's function table, and the other ways to a recurrent layer (_ELSEWHERE)."""
    import importlib

    vfi = torch._C._VariableFunctions
    for n in _KERNELS:
        fn = _real_getattr(vfi, n, None)
        if fn is not None:
            wanted.setdefault(id(fn), _guard(f"torch.{n}", fn))
    try:
        dec = importlib.import_module("torch._decomp.decompositions")
        for n in _DECOMP:
            fn = _real_getattr(dec, n, None)
            if callable(fn):
                wanted.setdefault(id(fn), _guard(f"torch._decomp.decompositions.{n}", fn))
    except Exception:
        pass
    try:
        aten = torch.ops.aten
        for n in _KERNELS:
            try:
                packet = _real_getattr(aten, n)
            except Exception:
                continue
            setattr(aten, n, _guard(f"torch.ops.aten.{n}", packet))
    except Exception:
        pass
    _guard_function_table(torch, vfi, wanted)
    for dotted in ("torch._C._jit_get_operation",) + _ELSEWHERE:
        obj = torch
        for p in dotted.split(".")[1:]:
            obj = _real_getattr(obj, p, None)
        if obj is not None and not _real_isinstance(obj, _Blocked):
            wanted.setdefault(id(obj), _guard(dotted, obj))


def _guard_function_table(torch, vfi, wanted) -> None:
    """torch._C._VariableFunctions (and torch._VF.vf) without the kernels: a proxy in its place."""
    real_getattr = _real_getattr  # closed over: a module global could be replaced by student code

    class _Functions:
        __slots__ = ()

        def __getattr__(self, attr):
            v = real_getattr(vfi, attr)
            return wanted.get(id(v), v) if attr in _KERNELS else v

    proxy = _Functions()
    vf_cls = type(vfi)
    for m in (torch._C, sys.modules.get("torch._VF")):
        for k, v in list(_real_vars(m).items()) if m is not None else ():
            if v is vfi or v is vf_cls:
                try:
                    setattr(m, k, proxy if v is vfi else _Blocked(f"torch._C.{k}", v))
                except Exception:
                    pass
    vfm = sys.modules.get("torch._VF")
    if vfm is not None:
        for n in _KERNELS:
            fn = _real_getattr(vfi, n, None)
            if fn is not None:
                setattr(vfm, n, wanted[id(fn)])


def _guard_clipping(wanted) -> None:
    import importlib

    try:
        cg = importlib.import_module("torch.nn.utils.clip_grad")
        for n in _CLIPPING:
            fn = _real_getattr(cg, n, None)
            if callable(fn) and not isinstance(fn, _Blocked):
                wanted.setdefault(id(fn), _guard(f"torch.nn.utils.{n}", fn))
    except Exception:
        pass


def _replace_exposures(wanted) -> None:
    """Every module that exposes one of them (torch.lstm_cell, torch._decomp..., torch.nn.utils.clip_grad...):
    from the zygote's index (``_block_prepare``) where it made one, else by a scan."""
    if _EXPOSED is not None and all(i in _EXPOSED for i in wanted):
        for i, g in wanted.items():
            for d, k in _EXPOSED[i]:
                if id(d.get(k)) == i:
                    d[k] = g
    else:
        for d, k in _exposures(set(wanted)):
            d[k] = wanted[id(d[k])]


def _refuse_ways_around(stack) -> None:
    """3. the ways around the guards: getattr/vars with computed names, frames, the heap, ctypes, pickles.
    Refused to student code itself (the caller), never to the libraries it calls: functools.wraps reads
    __dict__, inspect reads __code__ (torch.no_grad() as a decorator)."""
    import builtins

    _, untrusted_on_stack, _, _caller_untrusted, busy = stack
    getframe = sys._getframe
    real_getattr, real_vars, real_isinstance = _real_getattr, _real_vars, _real_isinstance

    def checked_getattr(obj, name, *default):
        if real_isinstance(name, str) and name in _ESCAPES and _caller_untrusted():
            raise PermissionError(f"getattr(..., {name!r}) is not allowed in this exercise")
        return real_getattr(obj, name, *default)

    def checked_vars(*obj):
        if not obj:  # vars() is the caller's locals
            return getframe(1).f_locals
        d = real_vars(*obj)
        if obj and _caller_untrusted():
            return {k: v for k, v in d.items() if k not in _ESCAPES and not real_isinstance(v, _Blocked)}
        return d

    builtins.getattr, builtins.vars = checked_getattr, checked_vars

    def audit(event, args):
        if busy[0]:
            return
        refuse = event in ("gc.get_objects", "gc.get_referents", "gc.get_referrers")
        if not refuse and event.startswith(_AUDIT_REFUSED):
            refuse = untrusted_on_stack(2)
        elif not refuse and (event == "sys._getframe" or event == "object.__getattr__" and len(args) > 1
                             and args[1] in _AUDIT_FRAMES):
            refuse = _caller_untrusted()
        if refuse:
            what = f"reading .{args[1]}" if event == "object.__getattr__" else event
            raise PermissionError(f"{what} is not allowed in this exercise")

    sys.addaudithook(audit)
