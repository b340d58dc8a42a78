"""Study files: validation errors name the key and its line; expansion; every preset parses and dry-runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablab.study.cost import estimate
from ablab.study.expand import comparisons, expand
from ablab.study.studyfile import StudyError, find_line, list_study_presets, parse_study, read_study

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
[study]
name = "t"
seeds = 2

[base]
model = "mlp:16,10"
dataset = "synthetic"
epochs = 1

[variants.baseline]
[variants.drop]
dropout = 0.3

[grid]
lr = [1e-3, 1e-2]
"""


def err(text: str) -> str:
    with pytest.raises(StudyError) as e:
        parse_study(text, source="s.toml")
    return str(e.value)


def test_good_file_parses():
    s = parse_study(GOOD, source="s.toml")
    assert s.name == "t" and s.seeds == (0, 1) and [v.name for v in s.variants] == ["baseline", "drop"]
    assert s.grid == (("lr", (1e-3, 1e-2)),) and s.metric == "test_acc" and s.baseline == "baseline"


@pytest.mark.parametrize("old,new,expected", [
    ('dropout = 0.3', 'dropot = 0.3', "s.toml:12: variants.drop.dropot: unknown key; did you mean 'dropout'?"),
    ('dropout = 0.3', 'dropout = "high"', "s.toml:12: variants.drop.dropout: expected float, got str 'high'"),
    ('dropout = 0.3', 'dropout = 1.5', "s.toml:12: variants.drop.dropout: expected a rate in [0, 1), got 1.5"),
    ('epochs = 1', 'epochs = 0', "s.toml:8: base.epochs: expected a positive integer, got 0"),
    ('epochs = 1', 'epochs = true', "s.toml:8: base.epochs: expected int, got bool True"),
    ('seeds = 2', 'seeds = 0', "s.toml:3: study.seeds: expected a positive number of seeds, got 0"),
    ('seeds = 2', 'seeds = [1, 1]', "s.toml:3: study.seeds: seeds must be distinct, got [1, 1]"),
    ('seeds = 2', 'seeds = 2\nmetric = "acc"', "s.toml:4: study.metric: expected one of test_acc,"),
    ('seeds = 2', 'seeds = 2\nbaseline = "nope"', "s.toml:4: study.baseline: no variant named 'nope'"),
    ('seeds = 2', 'seedz = 2', "s.toml:3: study.seedz: unknown key; did you mean 'seeds'?"),
    ('lr = [1e-3, 1e-2]', 'lr = [1e-3, -1.0]', "s.toml:15: grid.lr: value -1.0: expected a positive number"),
    ('lr = [1e-3, 1e-2]', 'lr = []', "s.toml:15: grid.lr: expected a non-empty list of values"),
    ('lr = [1e-3, 1e-2]', 'dropout = [0.0, 0.5]', "s.toml:12: variants.drop.dropout: 'dropout' is also a grid axis"),
    ('[grid]', '[gird]', "s.toml:14: gird: unknown key; did you mean 'grid'?"),
    ('epochs = 1', 'epochs = 1\nseed = 3', "s.toml:9: base.seed: set the seeds in [study] seeds"),
    ('[variants.drop]', '[variants.drop]\nuse = ["dropuot"]',
     "s.toml:12: variants.drop.use: unknown variant 'dropuot'"),
])
def test_errors_name_key_and_line(old, new, expected):
    assert old in GOOD
    assert err(GOOD.replace(old, new, 1)).startswith(expected)


def test_toml_syntax_error_names_file_and_line():
    assert err(GOOD.replace("epochs = 1", "epochs = ")).startswith("s.toml: not valid TOML: ")
    assert "line 8" in err(GOOD.replace("epochs = 1", "epochs = "))


def test_find_line_handles_dotted_and_inline_keys():
    text = '[study]\nname = "x"\n\n[variants.a]\nlr = 1\n[variants."b"]\n  dropout = 0.5 # c\nvariants.c.lr = 2\n'
    assert find_line(text, ("variants", "a", "lr")) == 5
    assert find_line(text, ("variants", "b", "dropout")) == 7
    assert find_line(text, ("variants", "b", "nothing")) == 6  # falls back to the table's header
    assert find_line(text, ("study", "name")) == 2
    assert find_line(text, ("nope",)) is None


def test_use_applies_named_transforms():
    s = parse_study(GOOD.replace("dropout = 0.3", 'use = ["bn", "l2=1e-4"]'), source="s.toml")
    cfg = expand(s)[2].config  # drop lr=0.001/seed0
    assert cfg.batchnorm is True and cfg.weight_decay == 1e-4 and cfg.dropout == 0.0


def test_expansion_is_seed_major_with_unique_configs():
    s = parse_study(GOOD, source="s.toml")
    runs = expand(s)
    assert [r.label for r in runs] == [
        "baseline lr=0.001/seed0", "baseline lr=0.01/seed0", "drop lr=0.001/seed0", "drop lr=0.01/seed0",
        "baseline lr=0.001/seed1", "baseline lr=0.01/seed1", "drop lr=0.001/seed1", "drop lr=0.01/seed1"]
    assert len({r.key for r in runs}) == 8
    assert runs[3].config.dropout == 0.3 and runs[3].config.lr == 1e-2 and runs[7].config.seed == 1
    # variants vs baseline at each grid point, then grid points vs the reference point
    assert comparisons(s) == [("drop lr=0.001", "baseline lr=0.001"), ("drop lr=0.01", "baseline lr=0.01"),
                              ("baseline lr=0.01", "baseline lr=0.001")]


def test_identical_variants_are_refused():
    text = GOOD.replace("dropout = 0.3", "dropout = 0.0")
    with pytest.raises(StudyError, match="identical configs"):
        expand(parse_study(text, source="s.toml"))


def test_no_variants_means_one_baseline():
    s = parse_study('[base]\nmodel = "mlp:8,10"\n[study]\nseeds = [3, 5]\n', source="s.toml", default_name="x")
    assert [r.label for r in expand(s)] == ["baseline/seed3", "baseline/seed5"] and s.name == "x"


def test_unknown_preset_suggests():
    with pytest.raises(StudyError, match="did you mean 'mlp-sweeps'"):
        read_study("mlp-sweep")


@pytest.mark.parametrize("name", ["fashion-regularization", "fashion-regularization-classic", "mlp-sweeps",
                                  "cifar-lenet", "fashion-small-best"])
def test_every_preset_parses_and_dry_runs(name, tmp_path):
    assert name in list_study_presets()
    s = read_study(name)
    assert s.name == name and s.source == f"preset {name}"
    runs = expand(s)
    costs = estimate(s, tmp_path / "none", measure=False)
    assert len(costs) == len(runs) and all(c.train_flops > 0 and c.status == "new" for c in costs)
    # one folder: the packaged file is the one the repository holds
    path = ROOT / "src" / "ablab" / "study" / "presets" / f"{name}.toml"
    assert path.read_text() == s.text and read_study(path).name == name


def test_fashion_regularization_is_the_issue_study():
    s = read_study("fashion-regularization")
    runs = expand(s)
    assert len(runs) == 20 and s.seeds == (0, 1, 2, 3, 4)
    assert {v.name for v in s.variants} == {"baseline", "dropout", "weight-decay", "batchnorm"}
    c = runs[0].config
    assert (c.optimizer, c.lr, c.batch_size, c.epochs, c.val_fraction, c.dataset) == (
        "adam", 1e-3, 64, 12, 0.1, "fashion-mnist")
    # LeNet-5: 61,706 parameters; forward MACs per 28x28 sample from the size-up calculus
    cost = estimate(s, measure=False)[0]
    assert cost.macs == 416_520


def test_presets_are_listed_in_the_packaged_folder():
    assert set(list_study_presets()) == {p.stem for p in (ROOT / "src" / "ablab" / "study" / "presets").glob("*.toml")}
    assert not list((ROOT / "studies").glob("*.toml"))  # no second copy to keep in sync


def test_classic_and_small_best_presets():
    classic, modern = read_study("fashion-regularization-classic"), read_study("fashion-regularization")
    assert classic.base["model"] == "lenet5" and modern.base["model"] == "lenet5-modern"
    assert {k: v for k, v in classic.base.items() if k != "model"} == {k: v for k, v in modern.base.items()
                                                                       if k != "model"}
    assert [v.overrides for v in classic.variants] == [v.overrides for v in modern.variants]
    small = read_study("fashion-small-best")
    assert small.metric == "best_val_acc" and len(small.seeds) == 5  # chosen on validation, 5 seeds
    cost = estimate(small, measure=False)[0]
    assert cost.macs == 1_985_408
    from ablab.sizeup import summarize_spec
    from ablab.spec import parse_spec

    assert summarize_spec(parse_spec(small.base["model"]), (1, 28, 28)).totals.params == 89_722  # <= 100,000
