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
(``student_side._block``); this check is the rule, and its message names the thing and the place.
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


@dataclass(frozen=True)
class Hit:
    cell: int  # the student's cell index (as in the notebook plan)
    line: int
    name: str  # the forbidden thing found, e.g. "torch.nn.LSTMCell" or "exec"
    entry: str  # the FORBIDDEN entry it matched ("" for what cannot be checked)

    def where(self, label: str) -> str:
        return f"{label}, line {self.line}"


class _Resolver(ast.NodeVisitor):
    def __init__(self, entries: list[str], aliases: dict, stars: list):
        self.entries = entries
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

    # -- visitors
    def visit_Import(self, node):
        for a in node.names:
            self.report(node, a.name)
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
            self.report(node, q)
            self.aliases[a.asname or a.name] = q

    def visit_Assign(self, node):
        self.generic_visit(node)
        q = self.qual(node.value)
        for t in node.targets:
            if isinstance(t, ast.Name):
                if q:
                    self.aliases[t.id] = q
                else:
                    self.aliases.pop(t.id, None)

    def visit_Attribute(self, node):
        q = self.qual(node)
        if q and self.report(node, q):
            return
        self.generic_visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            q = self.qual(node)
            if q and q != node.id:
                self.report(node, q)
            elif node.id in ("exec", "eval", "compile") and self.entries:
                self.found.append((node.lineno, node.id, ""))

    visit_Subscript = visit_Attribute  # vars(torch.nn)["LSTM"], sys.modules["torch"]: resolved by qual()

    def visit_Call(self, node):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else None
        fq = self.qual(f)
        if name == "getattr" and len(node.args) >= 2:
            base = self.qual(node.args[0])
            key = node.args[1]
            if base and not (isinstance(key, ast.Constant) and isinstance(key.value, str)) \
                    and self.under_forbidden_module(base):
                self.found.append((node.lineno, f"getattr({base}, <computed name>)", ""))
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
    for idx, src in cells:
        text = "\n".join(("pass" if l.lstrip().startswith(("%", "!")) else l) for l in src.splitlines())
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # it cannot run either; the cell's error is reported when it runs
        r = _Resolver(entries, aliases, stars)
        try:
            r.visit(tree)
        except RecursionError:
            hits.append(Hit(idx, 1, "code nested too deeply to be checked", ""))
            continue
        if idx >= 0:
            hits += [Hit(idx, line, used, e) for line, used, e in r.found]
    return hits
