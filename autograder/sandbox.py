"""Starting the sandboxed host process: bubblewrap when available, a plain subprocess otherwise.

The sandbox sees the Python installation and its site-packages (read-only), the course library
``rnnlib`` (read-only), a private /tmp, no network, its own PID namespace, and nothing of the
repository besides: not ``solutions/``, not ``autograder/``, not other students' files.
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
HOST_SCRIPT = Path(__file__).with_name("_sandboxed.py")
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


def isolation_description() -> str:
    if bwrap_usable():
        return "bubblewrap (no network, private /tmp, own PID namespace, read-only system, no repository access)"
    why = "not installed" if bwrap_path() is None else "installed but refused by this kernel"
    return (f"WEAK: bubblewrap {why}; student code runs as a plain subprocess with resource limits "
            "only (it can read files this user can read). Install bubblewrap (apt-get install bubblewrap).")


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
    args += ["--perms", "0755", "--dir", "/course", "--ro-bind", str(REPO / "rnnlib"), "/course/rnnlib", "--ro-bind", str(hostdir), "/grader",
             "--chdir", "/tmp", "--setenv", "HOME", "/tmp", "--setenv", "PYTHONPATH", "/course",
             "--setenv", "AUTOGRADER_SANDBOX", "bwrap", "--setenv", "MPLCONFIGDIR", "/tmp/mpl"]
    return args


def host_command(hostdir: Path) -> tuple[list[str], dict, bool]:
    """(argv, env, sandboxed) for one host process. ``hostdir`` holds a copy of the host script."""
    shutil.copy(HOST_SCRIPT, hostdir / "host.py")
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TZ")}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONHASHSEED="0")
    if bwrap_usable():
        argv = [bwrap_path(), *_bwrap_args(hostdir), sys.executable, "-c",
                "import sys; sys.path.insert(0, '/course'); sys.argv=['host']; "
                "exec(compile(open('/grader/host.py').read(), '/grader/host.py', 'exec'))"]
        return argv, env, True
    # Weak fallback: a plain subprocess in a scratch directory; limits still apply in the child.
    env["PYTHONPATH"] = str(REPO)  # for rnnlib
    env["HOME"] = str(hostdir)
    env["MPLCONFIGDIR"] = str(hostdir / "mpl")
    argv = [sys.executable, str(hostdir / "host.py")]
    return argv, env, False
