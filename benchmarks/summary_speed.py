"""How fast does ``ablab summary`` answer? Wall time of whole processes, as a user waits for them.

Measured in the same run, as references: an empty Python start-up, ``python -c "import torch"`` (the
floor for any tool that imports torch), and torchinfo sizing up the same LeNet-5. Also checks that the
spec path never imports torch. Usage::

    python benchmarks/summary_speed.py [--repeats 7]

The machine may be shared: the median of several runs is reported, with the minimum.

Then, in one process, ``ablab.summary`` of an ``nn.Module`` against ``torchinfo.summary`` of the same
module (both warmed up once, then interleaved, min and median of ``--module-repeats``): a ResNet-50
(torchvision's architecture, written here: Bottleneck blocks [3, 4, 6, 3], 25,557,032 parameters) on a
3x224x224 image and a 100-layer MLP (Linear(256, 256) + ReLU, x100) on a 256 vector, batch 1. The
target is a ratio of 2 at most.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

PY = sys.executable
ABLAB = shutil.which("ablab")
CLI = [ABLAB] if ABLAB else [PY, "-c", "import sys; from ablab.cli import main; main(sys.argv[1:])"]

CASES: dict[str, list[str]] = {
    "python (empty start-up)": [PY, "-c", "pass"],
    "ablab summary --help": [*CLI, "summary", "--help"],
    "ablab summary lenet5 --input 1x28x28": [*CLI, "summary", "lenet5", "--input", "1x28x28"],
    "ablab summary lenet5 --json": [*CLI, "summary", "lenet5", "--input", "1x28x28", "--json"],
    "reference: python -c 'import torch'": [PY, "-c", "import torch"],
    "reference: torchinfo.summary(lenet5)": [
        PY, "-c", "import torchinfo; from ablab.models import create_model; "
        "torchinfo.summary(create_model('lenet5'), input_size=(1, 1, 28, 28), verbose=0)"],
}

TORCH_CHECK = """
import sys
from ablab.cli import cli
for args in (["summary", "--help"], ["summary", "lenet5", "--input", "1x28x28"], ["summary", "lenet5", "--explain"]):
    try:
        cli.main(args=args, prog_name="ablab", standalone_mode=False)
    except SystemExit:
        pass
print("TORCH_IMPORTED" if "torch" in sys.modules else "TORCH_NOT_IMPORTED")
"""


def time_once(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def resnet50() -> object:
    """torchvision.models.resnet50's architecture (v1.5: the stride on the 3x3 convolution)."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, c_in: int, width: int, stride: int) -> None:
            super().__init__()
            c_out = width * 4
            self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)) \
                if stride != 1 or c_in != c_out else None

        def forward(self, x):  # noqa: ANN001, ANN202
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + idt)

    layers: list = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, 2, 1)]
    c = 64
    for i, (n, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        blocks = []
        for j in range(n):
            blocks.append(Bottleneck(c, width, 2 if j == 0 and i > 0 else 1))
            c = width * 4
        layers.append(nn.Sequential(*blocks))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers)


def mlp100() -> object:
    from torch import nn

    return nn.Sequential(*[m for _ in range(100) for m in (nn.Linear(256, 256), nn.ReLU())])


def module_ratios(repeats: int) -> None:
    """ablab.summary(module) against torchinfo.summary(module), same process, interleaved: wall time, and the
    process's CPU time (less disturbed when other programs share the cores)."""
    import torch
    import torchinfo

    import ablab

    torch.manual_seed(0)
    print(f"\n{'module summary (in process)':24s} {'clock':5s} {'ablab min':>10s} {'median':>8s} "
          f"{'torchinfo min':>14s} {'median':>8s} {'ratio min':>10s} {'ratio median':>13s}")
    for name, model, shape in (("resnet50 3x224x224", resnet50(), (3, 224, 224)), ("mlp 100 layers", mlp100(), (256,))):
        params = sum(p.numel() for p in model.parameters())
        ours: dict[str, list[float]] = {"wall": [], "cpu": []}
        theirs: dict[str, list[float]] = {"wall": [], "cpu": []}
        ablab.summary(model, shape)  # warm-up: first-call costs (lazy imports, allocator) are not the tool's
        torchinfo.summary(model, input_size=(1, *shape), verbose=0)
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            s = ablab.summary(model, shape)
            w1, c1 = time.perf_counter(), time.process_time()
            torchinfo.summary(model, input_size=(1, *shape), verbose=0)
            w2, c2 = time.perf_counter(), time.process_time()
            ours["wall"].append(w1 - w0)
            ours["cpu"].append(c1 - c0)
            theirs["wall"].append(w2 - w1)
            theirs["cpu"].append(c2 - c1)
        assert s.totals.params == params
        for clock in ("wall", "cpu"):
            a = (min(ours[clock]), statistics.median(ours[clock]))
            b = (min(theirs[clock]), statistics.median(theirs[clock]))
            print(f"{name:24s} {clock:5s} {a[0]:10.3f} {a[1]:8.3f} {b[0]:14.3f} {b[1]:8.3f} {a[0] / b[0]:10.2f} "
                  f"{a[1] / b[1]:13.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--module-repeats", type=int, default=5)
    ap.add_argument("--modules-only", action="store_true", help="only the in-process module comparison")
    args = ap.parse_args()
    if args.modules_only:
        module_ratios(args.module_repeats)
        return
    out = subprocess.run([PY, "-c", TORCH_CHECK], check=True, capture_output=True, text=True).stdout
    torch_free = "TORCH_NOT_IMPORTED" in out
    print(f"torch imported on the spec path: {'no' if torch_free else 'YES (regression)'}")
    results = {}
    for name, cmd in CASES.items():
        time_once(cmd)  # warm the file cache
        ts = [time_once(cmd) for _ in range(args.repeats)]
        results[name] = (statistics.median(ts), min(ts))
    ref = results["reference: python -c 'import torch'"][0]
    info = results["reference: torchinfo.summary(lenet5)"][0]
    print(f"\n{'command':42s} {'median s':>9s} {'min s':>7s} {'/import torch':>14s} {'/torchinfo':>11s}")
    for name, (med, low) in results.items():
        print(f"{name:42s} {med:9.3f} {low:7.3f} {med / ref:14.2f} {med / info:11.2f}")
    answer = results["ablab summary lenet5 --input 1x28x28"][0]
    print(f"\nablab summary lenet5 answers in {answer:.3f} s (median of {args.repeats}): "
          f"{info / answer:.1f}x faster than torchinfo on the same network, "
          f"{ref / answer:.1f}x faster than importing torch alone.")
    module_ratios(args.module_repeats)
    if not torch_free or answer >= 1.0:
        sys.exit("FAIL: the spec path must not import torch and must answer in under a second")


if __name__ == "__main__":
    main()
