"""The summary table's layout against rich's own ``Table`` on the same rows: seconds per 1,000 rows (min and
median of repeats, measured in one run) and how the time grows from 1,000 to 10,000 rows.

    python benchmarks/render_speed.py
"""

from __future__ import annotations

import io
import statistics
import time

from rich.console import Console

from ablab.calc import render
from ablab.sizeup import summary


def spec(rows: int) -> str:
    return "input(8) " + " ".join(["linear(8) relu"] * (rows // 2))


def timed(fn, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    s1k, s10k = summary(spec(1_000)), summary(spec(10_000))

    def with_rich() -> None:
        Console(file=io.StringIO(), width=120, color_system=None).print(render.table(s1k, 120))

    rich_min, rich_med = timed(with_rich, 3)
    fast_min, fast_med = timed(lambda: render.render_text(s1k), 5)
    big_min, big_med = timed(lambda: render.render_text(s10k), 5)
    print(f"{'layout':34} {'rows':>6} {'min s':>8} {'median s':>9}")
    print(f"{'rich Table (reference)':34} {1000:>6} {rich_min:8.3f} {rich_med:9.3f}")
    print(f"{'ablab.calc.render':34} {1000:>6} {fast_min:8.3f} {fast_med:9.3f}")
    print(f"{'ablab.calc.render':34} {10000:>6} {big_min:8.3f} {big_med:9.3f}")
    print(f"\nat 1,000 rows: {rich_med / fast_med:.0f}x faster than rich (medians, {rich_min / fast_min:.0f}x by "
          f"minima); 10x the rows take {big_med / fast_med:.1f}x the time (linear: 10x)")


if __name__ == "__main__":
    main()
