"""The "from scratch" rule, checked on the syntax tree of every code cell of the student's that runs.

A hidden-test module declares ``FORBIDDEN = {graded_name: ["torch.nn.LSTM", "torch._VF", ...]}``:
fully qualified names. A name the notebook uses matches an entry when it equals it or lies under
it (``torch._VF.lstm`` under ``torch._VF``); an entry ending in ``_`` or ``*`` is a prefix
(``torch.rnn_`` covers ``torch.rnn_tanh_cell``). Names are resolved through imports under any alias
(``import torch.nn as N``, ``from torch import nn``, ``from torch.nn import LSTM as L``, star
imports, ``X = torch.nn``), attribute chains, ``getattr``/``vars()``/``__dict__`` with constant
names, ``importlib.import_module``/``__import__`` with constant strings and ``sys.modules[...]``.
What cannot be resolved (``getattr`` on a forbidden module with a computed name, a computed import,
``exec``/``eval``/``compile``) is refused as such. Comments and strings never match: they are not in
the tree. The sandbox also replaces the forbidden names by guards before student code runs
(``autograder/sandbox/guards.py``); this check is the rule, and its message names the thing and the place.

Resolution alone misses an expression it cannot follow (``[torch][0]._VF``), so forbidden things are
also refused **by identifier**, wherever they hang (``identifiers``): an attribute, a ``getattr`` with a
constant name or a subscript with a constant string whose identifier is torch's own machinery
(``_VF``, ``_C``, ``ops``, ``lstm_cell``, ``clip_grad_norm_``, ...), or a way around the check
(``__import__``, ``__closure__``, ``gc``, ``ctypes``, ...). The student's own definitions stay free:
a name (``def clip_grad_norm_``, ``class LSTM``, ``lstm_cell(x, ...)``) is refused only when it
resolves to torch's, and an attribute on a method's own ``self``/``cls`` (``self.lstm``) is the
student's.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

# Entries written in the older shorthand of the hidden tests, mapped to qualified names.
_SHORTHAND = {"import torch": "torch", "from torch": "torch", "torch.": "torch", "nn.utils": "torch.nn.utils",
              "_VF": "torch._VF", "clip_grad_value_": "torch.nn.utils.clip_grad_value_",
              "clip_grad_norm_": "torch.nn.utils.clip_grad_norm_", "get_total_norm": "torch.nn.utils.get_total_norm",
              "clip_grads_with_norm_": "torch.nn.utils.clip_grads_with_norm_",
              "torch.lstm": "torch.lstm*", "torch.gru": "torch.gru*", "torch.rnn": "torch.rnn*"}
_DYNAMIC = {"__import__", "importlib", "import LSTM", "import GRU", "import RNN"}  # covered by resolution


def normalise(entry: str) -> str | None:
    e = entry.strip()
    if e in _DYNAMIC:
        return None
    if e in _SHORTHAND:
        return _SHORTHAND[e]
    if e.startswith("nn."):  # the shorthand was a substring: nn.LSTM also meant nn.LSTMCell
        return "torch." + e + ("*" if e.split(".")[-1][:1].isupper() else "")
    if e == "clip_grad":
        return "torch.nn.utils.clip_grad*"
    if e.startswith("F."):
        return "torch.nn.functional." + e[2:]
    return e.rstrip(".")


def matches(used: str, entry: str) -> bool:
    if entry.endswith(("_", "*")) and used.startswith(entry.rstrip("*")):
        return True
    return used == entry or used.startswith(entry + ".")


# ------------------------------------------------------------------- refusal by identifier
# Torch's recurrent kernels, as exposed by torch, torch._VF, torch._C._VariableFunctions, torch.ops.aten
# and torch._decomp (its Python versions): forbidden wherever one of those modules is.
KERNELS = frozenset({
    "lstm", "lstm_cell", "gru", "gru_cell", "rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell",
    "quantized_lstm", "quantized_gru", "quantized_lstm_cell", "quantized_gru_cell", "quantized_rnn_tanh_cell",
    "quantized_rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "mkldnn_rnn_layer",
    "_cudnn_rnn", "miopen_rnn", "lstm_impl", "gru_impl", "rnn_tanh_input", "rnn_relu_input", "one_layer_lstm",
    "one_layer_rnn", "lstm_data_impl", "_lstm_mps", "rnn_cell", "_VF", "_C", "_VariableFunctions",
    "_VariableFunctionsClass", "ops", "aten", "_decomp", "decompositions", "_refs", "_prims", "jit",
    "_jit_get_operation", "CompilationUnit", "_dynamo", "_jit_internal", "ao", "quantized", "quantizable",
    "import_ir_module", "import_ir_module_from_buffer", "_jit_script_compile"})
CLIPPING = frozenset({"clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
                      "clip_grads_with_norm_", "clip_grad", "_clip_grads_with_norm_", "_get_total_norm"})
LAYERS = frozenset({"LSTM", "LSTMCell", "GRU", "GRUCell", "RNN", "RNNCell", "RNNBase", "RNNCellBase"})
# Ways around a syntax check: computed imports, introspection of frames, closures and the heap, pickles.
ESCAPES = frozenset({
    "__import__", "import_module", "__builtins__", "builtins", "__dict__", "__closure__", "cell_contents",
    "__globals__", "__code__", "__func__", "__self__", "__wrapped__", "__subclasses__", "__getattribute__",
    "__reduce__", "__reduce_ex__", "__loader__", "__spec__", "f_back", "f_globals", "f_locals", "f_builtins",
    "f_code", "tb_frame", "gi_frame", "cr_frame", "ag_frame", "gi_code", "_getframe", "get_objects",
    "get_referents", "get_referrers", "attrgetter", "methodcaller", "getattr_static", "getclosurevars",
    "ctypes", "_ctypes", "pythonapi", "pickle", "_pickle", "cloudpickle", "dill", "marshal", "copyreg",
    "inspect", "gc", "modules", "resolve_name", "locate", "_original", "_vault", "setprofile", "settrace",
    "addaudithook", "find_spec", "module_from_spec", "exec_module", "load_module", "spec_from_file_location",
    "spec_from_loader", "SourceFileLoader", "_bootstrap", "_bootstrap_external", "run_path", "run_module"})
_INTERNAL = {"_VF", "_C", "_VariableFunctions", "_VariableFunctionsClass", "_decomp", "_refs", "_prims",
             "_jit_get_operation", "_dynamo"}  # no student's dict has these keys
_ESCAPE_NAMES = {"__import__", "__builtins__", "__loader__", "__spec__"}  # refused as bare names too
_MODULE_LASTS = {"rnn": LAYERS, "utils": CLIPPING, "clip_grad": CLIPPING}


def identifiers(entries: list[str]) -> frozenset:
    """The identifiers refused wherever they appear, for these (normalised) FORBIDDEN entries."""
    out: set = set()
    vocabulary = KERNELS | CLIPPING | LAYERS
    # torch's recurrent kernels stand behind _VF, _C and ops only where a recurrent layer is forbidden
    # (chapter 8 forbids _C for its attention kernels, and its decoder may use torch.nn.GRUCell)
    recurrent = any(e.rstrip("*").split(".")[-1] in LAYERS or ".modules.rnn" in e for e in entries)
    for e in entries:
        parts = e.rstrip("*").split(".")
        if parts[0] != "torch" or len(parts) == 1:  # all of torch: its import is refused, by resolution
            out |= ESCAPES
            continue
        if recurrent and any(p in ("_VF", "_C", "ops", "aten") for p in parts[1:]):
            out |= KERNELS
        last = parts[-1]
        if last in _MODULE_LASTS:
            out |= _MODULE_LASTS[last]
        elif e.endswith(("*", "_")):
            out |= {v for v in vocabulary if v.startswith(last)}
        else:
            out.add(last)
    return frozenset(out | ESCAPES) if out else frozenset()


def _str_const(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


@dataclass(frozen=True)
class Hit:
    cell: int  # the student's cell index (as in the notebook plan)
    line: int
    name: str  # the forbidden thing found, e.g. "torch.nn.LSTMCell" or "exec"
    entry: str  # the FORBIDDEN entry it matched ("" for what cannot be checked)

    def where(self, label: str) -> str:
        return f"{label}, line {self.line}"


class _Resolver(ast.NodeVisitor):
    def __init__(self, entries: list[str], aliases: dict, stars: list, idents: frozenset = frozenset(),
                 tainted: set | None = None):
        self.entries = entries
        self.idents = idents
        self.selves: set = set()  # names of a method's own self/cls in scope (their attributes are the student's)
        self.tainted = tainted if tainted is not None else set()  # names that may hold a forbidden module
        self.aliases = aliases  # local name -> qualified name (shared by every cell, as the kernel is)
        self.stars = stars  # modules star-imported
        self.found: list[tuple[int, str, str]] = []
        self.modules = {e.split(".")[0] for e in entries}

    # -- resolution
    def qual(self, node) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            for m in self.stars:
                cand = f"{m}.{node.id}"
                if any(matches(cand, e) for e in self.entries):
                    return cand
            return None
        if isinstance(node, ast.Attribute):
            if node.attr == "__dict__":
                return self.qual(node.value)
            base = self.qual(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else None
            if name == "getattr" and len(node.args) >= 2:
                base = self.qual(node.args[0])
                key = node.args[1]
                if base and isinstance(key, ast.Constant) and isinstance(key.value, str):
                    return f"{base}.{key.value}"
                return None
            if name == "vars" and len(node.args) == 1:
                return self.qual(node.args[0])
            if name == "__import__" and node.args and isinstance(node.args[0], ast.Constant):
                return str(node.args[0].value).split(".")[0]
            fq = self.qual(f)
            if fq == "importlib.import_module" and node.args and isinstance(node.args[0], ast.Constant):
                return str(node.args[0].value)
            return None
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                if self.qual(node.value) == "sys.modules":
                    return key.value
                if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                        and node.value.func.id == "vars" or isinstance(node.value, ast.Attribute) \
                        and node.value.attr == "__dict__":
                    base = self.qual(node.value)
                    return f"{base}.{key.value}" if base else None
        return None

    def report(self, node, used: str):
        for e in self.entries:
            if matches(used, e):
                self.found.append((getattr(node, "lineno", 0), used, e))
                return True
        return False

    def under_forbidden_module(self, q: str) -> bool:
        return any(e == q or e.startswith(q + ".") or matches(q, e) for e in self.entries)

    # -- refusal by identifier
    def module_ish(self, node) -> bool:
        """May this expression be (a container of) a module the entries forbid things under, reached
        in a way resolution does not follow ([torch][0], (sys,)[0].modules, T = [torch][0])?"""
        if isinstance(node, ast.Name):
            if node.id in self.tainted:
                return True
            q = self.qual(node)
            return bool(q) and (self.under_forbidden_module(q) or q.split(".")[0] in ("sys", "importlib", "builtins"))
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            return self.module_ish(node.value)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return any(self.module_ish(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return any(self.module_ish(v) for v in node.values if v is not None)
        if isinstance(node, ast.IfExp):
            return self.module_ish(node.body) or self.module_ish(node.orelse)
        if isinstance(node, ast.BoolOp):
            return any(self.module_ish(v) for v in node.values)
        if isinstance(node, ast.NamedExpr):
            return self.module_ish(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "getattr", "vars", "next", "iter", "list", "tuple", "dict", "reversed", "sorted", "max", "min"):
            return any(self.module_ish(a) for a in node.args)
        return False

    def refuse_ident(self, node, ident, shown: str) -> bool:
        if ident in self.idents:
            self.found.append((getattr(node, "lineno", 0), shown, ident))
            return True
        return False

    def on_self(self, node) -> bool:
        return isinstance(node, ast.Name) and node.id in self.selves

    def _function(self, node, is_method: bool):
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        a = node.args
        for d in a.defaults + [d for d in a.kw_defaults if d is not None]:
            self.visit(d)
        params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + \
                 [p.arg for p in (a.vararg, a.kwarg) if p is not None]
        saved = set(self.selves)
        self.selves -= set(params)
        positional = a.posonlyargs + a.args
        if is_method and positional and len(a.defaults) < len(positional):
            first = positional[0].arg
            body = node.body if isinstance(node.body, list) else [node.body]
            rebound = any(isinstance(n, ast.Name) and n.id == first and not isinstance(n.ctx, ast.Load)
                          or isinstance(n, (ast.Global, ast.Nonlocal)) and first in n.names
                          for b in body for n in ast.walk(b))
            if not rebound:
                self.selves.add(first)
        for b in (node.body if isinstance(node.body, list) else [node.body]):
            self.visit(b)
        self.selves = saved

    def visit_ClassDef(self, node):
        for n in node.bases + [k.value for k in node.keywords] + node.decorator_list:
            self.visit(n)
        saved = set(self.selves)
        for b in node.body:
            if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(b, True)
            else:
                self.visit(b)
        self.selves = saved

    def visit_FunctionDef(self, node):
        self._function(node, False)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._function(node, False)

    # -- visitors
    def visit_Import(self, node):
        for a in node.names:
            if not self.report(node, a.name):
                for p in a.name.split("."):
                    if self.refuse_ident(node, p, f"import {a.name}"):
                        break
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                top = a.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        if node.level:  # relative imports have no meaning in a notebook
            return
        for a in node.names:
            if a.name == "*":
                self.report(node, mod)
                self.stars.append(mod)
                continue
            q = f"{mod}.{a.name}"
            if not self.report(node, q):
                for p in mod.split(".") + [a.name]:
                    if self.refuse_ident(node, p, f"from {mod} import {a.name}"):
                        break
            self.aliases[a.asname or a.name] = q

    def visit_Assign(self, node):
        self.generic_visit(node)
        q = self.qual(node.value)
        taint = self.idents and not q and self.module_ish(node.value)
        for t in node.targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and taint:
                    self.tainted.add(n.id)
            if isinstance(t, ast.Name):
                if q:
                    self.aliases[t.id] = q
                else:
                    self.aliases.pop(t.id, None)

    def visit_Attribute(self, node):
        q = self.qual(node)
        if q and self.report(node, q):
            return
        if isinstance(node.ctx, ast.Load) and not self.on_self(node.value):
            if self.refuse_ident(node, node.attr, f".{node.attr}"):
                return
        self.generic_visit(node)

    def visit_Subscript(self, node):
        q = self.qual(node)
        if q and self.report(node, q):
            return
        key = _str_const(node.slice)
        # d["lstm"] on a name of the student's is its own; on anything else (vars(m), m.__dict__,
        # sys.modules, a call's result) the key is looked up in someone else's namespace.
        if key is not None and (not isinstance(node.value, ast.Name) or key in _INTERNAL or key in ESCAPES):
            if not self.on_self(node.value) and self.refuse_ident(node, key, f"[{key!r}]"):
                return
        self.generic_visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            q = self.qual(node)
            if q and q != node.id:
                self.report(node, q)
            elif node.id in ("exec", "eval", "compile") and self.entries:
                self.found.append((node.lineno, node.id, ""))
            elif node.id in _ESCAPE_NAMES and self.idents:
                self.found.append((node.lineno, node.id, node.id))

    def visit_Call(self, node):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else None
        fq = self.qual(f)
        if name in ("getattr", "hasattr") and len(node.args) >= 2:
            base = self.qual(node.args[0])
            key = node.args[1]
            if base and not (isinstance(key, ast.Constant) and isinstance(key.value, str)) \
                    and self.under_forbidden_module(base):
                self.found.append((node.lineno, f"getattr({base}, <computed name>)", ""))
            elif _str_const(key) is not None and not self.on_self(node.args[0]):
                self.refuse_ident(node, key.value, f"getattr(..., {key.value!r})")
            elif _str_const(key) is None and self.idents and not self.on_self(node.args[0]) \
                    and (self.module_ish(node.args[0]) or not isinstance(node.args[0], (ast.Name, ast.Attribute))):
                self.found.append((node.lineno, "getattr(<a module>, <computed name>)", ""))
        if (name == "__import__" or fq == "importlib.import_module") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self.report(node, arg.value)
            elif self.entries:
                self.found.append((node.lineno, f"{name or fq}(<computed name>)", ""))
        q = self.qual(node)
        if q and self.report(node, q):
            return
        self.generic_visit(node)


def check(cells: list[tuple[int, str]], entries: list[str]) -> list[Hit]:
    """Hits of ``entries`` in ``cells`` [(index, source)], in the order they run (one namespace).

    Cells with a negative index are the release's read-only cells: their imports count (a student
    may use the ``nn`` that the set-up cell imported), their own uses do not."""
    entries = sorted({n for n in (normalise(e) for e in entries) if n})
    if not entries:
        return []
    aliases: dict = {}
    stars: list = []
    hits: list[Hit] = []
    idents = identifiers(entries)
    tainted: set = set()
    for idx, src in cells:
        text = "\n".join(("pass" if l.lstrip().startswith(("%", "!")) else l) for l in src.splitlines())
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # it cannot run either; the cell's error is reported when it runs
        r = _Resolver(entries, aliases, stars, idents, tainted)
        try:
            r.visit(tree)
        except RecursionError:
            hits.append(Hit(idx, 1, "code nested too deeply to be checked", ""))
            continue
        if idx >= 0:
            hits += [Hit(idx, line, used, e) for line, used, e in r.found]
    return hits
