"""A grading worker: a process of the trusted side that grades the jobs its run sends it.

Started by ``pools.LocalPool`` as ``python -m autograder.core.worker``, it dies with the run that
started it (PR_SET_PDEATHSIG, set before exec), and its zygote dies with it (bubblewrap's
``--die-with-parent``), and every child with its zygote (PID namespaces): a ``kill -9`` of the run
leaves nothing behind. Jobs and result documents travel as length-prefixed pickles on its
stdin/stdout, between trusted processes only; student bytes were read safely before the job was
made, and this process parses the student's replies under a memory limit.
"""
from __future__ import annotations

import os
import pickle
import signal
import struct


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def send(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int):
    head = _read_exact(fd, 8)
    if head is None:
        return None
    (n,) = struct.unpack("<Q", head)
    data = _read_exact(fd, n)
    return None if data is None else pickle.loads(data)


def _limit_memory() -> None:
    import resource

    vm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
    lim = vm + 8 * 1024**3  # what torch maps, plus room to parse any reply the frames allow
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run decides what an interrupt means
    results = os.dup(1)
    os.dup2(2, 1)  # a stray print cannot corrupt the result channel
    from . import job as jobs

    try:
        _limit_memory()
    except (OSError, ValueError):
        pass
    send(results, "ready")
    while True:
        msg = receive(0)
        if msg is None:
            jobs.close_worker()
            return
        job, limits = msg
        send(results, jobs.grade_job(job.student, job.assignment, job.sub, job.h, limits))


if __name__ == "__main__":
    main()
