"""How much memory a user's data may take: ``MEMORY_SHARE`` of what this process may still take (the least
of the machine's available memory, its rlimits and its cgroup's limit).

Your own files and torch datasets are read whole into memory. Their headers say how big they will be
(IDX dimensions, ``.npy`` shapes, ``len(dataset)`` × the first item), so the size is checked against
this budget before anything is read. A gzip bomb, or a header that claims terabytes, is then one
error naming the file, not an exhausted machine.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import resource
except ImportError:  # not on POSIX: no rlimits to read
    resource = None  # type: ignore[assignment]

from ablab.data.errors import DataError

MEMORY_SHARE = 0.5  # user data may take at most this share of the memory available when it is read


def available_memory() -> int | None:
    """Bytes of memory this process may still take: the least of the machine's available memory, what its
    address-space and data-segment limits (RLIMIT_AS, RLIMIT_DATA: ``prlimit``, ``ulimit -v``) leave above
    what it already uses, and what its cgroup leaves (v2 ``memory.max`` − ``memory.current``, v1
    ``memory.limit_in_bytes`` − ``memory.usage_in_bytes``: a container's limit). None when none is known."""
    known = [v for v in (_machine_available(), _rlimit_left(), _cgroup_left()) if v is not None]
    return min(known) if known else None


def _machine_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _rlimit_left() -> int | None:
    if resource is None:
        return None
    used = _status_bytes("VmSize:")
    left = []
    for which, in_use in ((resource.RLIMIT_AS, used), (resource.RLIMIT_DATA, _status_bytes("VmData:"))):
        soft = resource.getrlimit(which)[0]
        if soft != resource.RLIM_INFINITY:
            left.append(max(soft - (in_use or 0), 0))
    return min(left) if left else None


def _status_bytes(key: str) -> int | None:
    """A ``kB`` line of /proc/self/status in bytes (VmSize: the address space in use, VmData: the data)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


CGROUP_ROOT = Path("/sys/fs/cgroup")  # cgroup mounts: v2 here or in unified/, v1 memory in memory/
PROC_CGROUP = Path("/proc/self/cgroup")  # this process's cgroup per hierarchy


def _cgroup_left() -> int | None:
    """What the process's memory cgroups leave: the least, over its own cgroup and every cgroup above it, of
    limit − usage (v2 ``memory.max`` − ``memory.current``, v1 ``memory.limit_in_bytes`` −
    ``memory.usage_in_bytes``). Each is looked up at its path under the mount and at the mount's root, which is
    what a container sees of its own cgroup. None when no limit is set."""
    own = {"v2": "", "v1": ""}
    try:
        for line in PROC_CGROUP.read_text().splitlines():
            hierarchy, controllers, rel = line.split(":", 2)
            if hierarchy == "0" and not controllers:
                own["v2"] = rel
            elif "memory" in controllers.split(","):
                own["v1"] = rel
    except (OSError, ValueError):
        pass
    layouts = [(CGROUP_ROOT, own["v2"], "memory.max", "memory.current"),
               (CGROUP_ROOT / "unified", own["v2"], "memory.max", "memory.current"),
               (CGROUP_ROOT / "memory", own["v1"], "memory.limit_in_bytes", "memory.usage_in_bytes")]
    left = []
    for mount, rel, limit_name, usage_name in layouts:
        parts = [p for p in rel.split("/") if p]
        for depth in range(len(parts), -1, -1):  # the own cgroup, then each parent up to the mount's root
            folder = mount.joinpath(*parts[:depth])
            try:
                limit = (folder / limit_name).read_text().strip()
                if limit in ("max", "") or int(limit) >= 2**60:
                    continue
                left.append(max(int(limit) - int((folder / usage_name).read_text().strip()), 0))
            except (OSError, ValueError):
                continue
    return min(left) if left else None


def memory_budget(max_bytes: int | None = None) -> int | None:
    """``max_bytes`` when given, else ``MEMORY_SHARE`` of the available memory (None: unknown here)."""
    if max_bytes is not None:
        return max_bytes
    avail = available_memory()
    return int(MEMORY_SHARE * avail) if avail else None


PEAK = 3  # a reader holds up to three copies at its peak (file bytes, parsed array, converted copy): 2-3x measured


def check_fits(need: int, what: str, hint: str, max_bytes: int | None = None, peak: int = PEAK) -> None:
    """DataError naming ``what`` when ``need`` bytes (the data's own size), times the reader's ``peak`` (how
    many copies it holds at once), exceed the budget; ``hint`` says what to do instead."""
    limit = memory_budget(max_bytes)
    if limit is not None and need * peak > limit:
        share = "the limit given" if max_bytes is not None else f"{MEMORY_SHARE:.0%} of the available memory"
        reading = f" ({_size(need * peak)} while being read)" if peak > 1 else ""
        raise DataError(f"{what} need {_size(need)} in memory{reading}, more than the {_size(limit)} allowed "
                        f"({share}); {hint}")


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"
