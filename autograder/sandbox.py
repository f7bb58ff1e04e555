"""Starting the zygote (``student_side.py``): inside bubblewrap when available, else a plain process.

The sandbox sees the Python installation and its site-packages (read-only), the course library
``rnnlib`` (read-only), a private /tmp, no network, its own PID namespace, and nothing of the
repository besides: not ``solutions/``, not ``autograder/``, not other students' files. Held-out data
(``HELD_OUT``) is replaced by its public part. Each child the zygote forks then enters namespaces of
its own (see ``student_side.py``).
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIDE_FILES = ("student_side.py", "wire.py")  # all of autograder/ that enters the sandbox
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
    "none": "per notebook: a process group only (no namespaces: a detached process can outlive it)",
}


def isolation_description(ns_mode: str | None = None) -> str:
    child = f"; {PER_CHILD[ns_mode]}" if ns_mode else ""
    if bwrap_usable():
        return ("bubblewrap (no network, read-only system, no repository access, held-out data hidden)"
                + child)
    why = "not installed" if bwrap_path() is None else "installed but refused by this kernel"
    return (f"WEAK: bubblewrap {why}; student code runs as a plain subprocess with resource limits "
            "only (it can read files this user can read). Install bubblewrap (apt-get install bubblewrap)"
            + child)


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
    if os.geteuid() == 0:  # the zygote (never student code) needs these to give each child its namespaces
        args += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_KILL"]
    return args


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
    for name in SIDE_FILES:
        shutil.copy(Path(__file__).with_name(name), hostdir / name)
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TZ")}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONHASHSEED="0")
    wanted = "root" if os.geteuid() == 0 else "user"
    if bwrap_usable():
        argv = [bwrap_path(), *_bwrap_args(hostdir), sys.executable, "-I", "-S", "-c",
                "import site, sys; site.main(); sys.path.insert(0, '/course'); "
                "sys.argv = ['zygote']; sys.path.insert(0, '/grader'); import student_side; "
                f"student_side.zygote_main({control_fd}, {wanted!r})"]
        return argv, env, True, wanted
    # Weak fallback: a plain process in a scratch directory; children still get what the kernel allows.
    env["PYTHONPATH"] = str(REPO / "rnnlib" / "..")  # rnnlib only would be better; the repo is readable anyway
    env["HOME"] = str(hostdir)
    env["MPLCONFIGDIR"] = str(hostdir / "mpl")
    argv = [sys.executable, str(hostdir / "student_side.py"), str(control_fd), wanted]
    return argv, env, False, wanted
