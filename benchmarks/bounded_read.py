"""What does reading IDX files as a bounded stream cost? (issue 13: gzip bombs must stop at the cap.)

Measured in one run, interleaved, against the reference of the same run: ``gzip.decompress`` of the
whole file (what ablab did before — unbounded: a 4 GiB bomb becomes 4 GiB in memory) versus
``read_idx_bytes`` (streamed, header first, at most the registered size inflated), on Fashion-MNIST's
training images (26 MB .gz, 47 MB of content). Prints min and median of each and their ratios.

Usage:  python benchmarks/bounded_read.py [--data-dir DIR] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

from ablab.data.catalog import get_spec
from ablab.data.idx import read_idx_bytes
from ablab.data.locate import locate, not_found_error
from ablab.data.verify import idx_data_bytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    spec = get_spec("fashion-mnist")
    found = locate(spec, args.data_dir)
    if found is None:
        raise SystemExit(str(not_found_error(spec, args.data_dir)))
    path = found.files["train_images"]
    cap = idx_data_bytes(spec, "train_images")

    def reference() -> bytes:
        return gzip.decompress(path.read_bytes())

    def bounded() -> bytes:
        return read_idx_bytes(path, 3, cap)

    assert reference() == bounded()
    times: dict[str, list[float]] = {"gzip.decompress (unbounded)": [], "read_idx_bytes (bounded)": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        for name, fn in zip(times, (reference, bounded), strict=True):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    print(f"{path} ({path.stat().st_size:,} bytes -> {cap + 16:,}), n = {args.repeats} each")
    for name, ts in times.items():
        print(f"  {name:<30} min {min(ts):.3f} s   median {statistics.median(ts):.3f} s")
    ref, new = times.values()
    print(f"  ratio bounded / unbounded:     min {min(new) / min(ref):.2f}   median "
          f"{statistics.median(new) / statistics.median(ref):.2f}")


if __name__ == "__main__":
    main()
