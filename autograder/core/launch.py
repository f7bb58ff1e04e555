"""Starting the zygote (``autograder/sandbox/zygote.py``): inside bubblewrap when available, else a plain process.

The sandbox sees the Python installation and its site-packages (read-only), the course library
``rnnlib`` (read-only), a private /tmp, no network, its own PID namespace, and nothing of the
repository besides: not ``solutions/``, not ``autograder/``, not other students' files. Held-out data
(``HELD_OUT``) is replaced by its public part. Each child the zygote forks then enters namespaces of
its own (see ``autograder/sandbox/``).
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIDE = Path(__file__).resolve().parents[1] / "sandbox"  # the package that enters the sandbox, all of it
# Data files inside installed packages whose tail is a hidden test's held-out set: the sandbox sees
# only the first N rows (chapter 7 trains on digits[:1400] and is graded on the rest).
HELD_OUT = {("sklearn", "datasets/data/digits.csv.gz"): 1400}
VENV_NAMES = (".venv", "venv", ".env", "env")  # a virtual environment inside the repo may be exposed


def bwrap_path() -> str | None:
    if os.environ.get("AUTOGRADER_NO_BWRAP"):
        return None
    return shutil.which("bwrap")


_BWRAP_WORKS: dict[str, bool] = {}


def bwrap_usable() -> bool:
    """bwrap may be installed yet refused by the kernel (no user namespaces): try it once."""
    b = bwrap_path()
    if b is None:
        return False
    if b not in _BWRAP_WORKS:
        try:
            r = subprocess.run([b, *_bwrap_args(Path(tempfile.gettempdir())), "true"],
                               capture_output=True, timeout=20)
            _BWRAP_WORKS[b] = r.returncode == 0
        except Exception:
            _BWRAP_WORKS[b] = False
    return _BWRAP_WORKS[b]


PER_CHILD = {
    "root": "per notebook: own PID, mount, network and IPC namespaces, private /tmp, a fresh uid",
    "user": "per notebook: own user, PID, mount, network and IPC namespaces, private /tmp "
            "(one uid for all: run as root for a fresh uid per notebook)",
    "uid": "per notebook (no namespaces: a container): a fresh unprivileged uid with no_new_privs and a "
           "process limit, a private 0700 folder, every process of that uid killed and its files deleted "
           "before the results are accepted; the grader's code, hidden tests, release, submissions and "
           "results are root-only",
    "none": "per notebook: a process group only (no namespaces: a detached process can outlive it)",
}


def isolation_level(sandboxed: bool, ns_mode: str) -> str:
    """One word for results.json, the run's summary and the report:
    ``bubblewrap`` (the full sandbox), ``namespaces`` (no bubblewrap; per-notebook namespaces and, as
    root, a fresh uid; secrets root-only), ``container`` (root without namespaces: a fresh uid per
    notebook, secrets root-only), ``weak`` (the student's code can read what the grader's user can)."""
    if sandboxed:
        return "bubblewrap"
    if ns_mode == "root":
        return "namespaces"
    if ns_mode == "uid":
        return "container"
    return "weak"


def lock_secrets(extra=()) -> list[str]:
    """Without bubblewrap, as root: make everything secret root-only before any student code runs,
    whatever the files' modes were: every entry of the repository but its virtual environment and
    ``rnnlib`` (the grader's code, hidden tests, testkit, solutions, release, .git), and ``extra`` (the
    submissions, the results folder, a platform's metadata). ``_build`` (the built book, the environments
    the tests build) stays as it is. The repository itself stays traversable
    (0711: the interpreter in its .venv is reached by path, nothing is listed). Returns what it locked."""
    if os.geteuid() != 0:
        return []
    locked = []
    keep = set(VENV_NAMES) | {"rnnlib", "_build"}  # _build: the built book and other public build output
    roots = [os.path.realpath(r) for r in _python_roots()]
    for entry in sorted(REPO.iterdir()):
        if entry.name in keep or entry.is_symlink():
            continue
        rp = os.path.realpath(entry)
        if any((r + "/").startswith(rp + "/") for r in roots):
            continue  # the interpreter lives there
        locked += _lock(entry)
    try:
        os.chmod(REPO, os.stat(REPO).st_mode & 0o7711)
    except OSError:
        pass
    for p in extra:
        locked += _lock(Path(p))
    return locked


def _lock(p: Path) -> list[str]:
    try:
        st = os.lstat(p)
    except OSError:
        return []
    import stat

    if stat.S_ISLNK(st.st_mode):
        return []
    mode = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
    try:
        os.chown(p, 0, 0)
        os.chmod(p, mode)
    except OSError:
        return []
    return [str(p)]


_EXTRA_SECRETS: list[str] = []


def add_secret_paths(*paths) -> None:
    """Paths a run adds to the root-only set (its submissions and results folders)."""
    _EXTRA_SECRETS.extend(str(p) for p in paths if p)


def isolation_description(ns_mode: str | None = None) -> str:
    child = f"; {PER_CHILD[ns_mode]}" if ns_mode else ""
    if bwrap_usable():
        return ("bubblewrap (no network, read-only system, no repository access, held-out data hidden)"
                + child)
    why = "not installed" if bwrap_path() is None else "installed but refused by this kernel"
    if os.geteuid() == 0:
        return (f"no bubblewrap ({why}): as root, each notebook still gets what this kernel allows (namespaces "
                "and a fresh uid, or in a container a fresh uid alone), and the grader's files are made "
                "root-only" + child)
    return (f"WEAK: bubblewrap {why}; student code runs as a plain subprocess with resource limits "
            "only (it can read files this user can read). Install bubblewrap (apt-get install bubblewrap)"
            + child)


def unreadable_parent(path: str) -> str | None:
    """The first folder on ``path``'s way that an unprivileged user cannot enter, or None."""
    p = Path(os.path.realpath(path))
    for d in reversed(p.parents):
        try:
            if not os.stat(d).st_mode & 0o001:
                return str(d)
        except OSError:
            return str(d)
    return None


def _python_roots() -> list[str]:
    """Directories the interpreter needs: prefixes and every site-packages, outside the repo."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for p in site.getsitepackages() + [site.getusersitepackages()]:
        roots.add(p)
    real = {os.path.realpath(sys.executable)}
    roots |= {str(Path(r).parent.parent) for r in real}
    out = []
    for r in sorted(roots):
        rp = os.path.realpath(r)
        if not os.path.isdir(rp):
            continue
        # The repository itself (solutions/, autograder/) is never exposed, though a venv inside it is.
        if (rp + "/").startswith(str(REPO) + "/") and Path(rp).relative_to(REPO).parts[0] not in VENV_NAMES:
            continue
        out.append(r)
        if rp != r:
            out.append(rp)
    return out


def _bwrap_args(hostdir: Path) -> list[str]:
    args = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/tmp",
            "--hostname", "sandbox"]
    for d in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.exists(d):
            args += ["--ro-bind", d, d] if not os.path.islink(d) else ["--symlink", os.readlink(d), d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
              "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/fonts"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    seen, made = set(), set()
    for r in _python_roots():
        if r not in seen and not any(r.startswith(s + "/") for s in seen):
            # Parents that bwrap creates would be 0700: the unprivileged child could not reach r.
            for parent in reversed(Path(r).parents):
                if str(parent) not in ("/", *made) and not os.path.islink(parent):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            args += ["--ro-bind", r, r]
            seen.add(r)
    for target, replacement in _held_out_binds(hostdir):
        args += ["--ro-bind", str(replacement), str(target)]
    args += ["--perms", "0755", "--dir", "/course", "--ro-bind", str(REPO / "rnnlib"), "/course/rnnlib",
             "--ro-bind", str(hostdir), "/grader",
             "--chdir", "/tmp", "--setenv", "HOME", "/tmp", "--setenv", "PYTHONPATH", "/course",
             "--setenv", "AUTOGRADER_SANDBOX", "bwrap", "--setenv", "MPLCONFIGDIR", "/tmp/mpl"]
    fonts = hostdir / "mpl"
    for f in sorted(fonts.glob("fontlist-*.json")) if fonts.is_dir() else ():  # font_list's copy
        args += ["--ro-bind", str(f), f"/tmp/mpl/{f.name}"]
    if os.geteuid() == 0:  # the zygote (never student code) needs these to give each child its namespaces
        args += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_KILL"]
    return args


def font_cache() -> Path | None:
    """matplotlib's font list for this interpreter's matplotlib, built once per machine (outside any
    sandbox) into the user's cache folder: ``$XDG_CACHE_HOME`` or ~/.cache, ``rnn-autograder/``.
    matplotlib builds it on its first import in an empty MPLCONFIGDIR (the sandbox's is fresh every run)
    by reading every font on the machine: about 2 s of CPU at each grader start. None where it cannot be
    built or kept (the zygote's matplotlib then builds its own, as before)."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return None
    mpl = str(Path(spec.origin).parent)
    key = hashlib.sha256(f"{sys.executable}\0{mpl}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnn-autograder" / f"mpl-{key}"
    try:
        lists = sorted(cache.glob("fontlist-*.json"))
        if not lists:
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as tmp:  # built aside, then moved in whole
                env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
                subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], timeout=60,
                               env=dict(env, MPLCONFIGDIR=tmp, MPLBACKEND="Agg"), capture_output=True)
                for f in Path(tmp).glob("fontlist-*.json"):
                    os.replace(f, cache / f.name)
            lists = sorted(cache.glob("fontlist-*.json"))
        return lists[-1] if lists else None
    except (OSError, subprocess.SubprocessError):
        return None


def font_list(hostdir: Path) -> Path | None:
    """A copy of ``font_cache()`` in ``hostdir/mpl``, for this run's zygote: the sandbox only ever reads
    its own copy. None where there is no font cache."""
    src = font_cache()
    if src is None:
        return None
    try:
        (hostdir / "mpl").mkdir(exist_ok=True)
        dst = hostdir / "mpl" / src.name
        shutil.copyfile(src, dst)
        return dst
    except OSError:
        return None


def _held_out_binds(hostdir: Path):
    """[(file in site-packages, its public part written in hostdir)] for every HELD_OUT file."""
    import gzip
    import importlib.util

    out = []
    for (pkg, rel), rows in HELD_OUT.items():
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        src = Path(list(spec.submodule_search_locations)[0]) / rel
        if not src.is_file():
            continue
        with gzip.open(src, "rt") as f:
            lines = f.read().splitlines(True)[:rows]
        dst = hostdir / ("public-" + src.name)
        with gzip.open(dst, "wt") as f:
            f.write("".join(lines))
        out.append((src, dst))
        if os.path.realpath(src) != str(src):
            out.append((Path(os.path.realpath(src)), dst))
    return out


def zygote_command(hostdir: Path, control_fd: int) -> tuple[list[str], dict, bool, str]:
    """(argv, env, sandboxed, wanted per-child mode) for one zygote, which reads fd ``control_fd``."""
    (hostdir / "sandbox").mkdir(exist_ok=True)
    font_list(hostdir)
    for f in SIDE.glob("*.py"):
        shutil.copy(f, hostdir / "sandbox" / f.name)
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TZ")}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONHASHSEED="0")
    wanted = "root" if os.geteuid() == 0 else "user"
    keep = sorted({r for r in _python_roots() if r.startswith("/tmp/")})  # a course cloned under /tmp
    if bwrap_usable():
        argv = [bwrap_path(), *_bwrap_args(hostdir), sys.executable, "-I", "-S", "-c",
                "import site, sys; site.main(); sys.path.insert(0, '/course'); "
                "sys.argv = ['zygote']; sys.path.insert(0, '/grader'); from sandbox import zygote; "
                f"zygote.zygote_main({control_fd}, {wanted!r}, {keep!r})"]
        return argv, env, True, wanted
    # No bubblewrap: a plain process in a scratch directory; children still get what the kernel allows
    # (as root: namespaces and a fresh uid, or in a container a fresh uid alone, secrets root-only).
    lock_secrets(_EXTRA_SECRETS)
    env["PYTHONPATH"] = str(REPO / "rnnlib" / "..")  # only rnnlib is readable there once secrets are locked
    env["HOME"] = str(hostdir)
    env["MPLCONFIGDIR"] = str(hostdir / "mpl")
    # Held-out data: the originals become root-only, and each child sees the public part instead (in
    # its own mount namespace, or, in a container, from the zygote's memory: see autograder/sandbox/zygote.py).
    held = [(str(src), str(dst)) for src, dst in _held_out_binds(hostdir)]
    if os.geteuid() == 0:
        for src, _ in held:
            _lock(Path(src))
    argv = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from sandbox import zygote; "
            "zygote.main(sys.argv[2:])", str(hostdir), str(control_fd), wanted, json.dumps(keep), json.dumps(held)]
    return argv, env, False, wanted
