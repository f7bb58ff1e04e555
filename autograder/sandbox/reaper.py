"""Ending every process of one uid, however it detached. Shared by both sides of the trust boundary:
the zygote (``zygote.py``) sweeps a child's uid when its notebook ends, and the trusted side
sweeps the uids of a zygote its watchdog had to kill. Nothing else: no grading logic, no imports of
the trusted side (the sandbox gets a copy of this package, ``autograder/sandbox/``).

A process of the uid calls ``kill(-1, SIGKILL)``: the kernel signals, in one call, every process that
process may signal, that is every process of the same uid. Repeated until ``/proc`` shows none (a
process forked during one sweep is caught by the next; RLIMIT_NPROC bounds how many there can be).
Then whatever the uid owns at the top of the shared scratch folders is deleted.
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import time

SCRATCH_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")
FIRST_SANDBOX_UID = 1_000_000  # children's uids start here; never a system or human account


def uid_processes(uid: int) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}").st_uid == uid:
                    out.append(int(p))
            except OSError:
                pass
    return out


def sweep_uid(uid: int, seconds: float = 10.0, reaped: list | None = None) -> bool:
    """Kill every process of ``uid`` and delete its files in the scratch folders. True once none is
    left. Needs root. ``reaped``: pids of the caller's own children reaped meanwhile (their exit)."""
    if uid < FIRST_SANDBOX_UID or os.geteuid() != 0:
        return False
    deadline = time.monotonic() + seconds
    while True:
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                for _ in range(3):
                    os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        while reaped is not None:  # the caller's own children of that uid (the notebook's process)
            try:
                p, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if p == 0:
                break
            reaped.append(p)
        if not uid_processes(uid):
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    for root in SCRATCH_ROOTS:
        remove_owned(root, uid)
    return True


def remove_tree(path: str) -> None:
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def remove_owned(root: str, uid: int) -> None:
    """Delete what ``uid`` owns at the top of ``root`` (a planted file or folder)."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for n in names:
        p = os.path.join(root, n)
        try:
            if os.lstat(p).st_uid == uid:
                remove_tree(p)
        except OSError:
            pass
