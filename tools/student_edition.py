"""The public student edition of the course, generated from this (private) source repository.

    python tools/student_edition.py [--out _build/student-edition] [--repository-url URL]
    python tools/student_edition.py setup-cells      # (re)write the setup cell of every solutions/ notebook

The edition holds what may be public and nothing else: the book's sources (``book/``, ``_toc.yml``,
``references.bib`` and a ``_config.yml`` whose repository and launch buttons point at the edition's own
repository), the released ``exercises/``, the course library ``rnnlib/`` with its ``pyproject.toml``,
``binder/``, a student README, requirements and a small Makefile. Never ``solutions/``, ``autograder/``
(engine and hidden tests), ``tests/``, ``tools/``, ``benchmarks/`` nor nbgrader's configuration: the
edition is built by copying an explicit list of public paths (an allow-list), then checked for
nbgrader's solution and hidden-test markers; ``tests/test_publish.py`` scans it and its built site for
every solution line and hidden-test line.

The edition's repository URL is a config value: ``--repository-url``, else ``EDITION_REPOSITORY`` in the
environment, else ``[tool.rnn-course.edition] repository`` in ``pyproject.toml``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# What the edition holds (relative to the repository root). Everything else stays private.
PUBLIC_DIRS = ("book", "exercises", "rnnlib", "binder")
PUBLIC_FILES = ("_toc.yml", "references.bib", "pyproject.toml")
# Never in the edition, even if a public folder came to hold one of them.
PRIVATE_NAMES = {"solutions", "autograder", "tests", "tools", "benchmarks", "nbgrader_config.py", ".nbgrader",
                 "submitted", "autograded", "feedback", "results", "authoring", "constraints.txt"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "_build", "*.egg-info", "build")
MARKERS = re.compile(r"BEGIN (SOLUTION|HIDDEN TESTS)|END (SOLUTION|HIDDEN TESTS)")
# Packages the course's source needs but a student or reader does not (grading, project tests).
SOURCE_ONLY = {"nbgrader", "distributed", "pytest", "pytest-xdist", "selenium"}

# ----------------------------------------------------------------------------- the setup cell
SETUP_ID = "install"


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def package_version() -> str:
    text = (REPO / "rnnlib" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, flags=re.M).group(1)


def package_spec() -> str:
    """What the setup cell installs: the edition's package, pinned to this version."""
    return f"{project()['project']['name']}=={package_version()}"


def setup_cell_source() -> str:
    return f'''\
# Setup (read-only). Where `rnnlib` already imports (your course folder, Binder, the grader) this installs
# nothing; elsewhere (Colab, a fresh Jupyter) it installs the course library, pinned to this edition.
# Then it picks the device and a few CPU threads: these small models only lose time to more.
import importlib.util, os, subprocess, sys

if importlib.util.find_spec("rnnlib") is None:
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{package_spec()}"]).returncode:
        raise SystemExit("{package_spec()} is not on your package index: run `%pip install git+{edition_repository()}` "
                         "in a cell, then run this cell again")
    importlib.invalidate_caches()
os.environ.setdefault("OMP_NUM_THREADS", str(min(4, max(1, (os.cpu_count() or 1) // 2))))
import torch
import rnnlib
from rnnlib.utils import get_device

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
print(f"rnnlib {{rnnlib.__version__}}, device {{get_device()}}, {{torch.get_num_threads()}} CPU thread(s)")'''


def setup_cell() -> dict:
    src = setup_cell_source()
    return {"cell_type": "code", "execution_count": None, "id": SETUP_ID,
            "metadata": {"nbgrader": {"grade": False, "grade_id": SETUP_ID, "locked": True, "schema_version": 3,
                                      "solution": False, "task": False}},
            "outputs": [], "source": src.splitlines(keepends=True)}


def write_setup_cells(notebooks=None) -> list[str]:
    """Put the setup cell right under the title of every solutions/ notebook (idempotent)."""
    changed = []
    for path in notebooks or sorted((REPO / "solutions").glob("*/*.ipynb")):
        text = path.read_text()
        nb = json.loads(text)
        cells = nb["cells"]
        ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells]
        if SETUP_ID in ids:
            cells[ids.index(SETUP_ID)] = setup_cell()
        else:
            at = 1 if cells and cells[0]["cell_type"] == "markdown" else 0
            cells.insert(at, setup_cell())
        out = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if out != text:
            path.write_text(out)
            changed.append(str(path.relative_to(REPO)))
    return changed


# ----------------------------------------------------------------------------- the edition
def edition_repository(cli_value: str | None = None) -> str:
    url = cli_value or os.environ.get("EDITION_REPOSITORY") or \
        project().get("tool", {}).get("rnn-course", {}).get("edition", {}).get("repository")
    if not url or not re.match(r"^https://[\w.-]+/[\w.-]+/[\w.-]+$", url):
        raise SystemExit(f"student_edition: the edition's repository URL {url!r} is not of the form "
                         "https://host/owner/name")
    return url.rstrip("/")


def source_repository_url() -> str:
    m = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (REPO / "_config.yml").read_text(), flags=re.M)
    return m.group(1) if m else ""


def edition_config(url: str, branch: str) -> str:
    """The source's _config.yml with the repository (and so the launch buttons) set to the edition."""
    text = (REPO / "_config.yml").read_text()
    new, n = re.subn(r"^(repository:\s*\n\s+url:\s*)\S+(.*)$",
                     lambda m: m.group(1) + url + "  # the student edition (written by tools/student_edition.py)",
                     text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit("student_edition: _config.yml has no `repository: url:` to point at the edition")
    new = re.sub(r"^(\s+branch:\s*)\S+", lambda m: m.group(1) + branch, new, count=1, flags=re.M)
    # The book is the edition's root: launch links read blob/<branch>/exercises/..., not blob/<branch>/./...
    new = re.sub(r"^(\s+path_to_book:\s*)\.(?=\s|$)", lambda m: m.group(1) + '""', new, count=1, flags=re.M)
    return new


def student_requirements() -> str:
    lines = ["# The student edition's requirements: the book, JupyterLab and the course library (rnnlib).",
             "# GPU users: install the CUDA build of torch first (https://pytorch.org), then this file.",
             "# The CPU build on Linux: pip install -r requirements.txt "
             "--extra-index-url https://download.pytorch.org/whl/cpu"]
    for raw in (REPO / "requirements.txt").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        name = re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0].lower()
        if name in SOURCE_ONLY:
            continue
        lines.append(line)
    if not any(l.lower().startswith("jupyterlab") for l in lines):
        pin = re.search(r"^jupyterlab==\S+", (REPO / "constraints.txt").read_text(), flags=re.M)
        lines.append(pin.group(0) if pin else "jupyterlab")
    lines += ["# rnnlib, the course library (pyproject.toml), editable so that the book uses this checkout's copy", "-e ."]
    return "\n".join(lines) + "\n"


STUDENT_MAKEFILE = """\
# The student edition's commands (the course's source repository has its own, for instructors).
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: venv lab book
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
\ttest -x $(PY) || python3 -m venv $(VENV)
\t$(PY) -m pip install -q -r requirements.txt
\ttouch $@

lab: venv  ## open the exercises in JupyterLab
\tjupyter lab exercises/

book: venv  ## build the book into _build/html
\tjupyter-book build .
"""


def edition_site(url: str, site: str | None = None) -> str:
    """The published book's address: --site, else [tool.rnn-course.edition] site in pyproject.toml, else
    the GitHub Pages address of the edition's repository (https://owner.github.io/name/)."""
    site = site or project().get("tool", {}).get("rnn-course", {}).get("edition", {}).get("site")
    if not site:
        m = re.match(r"^https://github\.com/([\w.-]+)/([\w.-]+)$", url)
        site = f"https://{m.group(1).lower()}.github.io/{m.group(2)}/" if m else None
    return site.rstrip("/") + "/" if site else ""


def minimum_python(requirements: str) -> tuple[int, int]:
    """The oldest Python 3.x that every pinned requirement accepts, from the Requires-Python of the
    exact versions installed here (the course's environment holds the same pins)."""
    from importlib import metadata
    from packaging.specifiers import SpecifierSet

    specs = [SpecifierSet(project()["project"].get("requires-python", ""))]
    for line in requirements.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if not m:
            continue
        try:
            meta = metadata.metadata(m.group(1))
        except metadata.PackageNotFoundError:
            continue
        if meta.get("Requires-Python"):
            specs.append(SpecifierSet(meta["Requires-Python"]))
    for minor in range(8, 40):
        if all(f"3.{minor}.0" in s or f"3.{minor}.99" in s for s in specs):
            return 3, minor
    raise SystemExit("student_edition: no Python 3 version satisfies every pinned requirement")


def exercise_links(url: str, branch: str, site: str) -> str:
    """A table row per exercise notebook: its page in the book, and Colab and Binder links."""
    owner_repo = url.split("://", 1)[1].split("/", 1)[1]
    rows = ["| chapter | notebook | read | run |", "|---|---|---|---|"]
    for nb in sorted((REPO / "exercises").glob("*/*.ipynb")):
        rel = nb.relative_to(REPO).as_posix()
        page = f"[page]({site}{rel[:-len('.ipynb')]}.html)" if site else ""
        colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{rel}"
        binder = f"https://mybinder.org/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/{rel}"
        rows.append(f"| {nb.parent.name} | `{nb.name}` | {page} | [Colab]({colab}) · [Binder]({binder}) |")
    return "\n".join(rows)


def student_readme(url: str, site: str | None, branch: str = "main") -> str:
    name = url.rsplit("/", 1)[-1]
    site = edition_site(url, site)
    site_line = f"Read the book online: <{site}>.\n\n" if site else ""
    py = "%d.%d" % minimum_python(student_requirements())
    return f"""# Recurrent neural networks from scratch: the student edition

An open course that builds every recurrent network from its equations, in NumPy (forward and
backward by hand) and in PyTorch (modules from scratch). This repository holds the book, the
exercise notebooks and the small course library `rnnlib`; it is generated from the course's source.

{site_line}## Work on the exercises

- **In Colab or Binder:** open an exercise from the table below, or use the launch button (the
  rocket, top right) of a chapter page or an exercise page of the book. The notebook's first code
  cell installs the course library (`pip install {package_spec()}`) where it is missing, picks the
  device (a GPU when there is one) and a sensible number of CPU threads. Run it first. Where that
  version is not on your package index, the cell says so and what to run instead
  (`%pip install git+{url}`).
- **On your machine** (Python {py} or later: the pinned packages of `requirements.txt` need it):

  ```bash
  git clone {url} && cd {name}
  make venv && make lab        # or: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
  ```

  GPU users: install the CUDA build of PyTorch first (https://pytorch.org), then the requirements.

{exercise_links(url, branch, site)}

Each notebook has visible tests under each answer: run them as you go. Your instructor grades the same
functions with a hidden test suite (other shapes, float32 and float64, comparison with `torch.nn` and
with numerical gradients), so passing the visible tests is necessary, not sufficient. Submit the
notebook as your instructor asks (nbgrader, Gradescope or your course's site), under its own name.

## Build the book

```bash
pip install -r requirements.txt
jupyter-book build .          # executes every chapter; open _build/html/index.html
```

## What is here

| path | what |
|---|---|
| `book/` | the chapters (MyST markdown notebooks, executed when the book is built) |
| `exercises/<chapter>/` | the exercise notebooks |
| `rnnlib/` | the course library (`pip install {project()['project']['name']}`); it holds no answers |
| `binder/` | Binder's configuration (CPU build of PyTorch) |
"""


def _copy(src: Path, dst: Path):
    if src.is_dir():
        shutil.copytree(src, dst, ignore=IGNORED)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def build_edition(out: Path, url: str, branch: str = "main", site: str | None = None) -> Path:
    out = Path(out).resolve()
    if out == REPO or REPO in out.parents and out.relative_to(REPO).parts[0] != "_build":
        raise SystemExit(f"student_edition: refusing to write into the source tree at {out} (use _build/...)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for d in PUBLIC_DIRS:
        if (REPO / d).is_dir():
            _copy(REPO / d, out / d)
    for f in PUBLIC_FILES:
        _copy(REPO / f, out / f)
    (out / "_config.yml").write_text(edition_config(url, branch))
    (out / "requirements.txt").write_text(student_requirements())
    (out / "Makefile").write_text(STUDENT_MAKEFILE)
    (out / "README.md").write_text(student_readme(url, site, branch))
    (out / ".gitignore").write_text(".venv/\n_build/\n__pycache__/\n*.pyc\n.ipynb_checkpoints/\n*.egg-info/\nbuild/\n")
    # Links to the source repository (clone instructions in the book) become links to the edition.
    # The setup cells' fallback (`pip install git+...`) names the configured edition repository: the
    # edition's notebooks name this edition's.
    src_url = source_repository_url()
    default_url = edition_repository()
    for old in {src_url, default_url} - {"", url}:
        for p in list((out / "book").rglob("*.md")) + list((out / "exercises").rglob("*.ipynb")) + [out / "README.md"]:
            t = p.read_text()
            if old in t:
                p.write_text(t.replace(old, url))
    check_edition(out)
    return out


def check_edition(out: Path) -> None:
    """Refuse an edition holding a private path, a solution or hidden-test marker, or a graded answer cell."""
    problems = []
    for p in out.rglob("*"):
        rel = p.relative_to(out)
        if rel.parts[0] == "_build":
            continue
        if set(rel.parts) & PRIVATE_NAMES:
            problems.append(f"private path {rel}")
            continue
        if p.is_file() and p.suffix in (".md", ".py", ".ipynb", ".yml", ".txt", ".toml", ".json", ".cfg"):
            if MARKERS.search(p.read_text(errors="replace")):
                problems.append(f"solution or hidden-test markers in {rel}")
    if problems:
        raise SystemExit("student_edition: the edition is not public-safe:\n  " + "\n  ".join(problems))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", nargs="?", default="build", choices=["build", "setup-cells"])
    ap.add_argument("--out", type=Path, default=REPO / "_build" / "student-edition")
    ap.add_argument("--repository-url", help="the edition's public repository (launch and repository buttons)")
    ap.add_argument("--branch", default="main", help="the edition repository's branch (launch buttons)")
    ap.add_argument("--site", help="the published book's address, for the student README")
    a = ap.parse_args(argv)
    if a.command == "setup-cells":
        changed = write_setup_cells()
        print(f"setup cell ({package_spec()}) written in {len(changed)} notebook(s); now run `make release`")
        for c in changed:
            print("  ", c)
        return 0
    url = edition_repository(a.repository_url)
    out = build_edition(a.out, url, a.branch, a.site)
    n = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"student edition: {n} files in {out} (repository {url}); build its book with "
          f"`cd {out} && jupyter-book build .`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
