"""Does the run store scale? (issue 19: `runs ls` on 200,000 runs took over 120 s; `study report` reached 2.7 GB.)

Builds a store of N runs (default 200,000: 200 cells — 20 variants × 10 learning rates — × 1,000 seeds, 5 epochs
each) through the store's own schema and write statements, then measures, in one run and interleaved:

- reference: a bare ``sqlite3`` SELECT of the same rows ``runs ls`` shows (every column it prints), fetched and
  dropped — what reading the file costs with no Python work per row;
- ``ablab runs ls`` as the CLI runs it (``list_runs`` + the plain-text listing, written to /dev/null);
- the report's loading step: ``ablab.report.load.load`` (``analyze``'s stages 1 and 2: stream the runs and
  epochs cell by cell, summarize each cell).

Prints min and median of each over the repeats, their ratios against the reference, and the peak RSS
(``resource.getrusage``) of each step, measured in a fresh child process so one step's peak does not hide
another's. The store folder is kept (``--keep DIR``) so a repeat run can skip the build.

Usage:  python benchmarks/store_scale.py [--runs 200000] [--epochs 5] [--repeats 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ablab.store import EPOCH_COLUMNS, STORE_NAME, Store

VARIANTS = 20  # variants per study (one of them the baseline)
LRS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)  # the grid: 10 learning rates
CONFIG = {"augment": False, "batch_size": 64, "batchnorm": False, "beta1": 0.9, "beta2": 0.999, "data_dir": None,
          "data_seed": None, "dataset": "fashion-mnist", "device": "auto", "dropout": 0.0,
          "dropout_placement": "fc", "dropout_seed": None, "early_stopping": 0, "epochs": 5,
          "eval_batch_size": 256, "init_seed": None, "l2_penalty": 0.0, "label_smoothing": 0.0, "limit": None,
          "lr": 0.001, "model": "lenet5", "model_args": {}, "momentum": 0.0, "nesterov": False,
          "optimizer": "adam", "schedule": "constant", "seed": 0, "split_seed": 0, "step_epochs": 5,
          "step_gamma": 0.1, "stratified": False, "threads": None, "train_eval_subsample": None,
          "train_metrics": "clean", "val_fraction": 0.1, "warmup_fraction": 0.3, "weight_decay": 0.0}
VERSIONS = {"python": "3.11.7", "torch": "2.13.0+cpu", "numpy": "2.4.6", "ablab": "0.1.0"}


def build(folder: Path, runs: int, epochs: int = 5) -> Path:
    """A finished study of ``runs`` runs (cells × seeds; a few failed and diverged ones) in ``folder``: the
    schema and the study row come from :class:`Store` itself, the runs from ``sync_runs``; the finished runs'
    columns and epochs are written with the statements ``finish_run`` uses, batched into one transaction
    (200,000 single-run transactions with ``synchronous=FULL`` would take an hour of fsyncs)."""
    cells = [(f"v{v:02d}" if v else "baseline", lr) for v in range(VARIANTS) for lr in LRS]
    seeds = max(1, runs // len(cells))
    rng = random.Random(0)
    info = {"description": "store scale benchmark", "seeds": list(range(seeds)), "metric": "test_acc",
            "metric_doc": "test accuracy after the last epoch", "baseline": "baseline", "confidence": 0.95,
            "grid": [["lr", list(LRS)]],
            "variants": [{"name": f"v{v:02d}" if v else "baseline", "description": "", "use": [],
                          "overrides": {"dropout": v / 40}} for v in range(VARIANTS)],
            "cells": [{"cell": f"{v} lr={lr:g}", "variant": v, "point": {"lr": lr}} for v, lr in cells],
            "comparisons": [[f"{v} lr={lr:g}", f"baseline lr={lr:g}"] for v, lr in cells if v != "baseline"],
            "base": {"model": "lenet5", "dataset": "fashion-mnist", "epochs": epochs}}
    with Store(folder) as store:
        study_id = store.upsert_study("scale", "scale.toml", "[study]\nname = \"scale\"\n", info)
        planned = []
        for variant, lr in cells:
            for seed in range(seeds):
                config = {**CONFIG, "lr": lr, "seed": seed, "epochs": epochs, "dropout": int(variant[1:]) / 40
                          if variant != "baseline" else 0.0}
                text = json.dumps(config, sort_keys=True)
                planned.append({"config_hash": hashlib.sha256(text.encode()).hexdigest(), "config": config,
                                "label": f"{variant} lr={lr:g}/seed{seed}", "variant": variant,
                                "cell": f"{variant} lr={lr:g}", "point": {"lr": lr}, "seed": seed})
        ids = store.sync_runs(study_id, planned)
        del planned
        finished, failed, epoch_rows = [], [], []
        for n, run_id in enumerate(ids.values()):
            if n % 97 == 13:  # about 1% failed
                failed.append((time.time(), "RuntimeError: out of memory", run_id))
                continue
            diverged = n % 211 == 5
            final_acc = 0.85 + 0.05 * rng.random()
            history = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": final_acc - 0.01 * (epochs - e) + 0.02,
                        "val_loss": 1.1 / e, "val_acc": final_acc - 0.01 * (epochs - e) + 0.001,
                        "test_loss": 1.2 / e, "test_acc": final_acc - 0.01 * (epochs - e), "lr": 1e-3,
                        "train_time_s": 3.1, "eval_time_s": 0.4} for e in range(1, epochs + 1)]
            result = {"status": "diverged" if diverged else "done", "diverged": None, "best_epoch": epochs,
                      "final": history[-1], "seeds": {"init": n, "data": n + 1000003, "dropout": n + 2000003},
                      "threads": 1, "versions": VERSIONS, "wall_time_s": 17.5, "checkpoint": f"runs/{n}/checkpoint",
                      "device": {"device": "cpu", "type": "cpu", "threads": 1, "deterministic": True},
                      "info": {"dataset": "fashion-mnist", "n_train": 54000, "n_val": 6000, "n_test": 10000,
                               "params": 61706, "steps_per_epoch": 844}, "fingerprint": {}}
            finished.append(("diverged" if diverged else "done", time.time(), 17.5, json.dumps(result["seeds"]),
                             json.dumps(VERSIONS), result["checkpoint"], epochs,
                             json.dumps({"epoch": 2, "loss": "nan"}) if diverged else None, json.dumps(result),
                             1, run_id))
            epoch_rows += [(run_id, m["epoch"], *(m.get(c) for c in EPOCH_COLUMNS), None) for m in history]
        with store._tx() as db:  # noqa: SLF001 - the store's own transaction, batched
            db.executemany(
                "UPDATE runs SET status = ?, finished_at = ?, wall_time_s = ?, seeds_json = ?, versions_json = ?,"
                " checkpoint = ?, best_epoch = ?, diverged_json = ?, result_json = ?, error = NULL,"
                " threads = ?, attempts = 1 WHERE id = ?", finished)
            db.executemany("UPDATE runs SET status = 'failed', finished_at = ?, error = ?, attempts = 1 WHERE id = ?",
                           failed)
            db.executemany(f"INSERT INTO epochs (run_id, epoch, {', '.join(EPOCH_COLUMNS)}, extra_json)"
                           f" VALUES (?, ?, {', '.join('?' * len(EPOCH_COLUMNS))}, ?)", epoch_rows)
            now = time.time()
            db.execute("INSERT INTO sessions (study_id, started_at, last_seen_at, ended_at, workers) VALUES"
                       " (?, ?, ?, ?, 16)", (study_id, now - 3600, now, now))
    return folder / STORE_NAME


STEPS = {
    "reference": "import sqlite3, sys\n"
                 "db = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro&immutable=1', uri=True)\n"
                 "cur = db.execute('SELECT runs.id, studies.name, runs.label, runs.status, runs.attempts,"
                 " runs.result_json, runs.best_epoch, runs.wall_time_s, runs.error FROM runs JOIN studies"
                 " ON studies.id = runs.study_id WHERE runs.active = 1 ORDER BY runs.id')\n"
                 "while cur.fetchmany(1000):\n    pass\n",
    "runs ls": "import sys\n"
               "sys.stdout = open('/dev/null', 'w')\n"
               "from ablab.cli.study import runs_ls\nruns_ls.callback(sys.argv[1], None, None, None, False)\n",
    "report load": "import sys\nfrom ablab.report.load import load\nload(sys.argv[1])\n",
}


def _child(step: str, folder: Path) -> tuple[float, float]:
    """Run one step in a fresh Python: (seconds, peak RSS in MiB) as the child measured them."""
    code = ("import resource, sys, time\nt0 = time.perf_counter()\n" + STEPS[step] +
            "\nt = time.perf_counter() - t0\n"
            "sys.__stdout__.write(f'{t} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}\\n')\n")
    out = subprocess.run([sys.executable, "-c", code, str(folder if step != "reference" else folder / STORE_NAME)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{step} failed:\n{out.stderr}")
    t, rss = out.stdout.split()
    return float(t), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200_000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="Build the store here (reused when it exists).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "scale"
        if not (folder / STORE_NAME).is_file():
            t0 = time.perf_counter()
            build(folder, args.runs, args.epochs)
            print(f"built {folder / STORE_NAME} in {time.perf_counter() - t0:.0f} s "
                  f"({(folder / STORE_NAME).stat().st_size / 2**20:.0f} MiB)")
        db = sqlite3.connect(f"file:{folder / STORE_NAME}?mode=ro&immutable=1", uri=True)
        n_runs, n_epochs = db.execute("SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM epochs)").fetchone()
        db.close()
        print(f"{n_runs:,} runs, {n_epochs:,} epoch rows; {args.repeats} repeats, interleaved, each in a fresh "
              f"process ({os.cpu_count()} CPUs)")
        times: dict[str, list[float]] = {s: [] for s in STEPS}
        peaks: dict[str, list[float]] = {s: [] for s in STEPS}
        for _ in range(args.repeats):
            for step in STEPS:
                t, rss = _child(step, folder)
                times[step].append(t)
                peaks[step].append(rss)
        ref_min, ref_med = min(times["reference"]), statistics.median(times["reference"])
        print(f"{'step':12s} {'min s':>8s} {'median s':>9s} {'min ratio':>10s} {'median ratio':>13s} "
              f"{'peak RSS MiB':>13s}")
        for step in STEPS:
            lo, med = min(times[step]), statistics.median(times[step])
            print(f"{step:12s} {lo:8.2f} {med:9.2f} {lo / ref_min:9.1f}x {med / ref_med:12.1f}x "
                  f"{max(peaks[step]):13.0f}")


if __name__ == "__main__":
    main()
