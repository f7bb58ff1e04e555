#!/usr/bin/python3
"""Run a command under the restrictions of a Docker container with its default profile, as Gradescope
and most CI runners do: no namespaces and none of the capabilities Docker drops.

    /usr/bin/python3 tests/container.py -- COMMAND [ARGS...]

- a seccomp filter (libseccomp's Python bindings, Debian's python3-seccomp) refuses ``unshare``,
  ``setns``, ``mount``, ``umount2``, ``pivot_root`` and every namespace flag of ``clone`` with EPERM,
  and ``clone3`` with ENOSYS (so that the C library falls back to ``clone``), as Docker's default
  profile does for a process without CAP_SYS_ADMIN;
- ``capsh`` then keeps only Docker's default capabilities in the bounding set before it runs the
  command as root (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP,
  SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE).

``available()`` says whether this machine can emulate it (root, capsh, python3-seccomp).
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

DOCKER_CAPS = ["chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid", "setfcap",
               "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write"]
NS_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
            "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
            "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}
SYSTEM_PYTHON = "/usr/bin/python3"


def available() -> str:
    """'' when the emulation can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (the container's grader runs as root)"
    if not shutil.which("capsh"):
        return "needs capsh (apt-get install libcap2-bin)"
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True)
    if r.returncode != 0:
        return "needs Debian's python3-seccomp (apt-get install python3-seccomp)"
    return ""


def wrap(argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` inside the emulated container."""
    return [SYSTEM_PYTHON, os.path.abspath(__file__), "--", *argv]


def _dropped() -> str:
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    names = subprocess.run(["capsh", "--decode=%x" % ((1 << (last + 1)) - 1)], capture_output=True,
                           text=True).stdout.strip().split("=", 1)[1].split(",")
    return ",".join(n for n in names if n.replace("cap_", "") not in DOCKER_CAPS)


def main(argv: list[str]) -> None:
    import seccomp

    if not argv or argv[0] != "--" or len(argv) < 2:
        sys.exit("usage: container.py -- COMMAND [ARGS...]")
    cmd = argv[1:]
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in ("unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen"):
        try:
            f.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except Exception:
            pass  # a syscall this kernel's headers do not know
    for flag in NS_FLAGS.values():
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    f.load()
    os.execvp("capsh", ["capsh", f"--drop={_dropped()}", "--", "-c", 'exec "$@"', "container", *cmd])


if __name__ == "__main__":
    main(sys.argv[1:])
