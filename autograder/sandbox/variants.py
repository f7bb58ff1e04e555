"""One-edit variants of a notebook's own function, on the student's side (cache repair's last resort,
``autograder/testkit/corrected.py``): the trusted side sends a function's NAME and the index of one edit
in an ordered list; the source is the notebook's own cell that defined that function (kept here when
the cell ran), parsed again here, edited once from a fixed catalogue of classic-mistake inversions
(``+``/``-``, ``*``/``@``, ``/``/``*``, ``.T`` added or dropped, an integer constant moved by one, a
comparison's bound, a minus, a reduction's ``dim``/``keepdim``, a matrix product lost from a sum, a
size's factor lost from a slice bound), and
compiled into a NEW function object under a fresh name, with the notebook's globals and the original's
defaults, bound to no name of the notebook. A function is a global of the notebook or a method of one
of its classes (``Class.method``, its ``super()`` closure kept). No source crosses, no course logic
lives here: pure ``ast``, generic over any function.

A variant is still only student code (their own, edited once): its result is used on the trusted side
only to NAME a cache's leaves against the reference's values (``testkit/repair.py``'s ``layout``), or,
bound IN PLACE of the function it edits until the trusted side or the next test's first request undoes
it (``Variants.bind``, op ``bind``), to judge a torch module over a corrected copy of the student's
block once that block, so corrected, passes its own checks (``testkit/corrected_modules.py``).
"""
from __future__ import annotations

import ast
import copy
import types

MAX_CANDIDATES = 200  # edits tried at most per function
BINOP = {ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.MatMult, ast.Div, ast.Pow),
         ast.MatMult: (ast.Mult,), ast.Div: (ast.Mult, ast.FloorDiv), ast.FloorDiv: (ast.Div,)}
COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
           ast.NotEq: ast.Eq}
PREFIX = "_grader_variant_"


REDUCE = {"sum", "max", "min", "mean", "prod", "argmax", "argmin", "cumsum", "concatenate", "stack", "squeeze",
          "expand_dims", "softmax", "log_softmax", "logsumexp", "cat", "chunk", "split", "flip", "any", "all"}
TORCH_DIM = {"cat", "chunk", "split", "softmax", "log_softmax", "flip"}


def _numbers(v):
    """The constants one edit away from ``v`` (an int or float literal)."""
    if v == 0:
        return [1, 2, 3, 4] if type(v) is int else [1.0]
    out = [v + 1]
    if v >= 1:
        out.append(v - 1)
    if type(v) is int:
        out.append(-v)
    return out


def _call_edits(node: ast.Call):
    """A reduction's forgotten ``keepdims=True`` or ``axis=`` (``dim=`` in torch's names)."""
    kws = {k.arg for k in node.keywords}
    out = []
    if kws & {"axis", "dim"} and not kws & {"keepdims", "keepdim"}:
        out.append(("kw", ("keepdim" if "dim" in kws else "keepdims", True)))
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if name in REDUCE and not kws & {"axis", "dim"} and len(node.args) <= (2 if name in ("chunk", "split") else 1):
        out += [("kw", ("dim" if name in TORCH_DIM else "axis", k)) for k in (-1, 0, 1)]
    return out


def edits(fdef: ast.FunctionDef) -> list[tuple[int, str, object]]:
    """[(node index in the body's walk, kind, argument)], in a fixed order, at most MAX_CANDIDATES."""
    out = []
    for i, node in enumerate(_walk(fdef)):
        if isinstance(node, (ast.Assign, ast.Return)) and node.value is not None:
            out.append((i, "negate", None))  # a sign lost on a whole value
        if isinstance(node, ast.Call):
            out += [(i, kind, arg) for kind, arg in _call_edits(node)]
        if isinstance(node, ast.Attribute) and node.attr == "inf":
            out.append((i, "neg_inf", None))
        if isinstance(node, ast.BinOp):
            out += [(i, "op", op) for op in BINOP.get(type(node.op), ())]
            if isinstance(node.op, ast.MatMult):
                out += [(i, "T", side) for side in ("left", "right") if not _is_t(getattr(node, side))]
        elif isinstance(node, ast.Attribute) and node.attr == "T":
            out.append((i, "dropT", None))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            out += [(i, "const", v) for v in _numbers(node.value)]
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
            out.append((i, "cmp", COMPARE[type(node.ops[0])]))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            out.append((i, "neg", None))
        if len(out) >= MAX_CANDIDATES:
            break
    if len(out) < MAX_CANDIDATES:  # after every other edit, so that theirs keep their numbers
        out += _product_edits(fdef)
        out += _slice_edits(fdef)
    return out[:MAX_CANDIDATES]


def _product_edits(fdef: ast.FunctionDef) -> list:
    """A matrix product lost from a sum or an assignment, put back: an operand of ``+``/``-``, or an
    assigned value, that is a parameter ``v`` becomes ``v @ W.T`` (``W`` another parameter, or a matrix
    the body transposes elsewhere); one that is ``W.T`` becomes ``p @ W.T`` (``p`` another parameter).
    ``self`` is never an operand."""
    a = fdef.args
    params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
    nodes = list(_walk(fdef))
    mats = {ast.dump(m): m for m in (ast.Name(id=p, ctx=ast.Load()) for p in params)}
    for n in nodes:
        if _is_t(n):
            mats.setdefault(ast.dump(n.value), n.value)
    out = []
    for i, node in enumerate(nodes):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            sides = ("left", "right")
        elif isinstance(node, ast.Assign):  # the whole value: ``fq = W_q.T`` for ``fq = q @ W_q.T``
            sides = ("value",)
        else:
            continue
        for side in sides:
            v = getattr(node, side)
            if isinstance(v, ast.Name) and v.id in params:
                out += [(i, "product", (side, "x", m)) for k, m in mats.items() if k != ast.dump(v)]
            elif _is_t(v):
                out += [(i, "product", (side, "w", p)) for p in params
                        if ast.dump(v.value) != ast.dump(ast.Name(id=p, ctx=ast.Load()))]
    return out


def _slice_edits(fdef: ast.FunctionDef) -> list:
    """A size's factor lost from a slice bound, put back: a bound that is a name ``H`` becomes ``k * H``
    (k = 2, 3, 4: ``a[:, H:H]`` for ``a[:, H:2 * H]``); one that is an integer ``k`` >= 1 becomes
    ``k * H``, for each name ``H`` that another slice bound of the body is or multiplies."""
    nodes = list(_walk(fdef))
    sizes = set()
    for n in nodes:
        for b in (n.lower, n.upper) if isinstance(n, ast.Slice) else ():
            parts = (b.left, b.right) if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Mult) else (b,)
            sizes |= {x.id for x in parts if isinstance(x, ast.Name)}
    out = []
    for i, n in enumerate(nodes):
        for side in ("lower", "upper") if isinstance(n, ast.Slice) else ():
            b = getattr(n, side)
            if isinstance(b, ast.Name):
                out += [(i, "slice", (side, k, b.id)) for k in (2, 3, 4)]
            elif isinstance(b, ast.Constant) and type(b.value) is int and b.value >= 1:
                out += [(i, "slice", (side, b.value, h)) for h in sorted(sizes)]
    return out


def _is_t(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "T"


def _walk(fdef):
    """The nodes of the function's body only (never its signature, defaults or decorators)."""
    for stmt in fdef.body:
        yield from ast.walk(stmt)


def edited(fdef: ast.FunctionDef, edit) -> ast.FunctionDef:
    """A copy of ``fdef`` with one edit (from ``edits``) applied."""
    i, kind, arg = edit
    new = copy.deepcopy(fdef)
    node = list(_walk(new))[i]
    if kind == "op":
        node.op = arg()
    elif kind == "T":
        setattr(node, arg, ast.Attribute(value=getattr(node, arg), attr="T", ctx=ast.Load()))
    elif kind == "const":
        node.value = arg
    elif kind == "cmp":
        node.ops = [arg()]
    elif kind == "negate":
        node.value = ast.UnaryOp(op=ast.USub(), operand=node.value)
    elif kind == "kw":
        node.keywords = node.keywords + [ast.keyword(arg=arg[0], value=ast.Constant(arg[1]))]
    elif kind == "neg_inf":
        _replace(new, node, ast.UnaryOp(op=ast.USub(), operand=node))
    elif kind == "product":  # see _product_edits
        side, mode, m = arg
        v = getattr(node, side)
        prod = (ast.BinOp(left=v, op=ast.MatMult(), right=ast.Attribute(value=copy.deepcopy(m), attr="T", ctx=ast.Load()))
                if mode == "x" else ast.BinOp(left=ast.Name(id=m, ctx=ast.Load()), op=ast.MatMult(), right=v))
        setattr(node, side, prod)
    elif kind == "slice":  # see _slice_edits
        side, k, name = arg
        setattr(node, side, ast.BinOp(left=ast.Constant(k), op=ast.Mult(), right=ast.Name(id=name, ctx=ast.Load())))
    else:  # "dropT", "neg": the node is replaced by its operand
        _replace(new, node, node.value if kind == "dropT" else node.operand)
    return ast.fix_missing_locations(new)


def _replace(fdef, node, repl) -> None:
    for parent in _walk(fdef):
        if parent is repl:
            continue
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, repl)
                return
            if isinstance(value, list) and any(v is node for v in value):
                value[[id(v) for v in value].index(id(node))] = repl
                return


class Variants:
    """The catalogue of one notebook's functions: the cells' texts by their names (``<cell 3>``), and
    for each function asked about, its edits and those of the notebook's functions it calls by name (a
    helper in its cell), computed once."""

    def __init__(self):
        self.cells: dict[str, str] = {}
        self._parsed: dict[str, tuple] = {}  # name -> (the function object, its FunctionDef, its edits)
        self._catalogue: dict[str, tuple] = {}  # name -> (the function object, [(target name, edit)])
        self.bound = None  # (owner, key, the original) while ``bind`` holds

    def keep_cell(self, name: str, text: str) -> None:
        self.cells[name] = text

    def _definition(self, ns: dict, name: str):
        fn = _resolve(ns, name)
        hit = self._parsed.get(name)
        if hit is not None and hit[0] is fn:
            return hit
        self._parsed.pop(name, None)
        if type(fn) is not types.FunctionType or fn.__globals__ is not ns or (
                fn.__closure__ and fn.__code__.co_freevars != ("__class__",)):  # a method's super() only
            raise LookupError(f"{name} is not a plain function of the notebook")
        code = fn.__code__
        text = self.cells.get(code.co_filename)
        if text is None:
            raise LookupError(f"no cell defined {name}")
        found = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef) and n.name == code.co_name
                 and n.lineno == code.co_firstlineno and not n.decorator_list]
        if len(found) != 1 or any(isinstance(n, (ast.While, ast.AsyncFunctionDef)) for n in _walk(found[0])):
            raise LookupError(f"{name}: no definition to vary")  # a while loop edited may never end
        fdef = found[0]
        fdef.args = _bare_args(fdef.args)
        fdef.returns = None
        hit = (fn, fdef, edits(fdef))
        self._parsed[name] = hit
        return hit

    def _edits_of(self, ns: dict, name: str):
        """[(target, edit)]: ``name``'s own edits, then those of each notebook function it calls by name."""
        fn = _resolve(ns, name)
        hit = self._catalogue.get(name)
        if hit is not None and hit[0] is fn:
            return hit[1]
        _, fdef, own = self._definition(ns, name)
        out = [(name, e) for e in own]
        called = sorted({n.id for n in _walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - {name})
        for helper in called:
            if len(out) >= MAX_CANDIDATES:
                break
            try:
                out += [(helper, e) for e in self._definition(ns, helper)[2]]
            except (LookupError, SyntaxError, RecursionError, ValueError):
                continue
        out = out[:MAX_CANDIDATES]
        self._catalogue[name] = (fn, out)
        return out

    def count(self, ns: dict, name: str) -> int:
        """How many edits there are of ``name`` (0: none, or no definition that can be varied)."""
        try:
            return len(self._edits_of(ns, name))
        except (LookupError, SyntaxError, RecursionError, ValueError):
            return 0

    def make(self, ns: dict, name: str, k: int):
        """The function ``name`` with its edit number ``k``: a new function object, bound to no name of the
        notebook. An edit of a helper it calls: ``name``'s own code over a COPY of the notebook's globals
        in which that helper's name is the edited helper (the notebook's own names are untouched)."""
        cands = self._edits_of(ns, name)
        if not 0 <= k < len(cands):
            raise IndexError("no such edit")
        target, edit = cands[k]
        if target == name:
            return self._build(ns, name, edit, ns, k)
        scope = dict(ns)
        scope[target] = self._build(ns, target, edit, scope, k)
        fn = _resolve(ns, name)
        out = types.FunctionType(fn.__code__, scope, f"{PREFIX}{k}", fn.__defaults__, fn.__closure__)
        out.__kwdefaults__ = fn.__kwdefaults__
        return out

    def bind(self, ns: dict, name: str, k: int) -> None:
        """Edit number ``k`` of ``name``'s catalogue, bound IN PLACE of the function it edits (``name``
        itself or a notebook function it calls; ``Class.method`` on its class), until ``restore``: the
        student's own code edited once, seen by every caller of that name (a sequence module judged
        with a corrected copy of its cell, ``testkit/corrected_modules.py``). One binding at a time."""
        self.restore(ns)
        cands = self._edits_of(ns, name)
        if not 0 <= k < len(cands):
            raise IndexError("no such edit")
        target, edit = cands[k]
        new = self._build(ns, target, edit, ns, k)
        owner, attr = _owner(ns, target)
        self.bound = (owner, attr, owner[attr] if owner is ns else vars(owner)[attr])
        if owner is ns:
            ns[attr] = new
        else:
            setattr(owner, attr, new)

    def restore(self, ns: dict) -> None:
        """Undo ``bind`` (nothing when nothing is bound): the notebook's own function is back."""
        bound, self.bound = self.bound, None
        if bound is not None:
            owner, attr, original = bound
            if owner is ns:
                ns[attr] = original
            else:
                setattr(owner, attr, original)

    def _build(self, ns: dict, name: str, edit, scope: dict, k: int):
        fn, fdef, _ = self._definition(ns, name)
        new = edited(fdef, edit)
        new.name = f"{PREFIX}{k}"
        body = [new]
        if fn.__closure__:  # a method that calls super(): compiled in a class body, closed over its class
            body = [ast.fix_missing_locations(ast.ClassDef(name=PREFIX, bases=[], keywords=[], body=body,
                                                           decorator_list=[], lineno=1, col_offset=0))]
        module = compile(ast.Module(body=body, type_ignores=[]), "<variant>", "exec")
        code = next(c for c in module.co_consts if isinstance(c, types.CodeType))
        if fn.__closure__:
            code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
            if code.co_freevars != fn.__code__.co_freevars:
                raise LookupError(f"{name}: no definition to vary")
        out = types.FunctionType(code, scope, new.name, fn.__defaults__, fn.__closure__)
        out.__kwdefaults__ = fn.__kwdefaults__
        return out


def _owner(ns: dict, name: str):
    """(where ``name`` lives, its key): the notebook's globals, or a class of the notebook (``C.m``)."""
    if "." not in name:
        return ns, name
    cls, attr = name.split(".", 1)
    owner = ns.get(cls)
    if not isinstance(owner, type) or "." in attr or attr not in vars(owner):
        raise LookupError(f"{name} is not a method of a class of the notebook")
    return owner, attr


def _resolve(ns: dict, name: str):
    """The function ``name`` names: a global of the notebook, or ``Class.method`` (a plain function
    defined in that class's body, not inherited)."""
    try:
        owner, attr = _owner(ns, name)
    except LookupError:
        return None
    return ns.get(attr) if owner is ns else vars(owner).get(attr)


def _bare_args(args: ast.arguments) -> ast.arguments:
    """The signature without annotations or default expressions (the original's values are used)."""
    args = copy.deepcopy(args)
    for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if a is not None:
            a.annotation = None
    args.defaults = [ast.Constant(None) for _ in args.defaults]
    args.kw_defaults = [None if d is None else ast.Constant(None) for d in args.kw_defaults]
    return args
