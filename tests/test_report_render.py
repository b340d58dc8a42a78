"""Reports from a study store with known numbers: tables, sentences, files, and the HTML in Chromium."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from scipy import stats

from ablab.report.analysis import analyze
from ablab.report.render import write_report
from ablab.study.expand import expand
from ablab.study.runner import prepare
from ablab.study.studyfile import parse_study

STUDY = """\
[study]
name = "known"
seeds = 5
[base]
model = "mlp:16,10"
dataset = "synthetic"
epochs = 3
[variants.baseline]
[variants.bn]
batchnorm = true
[variants.drop]
dropout = 0.5
"""
# final test accuracy per seed: bn is clearly better, drop is within the noise
FINAL = {
    "baseline": [0.880, 0.884, 0.879, 0.886, 0.882],
    "bn": [0.897, 0.899, 0.893, 0.901, 0.898],
    "drop": [0.883, 0.881, 0.880, 0.889, 0.880],
}
N_TEST = 10_000


def history(final: float, seed: int) -> list[dict]:
    out = []
    for e in (1, 2, 3):
        acc = final - 0.02 * (3 - e)
        out.append({"epoch": e, "train_loss": 1.0 / e, "train_acc": acc + 0.03, "val_loss": 1.1 / e,
                    "val_acc": acc + (0.001 * seed if e == 2 else 0.0), "test_loss": 1.2 / e, "test_acc": acc,
                    "lr": 1e-3, "train_time_s": 0.1, "eval_time_s": 0.01})
    return out


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("known")
    s = parse_study(STUDY, source="known.toml")
    store, _, planned, ids = prepare(s, out)
    for r in planned:
        run_id = ids[r.key]
        store.start_run(run_id)
        h = history(FINAL[r.variant][r.seed], r.seed)
        store.finish_run(run_id, {"status": "done", "history": h, "final": h[-1], "best_epoch": 3,
                                  "wall_time_s": 10.0, "versions": {"torch": "2.13.0"}, "info": {"n_test": N_TEST}})
    store.close()
    assert len(expand(s)) == 15
    return out


def test_summary_numbers(study_dir):
    r = analyze(study_dir)
    cells = {c.cell: c for c in r.cells}
    for name, vals in FINAL.items():
        iv = cells[name].metrics["test_acc"]
        lo, hi = stats.t.interval(0.95, 4, loc=sum(vals) / 5, scale=stats.sem(vals))
        assert (iv.mean, iv.lo, iv.hi, iv.n) == pytest.approx((sum(vals) / 5, lo, hi, 5))
        assert cells[name].metrics["gap"].mean == pytest.approx(0.03)
        assert cells[name].metrics["train_acc"].mean == pytest.approx(sum(vals) / 5 + 0.03)
    # best validation epoch is 3 (stored best_epoch): test at best val = final test
    assert cells["bn"].metrics["test_acc_at_best_val"].mean == pytest.approx(sum(FINAL["bn"]) / 5)
    # learning curve at epoch 1 is 2 points lower than the final
    assert cells["bn"].curves["test_acc"][0].mean == pytest.approx(sum(FINAL["bn"]) / 5 - 0.04)
    lo, hi = cells["bn"].binomial
    assert (hi - lo) / 2 == pytest.approx(0.006, abs=0.0005)  # ±0.6 points at ~90% on 10,000 images


def test_comparisons_paired_and_holm(study_dir):
    r = analyze(study_dir)
    comps = {c.cell: c for c in r.comparisons}
    raw = {v: stats.ttest_rel(FINAL[v], FINAL["baseline"]).pvalue for v in ("bn", "drop")}
    assert comps["bn"].test.p == pytest.approx(raw["bn"])
    assert comps["drop"].test.p == pytest.approx(raw["drop"])
    # Holm with m = 2: smaller p doubled, larger p kept (if larger than that)
    small, large = sorted(raw.values())
    assert sorted([comps["bn"].p_holm, comps["drop"].p_holm]) == pytest.approx([2 * small, max(2 * small, large)])
    assert "Distinguishable from seed-to-seed noise" in comps["bn"].sentence and "bn is higher" in comps["bn"].sentence
    assert "Not distinguishable from noise" in comps["drop"].sentence
    assert comps["drop"].sentence.startswith("drop vs baseline: +0.04 points (95% CI")


def test_files_written(study_dir, tmp_path):
    paths = write_report(study_dir, tmp_path / "rep")
    with open(paths["summary_csv"]) as f:
        rows = {row["cell"]: row for row in csv.DictReader(f)}
    assert float(rows["bn"]["test_acc_mean"]) == pytest.approx(sum(FINAL["bn"]) / 5)
    assert rows["bn"]["n"] == "5"
    data = json.loads(paths["json"].read_text())
    assert [c["cell"] for c in data["comparisons"]] == ["bn", "drop"]
    assert data["comparisons"][0]["distinguishable"] is True and data["comparisons"][1]["distinguishable"] is False
    md = paths["markdown"].read_text()
    assert "| bn | 89.76 ± 0.37 |" in md and "![learning curves: bn](figures/curves_bn.png)" in md
    assert (tmp_path / "rep" / "figures" / "curves_bn.png").read_bytes()[:4] == b"\x89PNG"
    html = paths["html"].read_text()
    assert "<table id='summary'>" in html and "data:image/png;base64," in html
    assert "src='http" not in html and "href=" not in html  # self-contained: nothing to fetch
    assert "Study wall time:" in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_html_renders_in_chromium(study_dir, tmp_path):
    import matplotlib.image as mpimg

    paths = write_report(study_dir, tmp_path / "rep")
    url = paths["html"].resolve().as_uri()
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", "--hide-scrollbars", url,
              profile=tmp_path / "profile1")
    assert shot.is_file(), "chromium wrote no screenshot"
    img = mpimg.imread(shot)  # (H, W, C) floats in [0, 1]
    assert img.shape[0] == 1600 and img.shape[1] == 1200
    gray = img[..., :3].mean(axis=2)
    assert (gray < 0.9).mean() > 0.02  # text, table lines and figures: not a blank page
    assert gray.std() > 0.05
    dom = _chromium("--dump-dom", url, profile=tmp_path / "profile2").stdout
    assert "<table id=\"summary\">" in dom and "<td>bn</td>" in dom and "89.76 ± 0.37" in dom
    assert dom.count("<img") >= 4


def test_noise_sentence_uses_the_set_the_metric_is_measured_on(study_dir, tmp_path):
    """A test-accuracy comparison is set against one run's test-set interval; a validation-accuracy one
    against the validation set's (6,000 images here: wider than the test set's 10,000)."""
    from ablab.report.stats import clopper_pearson

    drop = {c.cell: c for c in analyze(study_dir).comparisons}["drop"].sentence
    mean = sum(FINAL["baseline"]) / 5
    lo, hi = clopper_pearson(round(mean * N_TEST), N_TEST, 0.95)
    assert f"smaller than one run's test-set interval (±{100 * (hi - lo) / 2:.2f} points)" in drop

    out = tmp_path / "val"
    s = parse_study(STUDY.replace('seeds = 5\n', 'seeds = 5\nmetric = "best_val_acc"\n'), source="val.toml")
    store, _, planned, ids = prepare(s, out)
    for r in planned:
        h = history(FINAL[r.variant][r.seed], r.seed)
        store.start_run(ids[r.key])
        store.finish_run(ids[r.key], {"status": "done", "history": h, "final": h[-1], "best_epoch": 3,
                                      "wall_time_s": 10.0, "info": {"n_test": N_TEST, "n_val": 6000}})
    store.close()
    comps = {c.cell: c for c in analyze(out).comparisons}
    assert comps["drop"].metric == "best_val_acc"
    base_val = sum(max(e["val_acc"] for e in history(v, s)) for s, v in enumerate(FINAL["baseline"])) / 5
    lo, hi = clopper_pearson(round(base_val * 6000), 6000, 0.95)
    half = 100 * (hi - lo) / 2
    assert f"smaller than one run's validation-set interval (±{half:.2f} points)" in comps["drop"].sentence
