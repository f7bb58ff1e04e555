"""Publishing: rnnlib as a package (a wheel that installs in a fresh environment), the setup cell of
every exercise notebook (tested as Colab would see it: only the wheel, no network), and the student
edition (nothing private in it or in the book built from it)."""
from __future__ import annotations

import html as htmlmod
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conftest import REPO
from test_leaks import MARKERS, _texts, hidden_test_lines, solution_lines

sys.path.insert(0, str(REPO / "tools"))
import student_edition as se  # noqa: E402

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]
EXERCISES = sorted(p.relative_to(REPO / "exercises") for p in (REPO / "exercises").glob("*/*.ipynb"))
EDITION_URL = "https://github.com/example-course/rnn-student-edition"


def _clean_env(**extra) -> dict:
    """No PYTHONPATH, no pip configuration of this machine: only what the test says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


# ----------------------------------------------------------------------------- the package
def test_pyproject_is_pep621_with_ranges_only():
    p = PYPROJECT["project"]
    assert p["name"] and "version" in p.get("dynamic", []) and p.get("requires-python")
    deps = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0]: d for d in p["dependencies"]}
    assert set(deps) == {"numpy", "torch", "matplotlib"}, deps
    assert not any("==" in d for d in deps.values()), f"no exact pins in the package: {deps}"
    assert PYPROJECT["tool"]["setuptools"]["packages"] == ["rnnlib"]


def test_makefile_installs_rnnlib_editable_without_pythonpath():
    mk = (REPO / "Makefile").read_text()
    assert "pip install" in mk and "-e ." in mk
    assert "PYTHONPATH" not in mk and not re.search(r"echo .*\.pth", mk), "no .pth file, no PYTHONPATH"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel` of a clean copy of the package (what `make wheel` runs), into a folder of its own."""
    root = tmp_path_factory.mktemp("wheelsrc")
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copytree(REPO / "rnnlib", root / "rnnlib", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(dist), str(root)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    whl = list(dist.glob("*.whl"))
    assert len(whl) == 1, whl
    version = se.package_version()
    assert whl[0].name.startswith(f"{DIST.replace('-', '_')}-{version}-py3-none-any"), whl[0].name
    return dist


@pytest.fixture(scope="session")
def colab(tmp_path_factory) -> Path:
    """A fresh venv that sees numpy, torch, matplotlib, scikit-learn and Jupyter as preinstalled (Colab's
    image has them), and not rnnlib. Returns the venv's python."""
    venv = tmp_path_factory.mktemp("colab") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site_dir = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    # The venv's own old setuptools would shadow the preinstalled one that torch's metadata asks for.
    subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "setuptools"], env=_clean_env(), timeout=300)
    # Colab's preinstalled packages: this environment's, minus any trace of rnnlib (an editable install
    # of it by `make venv`, or the old .pth), linked into a folder of their own.
    pre = venv.parent / "preinstalled"
    pre.mkdir()
    for e in Path(sysconfig.get_paths()["purelib"]).iterdir():
        n = e.name.lower().replace("-", "_")
        if "rnn_from_scratch" in n or "rnn_course" in n or n.startswith("__editable__") or n == "rnnlib":
            continue
        (pre / e.name).symlink_to(e)
    Path(site_dir, "colab_preinstalled.pth").write_text(f"{pre}\n")
    r = subprocess.run([str(py), "-c", "import numpy, torch, matplotlib, sklearn, nbclient, ipykernel; import rnnlib"],
                       capture_output=True, text=True, env=_clean_env(), cwd=venv)
    assert "No module named 'rnnlib'" in r.stderr, "the simulated Colab must not see rnnlib before the setup cell"
    r = subprocess.run([str(py), "-m", "pip", "show", DIST], capture_output=True, text=True, env=_clean_env())
    assert r.returncode != 0, f"{DIST} is already installed where the simulated Colab can see it"
    return py


def test_wheel_installs_and_imports_in_a_fresh_venv(wheel, colab, tmp_path):
    env = _clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheel))
    r = subprocess.run([str(colab), "-m", "pip", "install", "-q", f"{DIST}=={se.package_version()}"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    try:
        r = subprocess.run([str(colab), "-c", "import rnnlib, rnnlib.testing, rnnlib.gradcheck, rnnlib.utils, "
                            "rnnlib.text, rnnlib.tasks; print(rnnlib.__version__, rnnlib.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        version, where = r.stdout.split()
        assert version == se.package_version() and str(colab.parent.parent) in where, r.stdout
    finally:
        subprocess.run([str(colab), "-m", "pip", "uninstall", "-q", "-y", DIST], env=env, timeout=300)


# ----------------------------------------------------------------------------- the setup cell
def _first_code_cell(path: Path) -> dict:
    return next(c for c in json.load(open(path))["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_every_notebook_opens_with_the_setup_cell(folder):
    expected = se.setup_cell_source()
    assert f'"{DIST}=={se.package_version()}"' in expected, "the setup cell pins the edition's version"
    for nb in sorted((REPO / folder).glob("*/*.ipynb")):
        c = _first_code_cell(nb)
        meta = c["metadata"]["nbgrader"]
        assert meta["grade_id"] == se.SETUP_ID and meta["locked"] and not meta["solution"] and not meta["grade"], nb
        assert "".join(c["source"]) == expected, (
            f"{nb.relative_to(REPO)}: setup cell out of date: run `python tools/student_edition.py setup-cells` "
            "and `make release`")


def test_setup_cell_installs_nothing_where_rnnlib_imports():
    """Where rnnlib imports (this checkout, the grader's sandbox) the cell never calls pip."""
    code = ("import subprocess\n"
            "def refuse(*a, **k): raise AssertionError('pip was called')\n"
            "subprocess.run = refuse\n" + se.setup_cell_source())
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"^rnnlib \S+, device cpu, 1 CPU thread\(s\)$", r.stdout, flags=re.M), r.stdout


def _answered(exercise: Path) -> dict:
    """The released notebook with every answer cell filled in from the reference (a finished student)."""
    nb = json.load(open(REPO / "exercises" / exercise))
    ref = {c["metadata"]["nbgrader"]["grade_id"]: c for c in json.load(open(REPO / "solutions" / exercise))["cells"]
           if c["cell_type"] == "code"}
    for c in nb["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if c["cell_type"] == "code" and c["metadata"]["nbgrader"].get("solution"):
            c["source"] = ref[gid]["source"]
    return nb


RUN_NOTEBOOKS = r"""
import os, sys, traceback, nbformat
from nbclient import NotebookClient
for path in sys.argv[1:]:  # each notebook in a fresh kernel of its own, from its own folder, as Colab runs it
    try:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": os.path.dirname(path)}}).execute()
        nbformat.write(nb, path)
    except Exception:
        open(path + ".failed", "w").write(traceback.format_exc())
"""


def _run_in_colab(exercises, wheel: Path, colab: Path, tmp_path: Path) -> dict:
    """The answered notebooks, each run from its own folder in a fresh kernel of the simulated Colab
    with only the wheel on a local index (no network), by ONE runner process (its start, nbclient's
    import, costs about 1 CPU-s): {exercise: the executed notebook, or why it failed}."""
    env = _clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheel), MPLBACKEND="Agg")
    paths = {}
    for exercise in exercises:
        folder = tmp_path / exercise.parent
        folder.mkdir(parents=True, exist_ok=True)
        paths[exercise] = folder / exercise.name
        paths[exercise].write_text(json.dumps(_answered(exercise)))
    runner = tmp_path / "run.py"
    runner.write_text(RUN_NOTEBOOKS)
    r = subprocess.run([str(colab), str(runner), *map(str, paths.values())], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=900 * len(paths))
    assert r.returncode == 0, f"the simulated Colab's runner failed:\n{r.stderr[-4000:]}"
    out = {}
    for exercise, path in paths.items():
        failed = path.with_name(path.name + ".failed")
        out[exercise] = (f"{exercise} failed in the simulated Colab:\n{failed.read_text()[-4000:]}"
                         if failed.exists() else json.load(open(path)))
    return out


def _check_run(exercise, got) -> None:
    """No cell raised, and the setup cell printed the edition's version."""
    assert not isinstance(got, str), got
    printed = "".join("".join(o.get("text", "")) for o in next(c for c in got["cells"] if c["cell_type"] == "code")
                      ["outputs"] if o.get("output_type") == "stream")
    assert f"rnnlib {se.package_version()}, device cpu" in printed, printed
    errors = [o for c in got["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[:1]


def _installed_in(colab: Path) -> list[Path]:
    """The package's dist-info folders in the simulated Colab's own site-packages (what `pip show` reads)."""
    site = Path(subprocess.run([str(colab), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    return sorted(site.glob(f"{DIST.replace('-', '_')}-*.dist-info"))


@pytest.fixture(scope="session")
def colab_runs(wheel, colab, tmp_path_factory) -> tuple:
    """Every exercise notebook, answered, run in a fresh simulated Colab (no rnnlib: the first notebook's
    setup cell installs it, the others find it), and then what `pip show` says and which dist-infos
    the notebooks' environment holds."""
    env = _clean_env()
    subprocess.run([str(colab), "-m", "pip", "uninstall", "-q", "-y", DIST], env=env, timeout=300,
                   capture_output=True)
    assert not _installed_in(colab)
    runs = _run_in_colab(EXERCISES, wheel, colab, tmp_path_factory.mktemp("colab-runs"))
    shown = subprocess.run([str(colab), "-m", "pip", "show", DIST], capture_output=True, text=True, env=env)
    return runs, [p.name for p in _installed_in(colab)], shown


def test_setup_cell_installs_the_wheel_into_the_notebooks_environment(colab, colab_runs):
    """A fresh Colab (no rnnlib): the first notebook's setup cell installs the package from the index into
    the notebook's own environment, and every cell then runs. Every exercise notebook opens with this
    same cell (test_every_notebook_opens_with_the_setup_cell), so one notebook tests the install for all."""
    runs, _, r = colab_runs
    _check_run(EXERCISES[0], runs[EXERCISES[0]])
    assert r.returncode == 0 and "Location: " + str(colab.parent.parent) in r.stdout, \
        "the setup cell did not install the package into the notebook's environment"
    assert f"Version: {se.package_version()}" in r.stdout, r.stdout


@pytest.mark.parametrize("exercise", EXERCISES, ids=str)
def test_exercise_notebook_runs_as_in_colab(exercise, colab_runs):
    """Every exercise notebook, answered, runs from its own folder in the simulated Colab."""
    runs, installed, _ = colab_runs
    _check_run(exercise, runs[exercise])
    assert installed == [f"{DIST.replace('-', '_')}-{se.package_version()}.dist-info"]


# ----------------------------------------------------------------------------- the student edition
@pytest.fixture(scope="session")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edition") / "rnn-student-edition"
    # The tool refuses to write inside the source tree except under _build/; a temp folder is fine.
    r = subprocess.run([sys.executable, str(REPO / "tools" / "student_edition.py"), "--out", str(out),
                        "--repository-url", EDITION_URL], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_edition_holds_only_public_paths(edition):
    top = sorted(p.name for p in edition.iterdir())
    assert top == sorted([".gitignore", "Makefile", "README.md", "_config.yml", "_toc.yml", "binder", "book",
                          "exercises", "pyproject.toml", "references.bib", "requirements.txt", "rnnlib"]), top
    for p in edition.rglob("*"):
        assert not set(p.relative_to(edition).parts) & se.PRIVATE_NAMES, p
    assert sorted(p.relative_to(edition / "exercises") for p in (edition / "exercises").glob("*/*.ipynb")) == EXERCISES
    req = (edition / "requirements.txt").read_text()
    assert "nbgrader" not in req and "pytest" not in req and "-e ." in req and "jupyter-book" in req


def test_edition_points_its_buttons_at_its_own_repository(edition):
    cfg = (edition / "_config.yml").read_text()
    assert re.search(rf"^repository:\s*\n\s+url: {re.escape(EDITION_URL)}\b", cfg, flags=re.M), cfg[:1500]
    src = se.source_repository_url()
    assert src and src not in cfg.replace(EDITION_URL, "")
    for p in (edition / "book").rglob("*.md"):
        assert src not in p.read_text(), f"{p.name} still links to the source repository"
    assert EDITION_URL in (edition / "README.md").read_text()


def test_edition_refuses_private_content(tmp_path):
    """The tool's own guard can fail: a marker planted in a public folder stops the build."""
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "x.md").write_text("### BEGIN SOLUTION\n")
    (tmp_path / "solutions").mkdir()
    with pytest.raises(SystemExit) as e:
        se.check_edition(tmp_path)
    assert "book/x.md" in str(e.value) and "private path solutions" in str(e.value)


def _scan(files, base: Path):
    sol, hidden = solution_lines(), hidden_test_lines()
    assert len(sol) > 20 and len(hidden) > 10
    n = 0
    for p, text in files:
        n += 1
        assert not MARKERS.search(text), f"{p.relative_to(base)} holds solution or hidden-test markers"
        hits = [s for s in sol if s in text] + [s for s in hidden if s in text]
        assert not hits, f"{p.relative_to(base)} contains solution or hidden-test text: {hits[:3]}"
    return n


def test_edition_has_no_solution_or_hidden_test_line(edition):
    files = [p for p in edition.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".md", ".py", ".yml", ".txt",
                                                                         ".toml", ".json", ".bib")]
    assert _scan(_texts(files), edition) > 30


@pytest.fixture(scope="session")
def edition_site(edition, built_book, tmp_path_factory) -> Path:
    """The book built from the edition alone, with the book's own command (rnnlib from the edition).
    After the course's own build (``built_book``), whose executed chapters it reuses (keyed by content)."""
    if os.environ.get("SKIP_BOOK"):
        pytest.skip("SKIP_BOOK is set")
    site = tmp_path_factory.mktemp("edition-site") / edition.name  # a copy: the edition itself stays as released
    shutil.copytree(edition, site)
    cache = REPO / "_build" / ".jupyter_cache"
    if cache.is_dir():  # reuse executed chapters of an earlier source build (keyed by content)
        shutil.copytree(cache, site / "_build" / ".jupyter_cache")
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-W", "-n", "--keep-going"],
                       cwd=site, capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, "the edition's book failed to build:\n" + (r.stdout + r.stderr)[-4000:]
    return site / "_build" / "html"


def test_edition_site_has_no_solution_or_hidden_test_line(edition_site):
    pages = [p for p in edition_site.rglob("*") if p.suffix in (".html", ".ipynb", ".md", ".txt", ".js")
             and "_static" not in p.parts]

    def texts():
        for p in pages:
            raw = p.read_text(errors="replace")
            yield p, " ".join(htmlmod.unescape(re.sub(r"<[^>]+>", "", raw)).split())

    assert _scan(texts(), edition_site) > 20


def test_edition_site_launches_exercise_notebooks_from_the_edition(edition_site):
    page = (edition_site / "exercises" / "ch04_lstm" / "lstm_torch.html").read_text()
    colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page)
    binder = re.findall(r'href="(https://mybinder\.org/[^"]+)"', page)
    assert colab and binder, "the exercise page has no Colab or Binder launch button"
    owner_repo = EDITION_URL.split("github.com/")[1]
    assert all(u.endswith(f"{owner_repo}/blob/main/exercises/ch04_lstm/lstm_torch.ipynb") for u in colab), colab
    assert all(owner_repo.replace("/", "%2F") in u or owner_repo in u for u in binder), binder
    assert EDITION_URL in page  # the repository button
    assert se.source_repository_url() not in page
    # A chapter page opens the chapter's exercise notebooks; every launch link of the edition's site opens
    # a runnable notebook of the edition.
    chapter = (edition_site / "book" / "ch04_lstm.html").read_text()
    assert f"{owner_repo}/blob/main/exercises/ch04_lstm/lstm_numpy.ipynb" in chapter
    assert not re.search(r'href="https://(colab|mybinder)[^"]+\.md"', chapter), "a launch button opens a .md page"
    assert check_launch_links(edition_site, edition_site.parent.parent) >= 2 * 2 * len(EXERCISES)


def test_binder_config_uses_the_cpu_build_of_torch():
    req = (REPO / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in req and re.search(r"^torch==[\d.]+\+cpu$", req, flags=re.M), req
    pinned = re.search(r"^torch==(\S+)$", (REPO / "requirements.txt").read_text(), flags=re.M).group(1)
    assert f"torch=={pinned}+cpu" in req, "Binder's torch follows requirements.txt's pin"
    post = (REPO / "binder" / "postBuild")
    assert os.access(post, os.X_OK) and "pip install" in post.read_text()


# ----------------------------------------------------------------------------- from a page to work
# What an import name is installed as (binder/requirements.txt names distributions).
IMPORT_TO_DIST = {"sklearn": "scikit-learn"}


def _imports(nb: dict) -> set[str]:
    import ast

    mods = set()
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        src = "\n".join(l for l in "".join(c["source"]).splitlines() if not l.lstrip().startswith(("%", "!")))
        for n in ast.walk(ast.parse(src)):
            if isinstance(n, ast.Import):
                mods |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                mods.add(n.module.split(".")[0])
    return mods


def _binder_dists() -> set[str]:
    return {re.split(r"[=<>!~\[ ;]", l.strip(), maxsplit=1)[0].lower()
            for l in (REPO / "binder" / "requirements.txt").read_text().splitlines()
            if l.strip() and not l.lstrip().startswith(("#", "-"))}


def launch_links(site: Path) -> dict[str, list[tuple[str, str]]]:
    """Every page's launch links, as (provider, path in the repository) pairs."""
    from urllib.parse import parse_qs, urlparse

    out = {}
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site).as_posix()
        if rel.startswith(("_static", "_sources", "_images")):
            continue
        links = []
        for href in re.findall(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)/[^"]+)"', page.read_text()):
            href = htmlmod.unescape(href)
            u = urlparse(href)
            if u.netloc == "mybinder.org":
                path = parse_qs(u.query)["urlpath"][0].split("lab/tree/", 1)[1]
                links.append(("binder", path))
            else:
                links.append(("colab", u.path.split("/blob/", 1)[1].split("/", 1)[1]))
        out[rel] = [(p, re.sub(r"^(\./)+", "", path)) for p, path in links]
    return out


def check_launch_links(site: Path, edition: Path) -> int:
    """Each launch link opens a notebook of the edition that runs: an exercise notebook (executed as in
    Colab by test_exercise_notebook_runs_as_in_colab), valid nbformat, whose imports Binder installs.
    A chapter page with exercises opens them; a page without exercises has no launch link."""
    import nbformat

    stdlib = set(sys.stdlib_module_names)
    dists = _binder_dists()
    chapters_with_exercises = {p.parent.name for p in EXERCISES}
    n = 0
    for page, links in launch_links(site).items():
        m = re.match(r"^book/(ch\w+)\.html$", page)
        if page.startswith("exercises/"):
            assert {p for _, p in links} == {page[:-len(".html")] + ".ipynb"}, (page, links)
        elif m and m.group(1) in chapters_with_exercises:
            want = {f"exercises/{e.as_posix()}" for e in EXERCISES if e.parent.name == m.group(1)}
            assert {p for _, p in links} == want, f"{page}: launch links {links}, expected the notebooks {want}"
        else:
            assert not links, f"{page} has no exercises but launch links {links}"
        for provider, path in links:
            assert {pr for pr, p in links if p == path} == {"colab", "binder"}, (page, path, links)
            target = edition / path
            assert target.suffix == ".ipynb" and target.is_file(), f"{page}: {provider} opens {path}, not in the edition"
            assert Path(path).relative_to("exercises") in EXERCISES
            nb = nbformat.read(target, as_version=4)
            nbformat.validate(nb)
            missing = {m for m in _imports(nb) - stdlib - {"rnnlib"} if IMPORT_TO_DIST.get(m, m) not in dists}
            assert not missing, f"{path} imports {missing}, which binder/requirements.txt does not install"
            n += 1
    return n


def test_launch_buttons_open_runnable_notebooks_of_the_edition(built_book, edition):
    assert check_launch_links(built_book, edition) >= 2 * 2 * len(EXERCISES)


def test_launch_targets_of_a_page():
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    import rnn_launch

    docs = {"book/ch04_lstm", "exercises/ch04_lstm/lstm_numpy", "exercises/ch04_lstm/lstm_torch",
            "exercises/ch04_lstmx/a", "book/ch08_attention", "book/intro"}
    assert rnn_launch.exercise_notebooks(docs, "book/ch04_lstm") == ["exercises/ch04_lstm/lstm_numpy",
                                                                     "exercises/ch04_lstm/lstm_torch"]
    assert rnn_launch.exercise_notebooks(docs, "book/ch08_attention") == []
    assert rnn_launch.exercise_notebooks(docs, "book/intro") == []
    assert rnn_launch.exercise_notebooks(docs, "exercises/ch04_lstm/lstm_torch") == ["exercises/ch04_lstm/lstm_torch"]


def test_setup_cell_says_what_to_do_when_the_package_is_not_on_the_index(colab, tmp_path):
    """Colab without the package on its index (not yet published, or an offline mirror): one line says
    what to run instead, no traceback."""
    empty = tmp_path / "empty-index"
    empty.mkdir()
    env = _clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(empty))
    subprocess.run([str(colab), "-m", "pip", "uninstall", "-q", "-y", DIST], env=env, timeout=300, capture_output=True)
    r = subprocess.run([str(colab), "-c", se.setup_cell_source()], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last == (f"{se.package_spec()} is not on your package index: run "
                    f"`%pip install git+{se.edition_repository()}` in a cell, then run this cell again"), r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_edition_readme_gives_the_site_each_exercise_and_the_true_python(edition):
    from importlib import metadata
    from packaging.specifiers import SpecifierSet

    readme = (edition / "README.md").read_text()
    owner, name = EDITION_URL.rsplit("/", 2)[-2:]
    assert f"<https://{owner}.github.io/{name}/>" in readme
    for ex in EXERCISES:
        rel = f"exercises/{ex.as_posix()}"
        assert f"(https://colab.research.google.com/github/{owner}/{name}/blob/main/{rel})" in readme, rel
        assert f"(https://mybinder.org/v2/gh/{owner}/{name}/main?urlpath=lab/tree/{rel})" in readme, rel
        assert f"(https://{owner}.github.io/{name}/{rel[:-len('.ipynb')]}.html)" in readme, rel
        assert (edition / rel).is_file()
    stated = re.search(r"Python 3\.(\d+) or later", readme)
    assert stated, "the README states the Python versions it supports"
    # Every pin of the edition's requirements, as installed here: its Requires-Python.
    specs = []
    for line in (edition / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m and (rp := metadata.metadata(m.group(1)).get("Requires-Python")):
            specs.append((m.group(1), SpecifierSet(rp)))
    minor = int(stated.group(1))
    assert all(f"3.{minor}.0" in s for _, s in specs), [(n, str(s)) for n, s in specs if f"3.{minor}.0" not in s]
    assert any(f"3.{minor - 1}.99" not in s for _, s in specs), f"Python 3.{minor - 1} would do too"
    # The edition's notebooks name the edition's repository in their fallback line.
    setup = "".join(_first_code_cell(edition / "exercises" / EXERCISES[0])["source"])
    assert f"git+{EDITION_URL}`" in setup
