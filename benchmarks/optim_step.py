"""What ablab's optimizer step costs beside torch.optim's, measured in the same run.

    python benchmarks/optim_step.py            # 7 rounds, 1 thread

ablab's :class:`~ablab.train.optim.FusedOptimizer` is ``torch.optim``'s single-tensor arithmetic in public
tensor methods (so ``ablab train`` never imports ``torch._dynamo``, 1.1 s of start-up). This prints, per
model, the time of one Adam step (min / median over rounds) for ablab, ``torch.optim.Adam(fused=True)`` and
``torch.optim.Adam(foreach=True)``, and one forward + backward pass of a batch of 64 for scale.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from ablab.models import create_model
from ablab.train import TrainConfig
from ablab.train.optim import make_optimizer


def per_step(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"optimizer step (Adam), {args.threads} thread(s), {args.rounds} rounds: min / median in microseconds")
    for name in ("lenet5", "mlp:100,10"):
        torch.manual_seed(0)
        model = create_model(name, (1, 28, 28))
        x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
        nn.functional.cross_entropy(model(x), y).backward()
        params = list(model.parameters())
        sides = {
            "ablab": make_optimizer(TrainConfig(optimizer="adam"), model).step,
            "torch fused": torch.optim.Adam(params, lr=1e-3, fused=True).step,
            "torch foreach": torch.optim.Adam(params, lr=1e-3, foreach=True).step,
        }

        def fwd_bwd(model: nn.Module = model, x: torch.Tensor = x, y: torch.Tensor = y) -> None:
            model.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()

        times: dict[str, list[float]] = {k: [] for k in [*sides, "forward+backward"]}
        for _ in range(args.rounds):
            with torch.no_grad():
                for k, step in sides.items():
                    times[k].append(per_step(step, 200))
            times["forward+backward"].append(per_step(fwd_bwd, 20))
        fb = min(times["forward+backward"])
        print(f"{name}:")
        for k, v in times.items():
            share = "" if k == "forward+backward" else f"   {min(v) / fb:6.1%} of a forward+backward"
            print(f"  {k:18s} {min(v) * 1e6:8.1f} / {statistics.median(v) * 1e6:8.1f}{share}")


if __name__ == "__main__":
    main()
