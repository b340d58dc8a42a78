"""How fast does ``ablab summary`` answer? Wall time of whole processes, as a user waits for them.

Measured in the same run, as references: an empty Python start-up, ``python -c "import torch"`` (the
floor for any tool that imports torch), and torchinfo sizing up the same LeNet-5. Also checks that the
spec path never imports torch. Usage::

    python benchmarks/summary_speed.py [--repeats 7]

The machine may be shared: the median of several runs is reported, with the minimum.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
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
    if not torch_free or answer >= 1.0:
        sys.exit("FAIL: the spec path must not import torch and must answer in under a second")


if __name__ == "__main__":
    main()
