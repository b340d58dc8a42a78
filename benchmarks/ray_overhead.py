"""What does running a study on Ray cost on one machine, compared with the local executor?

The same small study (variants x seeds, tiny MLPs on in-memory data) is run three times, each into a
fresh folder, with the same number of parallel runs:

1. ``local``: :class:`LocalExecutor` — spawned worker processes (the reference);
2. ``ray cold``: :class:`RayExecutor` on a freshly started local Ray instance, ``ray.init`` included
   (what ``ablab study run FILE --executor ray`` costs end to end);
3. ``ray warm``: the same instance again (Ray reuses its worker processes): the per-study and per-run
   cost of tasks, the event inbox and shipping results back, without start-up.

It prints each wall time; the sum of the runs' own wall times (``fit``, data preparation included);
``wall - sum/workers``, the time beyond perfect packing of the runs on the workers (process start-up,
torch imports, scheduling, gathering results); the difference and ratio against ``local``; and checks
that the three stores hold identical per-epoch metrics (timings aside).

Usage:  python benchmarks/ray_overhead.py [--seeds 4] [--epochs 3] [--n 4000] [--workers 2]
Numbers taken while other jobs use the CPU are noisy; rerun on an idle machine for a clean figure.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ablab.store import Store
from ablab.study.executor import Executor, LocalExecutor
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study

STUDY = """\
[study]
name = "ray-overhead"
seeds = {seeds}

[base]
model = "mlp:64,10"
dataset = "synthetic:n={n},test=1000,noise=2.0"
epochs = {epochs}
batch_size = 64

[variants.baseline]
[variants.wide]
model = "mlp:256,10"
"""

TIMES = ("train_time_s", "eval_time_s")


def metrics(path: Path) -> dict[str, list[dict[str, Any]]]:
    with Store(path) as store:
        return {r.label: [{k: v for k, v in e.items() if k not in TIMES} for e in store.epochs(r.id)]
                for r in store.runs()}


def timed(study: Any, out: Path, make: Any) -> tuple[float, float]:
    """(wall seconds of executor creation + run_study, sum of the runs' own wall times)."""
    t0 = time.perf_counter()
    executor: Executor = make()
    outcome = run_study(study, out, executor=executor)
    wall = time.perf_counter() - t0
    assert outcome.counts == {"done": outcome.total}, outcome.counts
    with Store(out) as store:
        compute = sum(r.wall_time_s or 0.0 for r in store.runs())
    return wall, compute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4, help="seeds per variant (2 variants)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=4000, help="training images of the synthetic dataset")
    ap.add_argument("--workers", type=int, default=2, help="parallel runs (one CPU each)")
    args = ap.parse_args()

    import ray

    from ablab.study.ray_executor import RayExecutor

    study = parse_study(STUDY.format(seeds=args.seeds, n=args.n, epochs=args.epochs), source="ray_overhead.py")
    runs = 2 * args.seeds
    rows = []
    with tempfile.TemporaryDirectory(prefix="ablab-ray-bench-") as tmp:
        root = Path(tmp)
        rows.append(("local", *timed(study, root / "local", lambda: LocalExecutor(workers=args.workers))))

        init_s = [0.0]

        def cold() -> RayExecutor:
            # what RayExecutor(address=None) does, but kept alive for the warm run (an executor that
            # starts Ray also stops it when it closes)
            t0 = time.perf_counter()
            ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
            init_s[0] = time.perf_counter() - t0
            return RayExecutor(workers=args.workers)

        rows.append(("ray cold", *timed(study, root / "ray-cold", cold)))
        rows.append(("ray warm", *timed(study, root / "ray-warm", lambda: RayExecutor(workers=args.workers))))
        ray.shutdown()
        same = metrics(root / "local") == metrics(root / "ray-cold") == metrics(root / "ray-warm")

    print(f"study: 2 variants x {args.seeds} seeds = {runs} runs, {args.epochs} epochs, synthetic n={args.n}, "
          f"{args.workers} runs in parallel; ray.init took {init_s[0]:.2f} s (inside 'ray cold')")
    print(f"{'executor':10s} {'wall (s)':>9s} {'sum of runs (s)':>16s} {'wall - sum/workers':>19s} "
          f"{'wall vs local':>16s}")
    base = rows[0][1]
    for name, wall, compute in rows:
        idle = wall - compute / args.workers  # start-up + scheduling + gathering, beyond perfect packing
        vs = "reference" if name == "local" else f"{wall - base:+.2f} s  x{wall / base:.2f}"
        print(f"{name:10s} {wall:9.2f} {compute:16.2f} {idle:19.2f} {vs:>16s}")
    print(f"identical per-epoch metrics in the three stores: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
