"""How much memory a user's data may take: ``MEMORY_SHARE`` of what this machine has available.

Your own files and torch datasets are read whole into memory. Their headers say how big they will be
(IDX dimensions, ``.npy`` shapes, ``len(dataset)`` × the first item), so the size is checked against
this budget before anything is read. A gzip bomb, or a header that claims terabytes, is then one
error naming the file, not an exhausted machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from ablab.data.errors import DataError

MEMORY_SHARE = 0.5  # user data may take at most this share of the memory available when it is read


def available_memory() -> int | None:
    """Bytes of memory available to this process (Linux MemAvailable, else free pages), or None."""
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


def memory_budget(max_bytes: int | None = None) -> int | None:
    """``max_bytes`` when given, else ``MEMORY_SHARE`` of the available memory (None: unknown here)."""
    if max_bytes is not None:
        return max_bytes
    avail = available_memory()
    return int(MEMORY_SHARE * avail) if avail else None


def check_fits(need: int, what: str, hint: str, max_bytes: int | None = None) -> None:
    """DataError naming ``what`` when ``need`` bytes exceed the budget; ``hint`` says what to do instead."""
    limit = memory_budget(max_bytes)
    if limit is not None and need > limit:
        share = "the limit given" if max_bytes is not None else f"{MEMORY_SHARE:.0%} of the available memory"
        raise DataError(f"{what} need {_size(need)} in memory, more than the {_size(limit)} allowed ({share}); "
                        f"{hint}")


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"
