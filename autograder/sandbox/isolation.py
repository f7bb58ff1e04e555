"""Entering a child's isolation: fresh namespaces, a private /tmp, a fresh uid, no capabilities,
limits; and probing which of these the kernel grants here."""
from __future__ import annotations

import os
import signal

from . import reaper
from .kernel import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_BIND,
                     MS_NODEV, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, PR_SET_DUMPABLE,
                     PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, _check, _drop_capabilities, _libc, _mount)

# ------------------------------------------------------------------------ entering the child
def _enter_namespaces(job: dict) -> str:
    """In the freshly forked child: new namespaces, private /tmp. Returns the isolation it got."""
    mode = job.get("ns_mode", "none")
    if mode in ("none", "uid"):
        return mode
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
    if mode == "user":
        flags |= CLONE_NEWUSER
    _check(_libc.unshare(flags), "unshare")
    if mode == "user":
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    for original, public in job.get("held_out", []):  # without bubblewrap: the public part, in this namespace
        _mount(public, original, None, MS_BIND, None)  # (before /tmp, where the public part lies, is hidden)
        _mount("none", original, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    # Paths under /tmp that the interpreter needs (a course cloned under /tmp: its .venv) stay visible,
    # read-only, on top of the child's fresh /tmp: held by descriptor across the new mount.
    keep = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in job.get("keep", [])
            if (p + "/").startswith("/tmp/") and os.path.isdir(p)]
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={job.get('tmp_mb', 256)}m,mode=1777")
    for path, fd in keep:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        try:
            _mount("none", path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
        except OSError:
            pass  # already read-only and locked so (bubblewrap's bind)
        os.close(fd)
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    return mode


def _become_student(job: dict, mode: str) -> None:
    """PID 1 of the child's namespace: its own /proc, its own uid, no capabilities, limits."""
    import resource

    if mode == "root":
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV, None)
    if mode in ("root", "uid"):
        uid = int(job["uid"])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # a fresh uid: no capabilities left, nothing of root's readable
    if mode != "none":
        try:
            _drop_capabilities()
        except OSError:
            pass
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no sibling may read this process's memory
    lim = job.get("limits", {})
    mem = lim.get("memory_bytes")
    if mem:  # address space relative to what is already mapped (torch maps a lot up front)
        vm = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    vm = int(line.split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + mem, vm + mem))
    nproc = lim.get("processes")
    if nproc:
        # RLIMIT_NPROC counts the processes of a real uid: a fresh uid starts at zero; a shared one
        # (no root) already has some, so count them from here.
        base = 0 if mode in ("root", "uid") else sum(1 for p in os.listdir("/proc") if p.isdigit())
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc + base, nproc + base))
        except (ValueError, OSError):
            pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = lim.get("file_bytes")
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))



def _probe_mode(wanted: str) -> str:
    """The strongest per-child isolation this kernel grants here: root, user or none."""
    order = {"root": ["root", "user", "uid", "none"], "user": ["user", "none"]}.get(wanted, ["none"])
    for mode in order:
        if mode == "none":
            return mode
        if mode == "uid":  # root without namespaces (a container): a fresh uid per child, if setuid works
            if _can_setuid():
                return mode
            continue
        pid = os.fork()
        if pid == 0:
            try:
                os.closerange(3, 4096)
                _enter_namespaces({"ns_mode": mode})
                p2 = os.fork()
                if p2 == 0:
                    if mode == "root":
                        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV, None)
                        os.setgid(65534)
                        os.setuid(65534)
                    os._exit(0)
                _, st = os.waitpid(p2, 0)
                os._exit(0 if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0 else 1)
            except BaseException:
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
            return mode
    return "none"


def _can_setuid() -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os._exit(0 if os.getuid() == 65534 else 1)
        except BaseException:
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    return os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0


# ------------------------------------------------------- a fresh uid without namespaces ("uid")
def _private_home(uid: int) -> str:
    """/tmp/autograder-u<uid>: made by root (still), owned by the child's uid, mode 0700."""
    path = f"/tmp/autograder-u{uid}"
    reaper.remove_tree(path)
    os.mkdir(path, 0o700)
    os.chown(path, uid, uid)
    return path

