"""What a reader sees in a report: bands inside [0, 100], integer epochs, one y-scale, sweep figures and a
heat map, the what-changed line, verdict colors, and `ablab study plan` on the finished study.

Two studies are written straight into a store (no training): a 2-seed study whose t-bands would run past
100% (n = 2: t_{0.975,1} = 12.7), and a 2-axis sweep (lr × model, two variants, 3 seeds) whose dropout
variant is better at one learning rate, worse at another and within noise at the third.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli as main
from ablab.report.figures import VERDICT_COLORS
from ablab.report.render import write_report
from ablab.study.runner import prepare
from ablab.study.studyfile import parse_study

TWO_SEEDS = """\
[study]
name = "two-seeds"
seeds = 2
[base]
model = "mlp:16,10"
dataset = "synthetic"
epochs = 4
[variants.baseline]
description = "plain"
[variants.dropout]
description = "dropout after the hidden layer"
dropout = 0.5
"""

SWEEP = """\
[study]
name = "sweep"
seeds = 3
baseline = "no-dropout"
[base]
model = "mlp:16,10"
dataset = "synthetic"
epochs = 3
[variants.no-dropout]
[variants.dropout]
dropout = 0.5
[grid]
lr = [1e-4, 1e-3, 1e-2]
model = ["mlp:16,10", "mlp:32,10"]
"""


def _history(final: float, epochs: int, val_bonus: float = 0.0, spread: float = 0.0) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        acc = min(final - 0.02 * (epochs - e) + spread, 1.0)
        out.append({"epoch": e, "train_loss": 0.5 / e, "train_acc": min(acc + 0.01, 1.0), "val_loss": 0.6 / e,
                    "val_acc": min(acc + val_bonus, 1.0), "test_loss": 0.7 / e, "test_acc": acc, "lr": 1e-3,
                    "train_time_s": 0.1, "eval_time_s": 0.01})
    return out


def _fill(text: str, out: Path, final) -> Path:  # final(run) -> (test acc, val bonus)
    s = parse_study(text, source="s.toml")
    store, _, planned, ids = prepare(s, out)
    for r in planned:
        test, bonus = final(r)
        h = _history(test, r.config.epochs, bonus)
        store.start_run(ids[r.key])
        store.finish_run(ids[r.key], {"status": "done", "history": h, "final": h[-1], "best_epoch": len(h),
                                      "wall_time_s": 1.0, "info": {"n_test": 10_000}})
    store.close()
    return out


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory) -> Path:
    # seed 0 near 99.6%, seed 1 near 97%: the 2-seed t-interval is ±12.7 sd/√2 ≈ ±23 points wide
    vals = {("baseline", 0): 0.996, ("baseline", 1): 0.970, ("dropout", 0): 0.998, ("dropout", 1): 0.965}
    return _fill(TWO_SEEDS, tmp_path_factory.mktemp("two"), lambda r: (vals[r.variant, r.seed], 0.0))


SEED_LUCK = [0.000, 0.004, -0.003]  # shared by both variants of a seed: pairing removes it
EFFECT = {1e-4: [0.020, 0.021, 0.019], 1e-3: [0.001, -0.002, 0.0015], 1e-2: [-0.020, -0.019, -0.021]}
BASE = {(1e-4, "mlp:16,10"): 0.84, (1e-4, "mlp:32,10"): 0.85, (1e-3, "mlp:16,10"): 0.87,
        (1e-3, "mlp:32,10"): 0.88, (1e-2, "mlp:16,10"): 0.86, (1e-2, "mlp:32,10"): 0.83}


def _sweep_final(r) -> tuple[float, float]:
    p = dict(r.point)
    acc = BASE[p["lr"], p["model"]] + SEED_LUCK[r.seed]
    if r.variant == "dropout":
        acc += EFFECT[p["lr"]][r.seed]
    # validation prefers no-dropout lr=1e-3 mlp:16,10 (bonus), whose test accuracy is not the highest
    bonus = 0.03 if (r.variant, p["lr"], p["model"]) == ("no-dropout", 1e-3, "mlp:16,10") else 0.0
    return acc, bonus


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return _fill(SWEEP, tmp_path_factory.mktemp("sweep"), _sweep_final)


@pytest.fixture(scope="module")
def two_report(two_seeds):
    return write_report(two_seeds)


@pytest.fixture(scope="module")
def sweep_report(sweep):
    return write_report(sweep)


def _json(written) -> dict:
    return json.loads(written["json"].read_text())


def test_bands_stay_inside_0_100(two_report):
    r = two_report.analysis
    cell = next(c for c in r.cells if c.cell == "baseline")
    assert cell.curves["test_acc"][-1].hi > 1.0  # the raw t-interval does run past 100%
    figs = _json(two_report)["figures"]
    spans = [s for panels in figs.values() for p in panels if "accuracy" in p.get("ylabel", "accuracy")
             for s in p["spans"]]
    assert spans
    acc_panels = [p for name, panels in figs.items() for p in panels
                  if name != "heatmap.png" and "loss" not in p["xlabel"] and p["ylim"][1] > 1.5]
    for p in acc_panels:
        for lo, hi in p["spans"]:
            assert lo >= 0.0 and hi <= 100.0 + 1e-9, (p["title"], lo, hi)
        assert p["ylim"][1] <= 100.0 + 1e-9 and p["ylim"][0] >= 0.0


def test_integer_epoch_ticks_and_one_y_scale(two_report):
    figs = _json(two_report)["figures"]
    curves = {name: panels for name, panels in figs.items() if name.startswith("curves_")}
    assert set(curves) == {"curves_baseline.png", "curves_dropout.png"}
    for panels in curves.values():
        for p in panels:
            assert p["xlabel"] == "epoch" and p["xticks"]
            assert all(float(t).is_integer() for t in p["xticks"]), p["xticks"]
    # accuracy panels share one y-range, loss panels another
    assert len({tuple(panels[0]["ylim"]) for panels in curves.values()}) == 1
    assert len({tuple(panels[1]["ylim"]) for panels in curves.values()}) == 1
    overlay = figs["overlay.png"]
    assert len(overlay) == 2 and overlay[0]["ylim"] == overlay[1]["ylim"]
    assert all(float(t).is_integer() for p in overlay for t in p["xticks"])


def test_what_changed_line(two_report):
    r = two_report.analysis
    changed = {c.variant: c.changed for c in r.cells}
    assert changed["dropout"] == "dropout = 0.5 (base 0)"
    assert changed["baseline"] == "nothing: the base config"
    html = two_report["html"].read_text()
    assert "<li><b>dropout</b> (dropout after the hidden layer): <span class='changed'>dropout = 0.5 (base 0)" in html
    md = two_report["markdown"].read_text()
    assert "- **dropout** (dropout after the hidden layer): dropout = 0.5 (base 0)" in md


def test_what_changed_reads_nested_settings_generically(two_seeds):
    from ablab.report.analysis import what_changed

    class Run:
        def __init__(self, i, variant, config):
            self.id, self.variant, self.config = i, variant, config

    info = {"base": {"model": "m.py:Net", "model_args": {"width": 16}}, "grid": [["lr", [0.1]]]}
    runs = [Run(1, "wide", {"model": "m.py:Net", "model_args": {"width": 64, "depth": 2}, "lr": 0.1, "seed": 3}),
            Run(2, "same", {"model": "m.py:Net", "model_args": {"width": 16}, "lr": 0.5, "seed": 1})]
    out = what_changed(info, runs)
    assert out["wide"] == "model_args.width = 64 (base 16); model_args.depth = 2 (base none)"
    assert out["same"] == "nothing: the base config"  # grid axes and seeds are not changes of the variant


def test_sweep_figures_and_heat_map(sweep_report):
    figs = _json(sweep_report)["figures"]
    assert {"sweep_lr.png", "sweep_model.png", "heatmap.png"} <= set(figs)
    lr = figs["sweep_lr.png"]
    assert [p["title"] for p in lr] == ["no-dropout", "dropout"]  # a panel per variant
    assert all(p["xscale"] == "log" for p in lr)
    assert lr[0]["ylim"] == lr[1]["ylim"]  # one y-scale
    assert len(lr[0]["spans"]) >= 2  # error bars: one line per model value
    model = figs["sweep_model.png"]
    assert model[0]["xscale"] == "linear" and model[0]["xticklabels"] == ["16,10", "32,10"]
    assert model[0]["xlabel"] == "model (mlp:…)"  # the common prefix once, in the axis title
    for p in lr + model:
        for lo, hi in p["spans"]:
            assert 0 <= lo <= hi <= 100
    heat = figs["heatmap.png"]
    assert [p["title"] for p in heat] == ["no-dropout", "dropout"]
    assert heat[0]["xticklabels"] == ["16,10", "32,10"]
    assert (sweep_report["json"].parent / "figures" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"


def test_best_cell_chosen_on_validation(sweep_report):
    best = _json(sweep_report)["best_on_validation"]
    assert best["cell"] == "no-dropout lr=0.001 model=mlp:16,10"  # the validation winner, not the test winner
    expected = sum(0.87 + x for x in SEED_LUCK) / 3
    assert best["test_at_best_val_mean"] == pytest.approx(expected)
    assert best["n"] == 3 and best["test_lo"] < expected < best["test_hi"]
    assert "The test set played no part in the choice" in sweep_report["html"].read_text()


def test_comparisons_at_the_same_grid_point_and_colors(sweep_report):
    data = _json(sweep_report)
    comps = {c["label"]: c for c in data["comparisons"]}
    same_point = [c for c in data["comparisons"] if c["label"].startswith("dropout − no-dropout at ")]
    assert len(same_point) == 6  # every grid point: dropout against no-dropout there
    better = comps["dropout − no-dropout at lr=0.0001 model=mlp:16,10"]
    worse = comps["dropout − no-dropout at lr=0.01 model=mlp:32,10"]
    noise = comps["dropout − no-dropout at lr=0.001 model=mlp:16,10"]
    assert (better["verdict"], worse["verdict"], noise["verdict"]) == ("better", "worse", "noise")
    assert better["diff_mean"] == pytest.approx(0.02, abs=1e-12)
    assert better["color"] == VERDICT_COLORS["better"] == "#1a7f37"  # green
    assert worse["color"] == VERDICT_COLORS["worse"] == "#cf222e"  # red
    # grid points of the baseline variant against its reference point name only what differs
    assert "no-dropout: lr=0.01 model=mlp:32,10 − lr=0.0001 model=mlp:16,10" in comps
    assert "no-dropout: lr=0.001 − lr=0.0001 (model=mlp:16,10)" in comps
    html = sweep_report["html"].read_text()
    assert "<td class='better'>yes, higher</td>" in html and "<td class='worse'>yes, lower</td>" in html
    assert "<td class='noise'>no</td>" in html
    css = re.search(r"\.better\{color:(#[0-9a-f]+)", html)
    assert css and css.group(1) == "#1a7f37"  # "beats noise? yes" for a better cell is never red
    assert "<td class='yes'>" not in html
    diff_colors = set(data["figures"]["differences.png"][0]["colors"])
    assert {"#1a7f37", "#cf222e", "#8c959f"} <= diff_colors
    # the minimum detectable difference beside every comparison
    spread = [c for c in data["comparisons"] if c["diff_sd"]]
    assert len(spread) >= 6 and all(c["mdd_80"] > 0 for c in spread)
    assert all(c["mdd_80"] is None for c in data["comparisons"] if not c["diff_sd"])  # no spread: undefined
    assert "<th>MDD</th>" in html


def test_study_plan_on_a_finished_study(sweep):
    from ablab.report.power import min_detectable, pooled_sd, seeds_needed

    res = CliRunner().invoke(main, ["study", "plan", str(sweep), "--effect", "0.3"])
    assert res.exit_code == 0, res.output
    assert "seeds needed for 0.3 points" in res.output and "smallest detectable now" in res.output
    # the pooled row, recomputed from the sds of the per-seed differences
    from ablab.report.analysis import analyze

    r = analyze(sweep)
    sd = pooled_sd([c.test.diff.sd for c in r.comparisons], [c.test.diff.n for c in r.comparisons])
    need, mdd = seeds_needed(0.003, sd), min_detectable(sd, 3)
    assert re.search(rf"pooled\s+│\s+3\s+│\s+{100 * sd:.2f}\s+│\s+{need}\s+│\s+{100 * mdd:.2f}", res.output), res.output
    assert f"{need} seeds detect a true difference of 0.3 points" in res.output
    bad = CliRunner().invoke(main, ["study", "plan", str(sweep), "--effect", "-1"])
    assert bad.exit_code == 2 and "--effect: expected a positive number of points" in bad.output
    # a study file (the pilot) with the folder it ran into gives the same plan
    pilot = sweep / "pilot.toml"
    pilot.write_text(SWEEP)
    same = CliRunner().invoke(main, ["study", "plan", str(pilot), "--out", str(sweep), "--effect", "0.3"])
    assert same.exit_code == 0 and same.output == res.output
    missing = CliRunner().invoke(main, ["study", "plan", str(pilot), "--out", str(sweep / "nope")])
    assert missing.exit_code == 2 and "no such study folder" in missing.output


def test_report_cli_prints_the_analysis_once(two_seeds, monkeypatch):
    import ablab.report.render as render

    calls = []
    real = render.analyze
    monkeypatch.setattr(render, "analyze", lambda *a, **k: calls.append(a) or real(*a, **k))
    res = CliRunner().invoke(main, ["study", "report", str(two_seeds)])
    assert res.exit_code == 0, res.output
    assert len(calls) == 1  # write_report analyzed; the CLI printed from what it returned
    assert "dropout: dropout = 0.5 (base 0)" in res.output and "MDD" in res.output
    assert not math.isnan(float(re.search(r"baseline\s+│\s+([\d.]+)", res.output).group(1)))
