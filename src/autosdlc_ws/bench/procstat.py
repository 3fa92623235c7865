"""What the kernel says about a process: CPU seconds, resident memory, open files.

Read from /proc so the harness measures a server it did not start itself and
the server pays nothing for being measured. A server with worker processes is
measured as its whole process tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from autosdlc_ws.server.workers import WORKER_NAME_PREFIX

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces or parentheses: split after its last ')'.
    return raw[raw.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's children list)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            found.extend(int(c) for c in text)
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def comm(pid: int) -> str:
    """The process's name (/proc/PID/comm), or "" if it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().rstrip("\n")
    except OSError:
        return ""


def descendants_named(pid: int, prefix: str) -> list[int]:
    """The descendants of `pid` whose name starts with `prefix` (e.g. a server's workers)."""
    return sorted(p for p in tree(pid)[1:] if comm(p).startswith(prefix))


def worker_pids(supervisor_pid: int) -> list[int]:
    """The workers of a `serve --workers N` process (forked by its fork server, so not its children)."""
    return descendants_named(supervisor_pid, WORKER_NAME_PREFIX)


def cpu_seconds(pid: int, *, with_children: bool = True) -> float:
    """User + system CPU seconds of `pid` (and its live descendants)."""
    total = 0
    for p in tree(pid) if with_children else [pid]:
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        # After the ')' the fields start at field 3 (state): utime is field 14, stime 15.
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_bytes(pid: int, *, with_children: bool = True) -> int:
    """Resident set size of `pid` (and its live descendants), in bytes."""
    total = 0
    for p in tree(pid) if with_children else [pid]:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
    return total


def pss_bytes(pid: int) -> int:
    """Proportional set size of `pid`: its private pages plus its share of pages it shares
    (forked workers share their fork server's); summed over processes, memory counted once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def alive(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _meminfo(key: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def mem_available_bytes() -> int:
    """The kernel's estimate of memory available without swapping (MemAvailable)."""
    return _meminfo("MemAvailable")


def mem_total_bytes() -> int:
    return _meminfo("MemTotal")


def open_fds(pid: int, *, with_children: bool = True) -> int:
    """File descriptors open in `pid` (and its live descendants): sockets, pipes, files."""
    total = 0
    for p in tree(pid) if with_children else [pid]:
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
    return total


def system_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (user, nice, system, irq, softirq, steal)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
