"""How long a short training run takes beside merely importing torch, measured in the same run.

    python benchmarks/startup.py                  # 5 rounds
    python benchmarks/startup.py --repeats 9

Each round runs, as fresh processes and alternating (so both sides see the same machine load):
``python -c "import torch"`` and ``python -m ablab train "mlp:100,10" --data fashion-mnist --epochs 1
--limit 5000 -q``. The figure that matters is the difference: what ablab adds on top of torch's own
import (imports of its own, data loading, the optimizer, one 0.1 s epoch, evaluation). Target on the
2-core development machine: <= 1.5 s more than ``import torch`` (it was ~4.7 s before the optimizer
stopped importing torch._dynamo and decoded datasets were cached). The first training run fills the
decoded-dataset cache (ablab.data.cache), so a warm-up round is run and not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TORCH = [sys.executable, "-c", "import torch"]
TRAIN = [sys.executable, "-m", "ablab", "train", "mlp:100,10", "--data", "fashion-mnist", "--epochs", "1",
         "--limit", "5000", "-q"]


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds (>= 3)")
    args = ap.parse_args()
    wall(TRAIN)  # warm-up: fills the decoded-dataset cache and the OS page cache
    torch_s, train_s = [], []
    for i in range(max(args.repeats, 3)):
        pair = [(TORCH, torch_s), (TRAIN, train_s)]
        for cmd, out in pair if i % 2 == 0 else pair[::-1]:  # alternate the order too
            out.append(wall(cmd))
    extra = [b - a for a, b in zip(torch_s, train_s, strict=True)]
    load = os.getloadavg()[0]
    n = len(torch_s)
    cpus = os.cpu_count() or 1
    busy = "above the CPU count: the figures are inflated by other work" if load > cpus else "quiet enough"
    print(f"startup: n={n} alternating rounds (seconds: min / median); load average {load:.1f} on "
          f"{cpus} CPUs at the end ({busy})")
    print(f"  python -c 'import torch'          {min(torch_s):6.2f} / {statistics.median(torch_s):6.2f}")
    print(f"  ablab train mlp:100,10 (1 epoch)  {min(train_s):6.2f} / {statistics.median(train_s):6.2f}")
    print(f"  ablab train - import torch        {min(extra):6.2f} / {statistics.median(extra):6.2f}   "
          f"(per round; target <= 1.5)")
    print(f"  ratio train / import torch        {min(train_s) / min(torch_s):6.2f} / "
          f"{statistics.median(train_s) / statistics.median(torch_s):6.2f}")


if __name__ == "__main__":
    main()
