"""Your own data: Dataset.from_tensors / from_torch, idx:/npz:/folder: sources, pixel scale, and the
misreads that are now errors. Every problem is small and learnable (a bright quadrant per class), so a
tiny MLP reaches > 95% test accuracy in two epochs when — and only when — the data is read right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ablab.cli import cli
from ablab.data import DataError, Dataset, load_dataset
from ablab.data.idx import write_idx
from ablab.data.load import clear_cache
from ablab.train import TrainConfig, fit

CFG = TrainConfig(model="mlp:32,4", epochs=2, batch_size=32, threads=1)


def quadrants(n: int = 1200, hw: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images in [0, 1] (n, 1, hw, hw): class k lights quadrant k on a noisy dark floor."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.rand(n, 1, hw, hw, generator=g) * 0.4
    h = hw // 2
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, :, r * h:(r + 1) * h, c * h:(c + 1) * h] += 0.5
    return x.clamp(0, 1), y


def as_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error(res, *needles: str) -> str:
    """The CLI failed the user-error way: exit 2, one `error:` line (continuations allowed), no traceback."""
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.output.count("error:") == 1, res.output
    for n in needles:
        assert n in res.output, res.output
    return res.output


@pytest.fixture(autouse=True)
def _fresh():
    clear_cache()
    yield
    clear_cache()


# ------------------------------------------------------------------------------ from_tensors / pixel scale


def test_float_and_uint8_images_of_one_problem_both_learn():
    x, y = quadrants()
    accs = {}
    for kind, images in (("float", x), ("uint8", as_uint8(x))):
        ds = Dataset.from_tensors(images, y, name=f"quadrants-{kind}")
        accs[kind] = fit(CFG, dataset=ds).final["test_acc"]
        assert ds.info["pixel_scale"] == ("0-1" if kind == "float" else "0-255")
    assert accs["float"] > 0.95 and accs["uint8"] > 0.95, accs
    # the same normalization constants either way (mean of the 0..1 pixels): nothing divided by 255 twice
    a = Dataset.from_tensors(x, y)
    b = Dataset.from_tensors(as_uint8(x), y)
    assert a.mean[0] == pytest.approx(b.mean[0], abs=2e-3) and 0.2 < a.mean[0] < 0.5


def test_shapes_test_split_classes_and_limit():
    x, y = quadrants(500)
    ds = Dataset.from_tensors(x[:, 0], y, classes=["nw", "ne", "sw", "se"], limit=100, val_fraction=0.2)
    assert ds.input_shape == (1, 12, 12) and ds.classes == ("nw", "ne", "sw", "se")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (100, 25, 100)  # test: 100 of the 100 held out
    assert repr(ds) == "Dataset('tensors': train 100 / val 25 / test 100, images 1x12x12, pixels 0-1, 4 classes)"
    given = Dataset.from_tensors(x[:400], y[:400], test=(x[400:], y[400:]))
    assert len(given.test) == 100 and torch.equal(given.test.y, y[400:])
    # channels-last NumPy arrays are read as such (and noted)
    hwc = np.ascontiguousarray(as_uint8(x).numpy().repeat(3, axis=1).transpose(0, 2, 3, 1))  # (N, 12, 12, 3)
    with pytest.warns(UserWarning, match=r"x: read \(\d+, 12, 12, 3\) as channels-last \(N, H, W, C\) and "
                      r"transposed to \(\d+, 3, 12, 12\)"):
        rgb = Dataset.from_tensors(hwc, y.numpy())
    assert rgb.input_shape == (3, 12, 12) and any("channels-last" in n for n in rgb.info["notes"])
    # held-out test split is the same for every split seed
    assert torch.equal(Dataset.from_tensors(x, y, split_seed=3).test.y, Dataset.from_tensors(x, y).test.y)


def test_standardized_images_are_left_alone():
    x, y = quadrants()
    z = (x - x.mean()) / x.std()
    ds = Dataset.from_tensors(z, y)
    assert ds.scale == "standardized" and ds.mean == (0.0,) and ds.std == (1.0,)
    assert fit(CFG, dataset=ds).final["test_acc"] > 0.95


@pytest.mark.parametrize("images, scale, needle", [
    (lambda x: x * 7.3, "auto", "scale is ambiguous; declare it"),
    (lambda x: as_uint8(x).float(), "0-1", "scale 0-1 declared but values span [0, 229]; these look like 0-255"),
    (lambda x: x - 5, "auto", "scale is ambiguous"),
    (lambda x: x.to(torch.int64) + 300, "auto", "outside 0..255"),
    (lambda x: x.masked_fill(x > 0.8, float("nan")), "auto", "NaN"),
])
def test_ambiguous_or_wrong_scale_is_an_error(images, scale, needle):
    x, y = quadrants(200)
    with pytest.raises(DataError) as e:
        Dataset.from_tensors(images(x), y, scale=scale)
    assert needle in str(e.value)


def test_declared_scale_is_used():
    x, y = quadrants(300)
    ds = Dataset.from_tensors(as_uint8(x).double(), y, scale="0-255")  # whole-number floats -> uint8
    assert ds.scale == "0-255" and ds.train.x.dtype == torch.uint8
    assert Dataset.from_tensors(x * 7.3, y, scale="standardized").scale == "standardized"


@pytest.mark.parametrize("x, y, needle", [
    (torch.zeros(10, 4), torch.zeros(10), "expected images of shape (N, C, H, W) or (N, H, W)"),
    (torch.zeros(10, 1, 4, 4), torch.zeros(9), "9 labels for 10 images"),
    (torch.zeros(10, 1, 4, 4), torch.zeros(10, 3), "one-hot labels? pass y.argmax(1)"),
    (torch.zeros(10, 1, 4, 4), torch.full((10,), 0.5), "expected integer class indices"),
    (torch.zeros(10, 1, 4, 4), -torch.ones(10), "label -1 is negative"),
    (torch.zeros(10, 1, 4, 4), torch.zeros(10), "only one class"),
])
def test_bad_tensors_get_one_clear_error(x, y, needle):
    with pytest.raises(DataError) as e:
        Dataset.from_tensors(x, y)
    assert needle in str(e.value)


def test_labels_beyond_the_named_classes():
    x, y = quadrants(100)
    with pytest.raises(DataError, match=r"train label 3 at index \d+ is outside 0\.\.2 \(3 classes given\)"):
        Dataset.from_tensors(x, y, classes=["a", "b", "c"])


# ------------------------------------------------------------------------------ torch datasets


class PairList(torch.utils.data.Dataset):
    """A map-style dataset returning (uint8 numpy HxW image, int label) — not a TensorDataset."""

    classes = ["nw", "ne", "sw", "se"]

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = as_uint8(x)[:, 0].numpy(), y.tolist()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def test_from_torch_tensordataset_and_map_style_train():
    from torch.utils.data import TensorDataset

    x, y = quadrants()
    ds = Dataset.from_torch(TensorDataset(x, y))
    assert ds.name == "TensorDataset" and ds.scale == "0-1"
    assert fit(CFG, dataset=ds).final["test_acc"] > 0.95
    # fit accepts a torch dataset directly (converted with the config's split settings)
    res = fit(CFG, dataset=TensorDataset(x, y))
    assert res.final["test_acc"] > 0.95 and res.info["dataset"] == "TensorDataset"
    seen: list[tuple[int, int]] = []
    own = Dataset.from_torch(PairList(x[:1000], y[:1000]), PairList(x[1000:], y[1000:]),
                             progress=lambda done, total: seen.append((done, total)))
    assert own.classes == tuple(PairList.classes) and own.input_shape == (1, 12, 12) and len(own.test) == 200
    assert seen[-1] == (200, 200) and (1000, 1000) in seen
    assert torch.equal(own.test.x, as_uint8(x[1000:]))
    # PIL images (what torchvision datasets return without a transform) read as uint8 (C, H, W)
    from PIL import Image

    class Pil(PairList):
        def __getitem__(self, i: int):
            return Image.fromarray(self.x[i]).convert("RGB"), torch.tensor(self.y[i])

    pil = Dataset.from_torch(Pil(x[:200], y[:200]))
    assert pil.input_shape == (3, 12, 12) and pil.scale == "0-255"
    assert torch.equal(torch.cat([pil.train.x[:, :1], pil.val.x[:, :1], pil.test.x[:, :1]]).sort(0).values,
                       as_uint8(x[:200]).sort(0).values)


def test_from_torch_refuses_what_does_not_fit_in_memory_and_bad_items():
    x, y = quadrants(100)
    with pytest.raises(DataError, match=r"dataset: 100 images of \(12, 12\) torch.uint8 need 14,400 bytes in memory, "
                                        r"more than the 1,000 bytes allowed \(the limit given\); use a subset"):
        Dataset.from_torch(PairList(x, y), max_bytes=1000)
    with pytest.raises(DataError, match=r"dataset\[0\]: expected an \(image, label\) pair"):
        fit(CFG, dataset=[1, 2, 3])
    with pytest.raises(DataError, match="expected an ablab Dataset or a map-style torch dataset"):
        fit(CFG, dataset=object())


# ------------------------------------------------------------------------------ file sources


def write_quartet(folder, x: torch.Tensor, y: torch.Tensor, n_train: int, gz: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    xi = as_uint8(x)[:, 0].numpy()
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", xi[:n_train])
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", y[:n_train].numpy().astype(np.uint8))
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", xi[n_train:])
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", y[n_train:].numpy().astype(np.uint8))
    return folder


def write_pngs(root, x: torch.Tensor, y: torch.Tensor, names=("nw", "ne", "sw", "se")):
    from PIL import Image

    for i, (img, label) in enumerate(zip(as_uint8(x)[:, 0].numpy(), y.tolist(), strict=True)):
        d = root / names[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")
    return root


TRAIN = ["--epochs", "2", "--batch-size", "32", "--threads", "1"]


def test_own_idx_quartet_trains_through_the_cli(tmp_path):
    x, y = quadrants()
    d = write_quartet(tmp_path / "mine", x, y, 1000)
    res = run("train", "mlp:32,4", "--data", f"idx:{d}", *TRAIN)
    assert res.exit_code == 0, res.output
    assert f"dataset: idx:{d}" in res.output and "pixels 0-255" in res.output
    acc = float(res.output.strip().splitlines()[-1].split()[2])
    assert acc > 0.95 and res.output.strip().endswith("/200)")
    ds = load_dataset(f"idx:{d}")
    assert ds.info["files"]["train_images"]["sha256"].startswith("unpinned") and len(ds.test) == 200


def test_npz_and_folder_sources_train(tmp_path):
    x, y = quadrants()
    npz = tmp_path / "mine.npz"
    xi = as_uint8(x)[:, 0].numpy()
    np.savez(npz, x_train=xi[:1000], y_train=y[:1000].numpy(), x_test=xi[1000:], y_test=y[1000:].numpy())
    res = run("train", "mlp:32,4", "--data", f"npz:{npz}", *TRAIN, "--out", str(tmp_path / "run"))
    assert res.exit_code == 0, res.output
    assert float(res.output.strip().splitlines()[-1].split()[2]) > 0.95
    meta = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert meta["dataset"]["name"] == f"npz:{npz}" and meta["dataset"]["pixel_scale"] == "0-255"
    ev = run("eval", str(tmp_path / "run" / "checkpoint"))
    assert ev.exit_code == 0 and f"dataset: npz:{npz}" in ev.output

    root = write_pngs(tmp_path / "pngs", x[:600], y[:600])
    res = run("train", "mlp:32,4", "--data", f"folder:{root}", *TRAIN)
    assert res.exit_code == 0, res.output
    assert float(res.output.strip().splitlines()[-1].split()[2]) > 0.95
    ds = load_dataset(f"folder:{root}")
    assert ds.classes == ("ne", "nw", "se", "sw") and len(ds.test) == 120  # sorted folders; 20% held out


def test_folder_with_train_and_test_subfolders_and_rgb(tmp_path):
    from PIL import Image

    x, y = quadrants(200)
    write_pngs(tmp_path / "f" / "train", x[:150], y[:150])
    write_pngs(tmp_path / "f" / "test", x[150:], y[150:])
    Image.new("RGB", (12, 12), (255, 0, 0)).save(tmp_path / "f" / "train" / "nw" / "red.png")
    ds = load_dataset(f"folder:{tmp_path / 'f'}")
    assert ds.input_shape == (3, 12, 12) and len(ds.test) == 50 and ds.info["color"] == "RGB"
    assert ds.info["official_sizes"] == {"train": 151, "test": 50}


def test_study_file_uses_a_folder_source(tmp_path):
    x, y = quadrants(600)
    root = write_pngs(tmp_path / "pngs", x, y)
    study = tmp_path / "own.toml"
    study.write_text(f"""[study]
name = "own-data"
seeds = 2

[base]
model = "mlp:32,4"
dataset = "folder:{root}"
epochs = 2
batch_size = 32

[variants.baseline]
[variants.wide]
model = "mlp:64,4"
""")
    dry = run("study", "run", str(study), "--out", str(tmp_path / "out"), "--dry-run", "--no-measure")
    assert dry.exit_code == 0 and "to run: 4 of 4 runs" in dry.output, dry.output
    res = run("study", "run", str(study), "--out", str(tmp_path / "out"), "--workers", "0")
    assert res.exit_code == 0, res.output
    from ablab.store import Store

    with Store(tmp_path / "out") as store:
        runs = store.runs()
    assert len(runs) == 4 and {r.status for r in runs} == {"done"}
    assert all(r.result["info"]["dataset"] == f"folder:{root}" for r in runs)
    assert min(r.result["final"]["test_acc"] for r in runs) > 0.9


def test_bad_sources_get_one_clear_error_exit_2(tmp_path):
    from PIL import Image

    net = "mlp:8,4"
    one_error(run("train", net, "--data", f"npz:{tmp_path / 'nope.npz'}"), "nope.npz: no such file")
    one_error(run("train", net, "--data", f"idx:{tmp_path / 'nodir'}"), "no such folder")
    np.savez(tmp_path / "flat.npz", x_train=np.zeros((10, 144), np.uint8), y_train=np.zeros(10, np.int64))
    one_error(run("train", net, "--data", f"npz:{tmp_path / 'flat.npz'}"), "expected images of shape")
    np.savez(tmp_path / "keys.npz", images=np.zeros((10, 4, 4), np.uint8))
    one_error(run("train", net, "--data", f"npz:{tmp_path / 'keys.npz'}"), "missing x_train, y_train")
    np.savez(tmp_path / "neg.npz", x_train=np.zeros((10, 4, 4), np.uint8), y_train=np.arange(10) - 1)
    one_error(run("train", net, "--data", f"npz:{tmp_path / 'neg.npz'}"), "label -1 is negative")
    np.savez(tmp_path / "range.npz", x_train=np.zeros((10, 4, 4), np.uint8), y_train=np.arange(10) % 5,
             classes=np.array(["a", "b", "c", "d"]))
    one_error(run("train", net, "--data", f"npz:{tmp_path / 'range.npz'}"), "label 4", "is outside 0..3")
    x, y = quadrants(40)
    d = write_quartet(tmp_path / "short", x, y, 30, gz=False)
    (d / "t10k-labels-idx1-ubyte").write_bytes((d / "t10k-labels-idx1-ubyte").read_bytes()[:-3])
    one_error(run("train", net, "--data", f"idx:{d}"), "t10k-labels-idx1-ubyte: truncated")
    (d / "t10k-labels-idx1-ubyte").unlink()
    one_error(run("train", net, "--data", f"idx:{d}"), "no test labels file")
    root = write_pngs(tmp_path / "mixed", x, y)
    Image.new("L", (13, 12)).save(root / "nw" / "big.png")
    one_error(run("train", net, "--data", f"folder:{root}"), "images differ in size", "big.png is 13x12")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    one_error(run("train", net, "--data", f"folder:{tmp_path / 'empty'}"), "no PNG/JPEG images")
    one_error(run("train", net, "--data", f"npz:{tmp_path / 'neg.npz'}?scale=huge"), "scale: expected one of")


# ------------------------------------------------------------------------------ no silent misreads


def test_spec_input_that_does_not_match_the_data_is_an_error():
    res = run("train", "input(3,32,32) conv(6,5) relu flatten linear(10)", "--data", "synthetic", "--epochs", "1")
    one_error(res, "the spec declares input(3,32,32) but dataset synthetic gives 1x28x28 images")
    # presets adapt to the data (they carry the input they were designed for, not a promise)
    ok = run("train", "mlp:8,4", "--data", "synthetic:n=100,test=40,shape=1x8x8,classes=4", "--epochs", "1")
    assert ok.exit_code == 0, ok.output


@pytest.mark.realdata
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs dataset-fashion-mnist")
def test_train_header_names_the_dataset_even_without_data_flag():
    res = run("train", "mlp:8,10", "--limit", "64", "--epochs", "1", "--threads", "1")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "dataset: fashion-mnist (/usr/share/datasets/fashion-mnist) · pixels 0-255"
    assert "idx:DIR" in run("train", "--help").output


def test_own_mnist_format_files_are_pointed_to_idx(tmp_path):
    x, y = quadrants(40, hw=28)
    d = write_quartet(tmp_path / "mydata" / "mnist", x, y, 30)
    out = one_error(run("data", "info", "mnist", "--data-dir", str(tmp_path / "mydata"), "--no-download"),
                    "SHA-256 mismatch", f"--data idx:{d}")
    assert "not the official one" in out
    listing = run("data", "list", "--data-dir", str(tmp_path / "mydata")).output
    row = next(line for line in listing.splitlines() if line.startswith("mnist "))
    assert "unverified" in row
    info = run("data", "info", f"idx:{d}")
    assert info.exit_code == 0 and "your own data (validated, not SHA-pinned)" in info.output


def test_dry_run_sizes_of_file_sources_match_what_loads(tmp_path):
    """The study cost estimate reads sizes from headers only; they must equal what the loader splits."""
    from ablab.data import source_sizes
    from ablab.study.cost import sample_counts

    x, y = quadrants(300)
    d = write_quartet(tmp_path / "q", x, y, 250)
    npz = tmp_path / "hwc.npz"
    np.savez(npz, x_train=as_uint8(x).numpy().repeat(3, 1).transpose(0, 2, 3, 1), y_train=y.numpy())
    root = write_pngs(tmp_path / "pngs", x[:101], y[:101])
    for name in (f"idx:{d}", f"npz:{npz}", f"folder:{root}", f"folder:{root}?test_fraction=0.3"):
        cfg = TrainConfig(dataset=name, limit=40, val_fraction=0.2)
        ds = load_dataset(name, limit=40, val_fraction=0.2)
        assert sample_counts(cfg) == (len(ds.train), len(ds.val), len(ds.test), ds.input_shape), name
        n_train, n_test, shape = source_sizes(name)
        assert (n_train, n_test, shape) == (ds.info["official_sizes"]["train"], ds.info["official_sizes"]["test"],
                                            ds.input_shape), name


def test_cli_prints_the_channels_last_guess_as_one_warning_line(tmp_path):
    rng = np.random.default_rng(0)
    f = tmp_path / "hwc.npz"
    np.savez(f, x_train=rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8), y_train=np.arange(60) % 2)
    res = run("train", "mlp:10,2", "--data", f"npz:{f}", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert res.exit_code == 0, res.output
    warns = [ln for ln in res.output.splitlines() if "channels-last" in ln]
    assert warns == [f"warning: {f}: read (60, 8, 8, 3) as channels-last (N, H, W, C) and transposed to "
                     "(60, 3, 8, 8) (a last axis of at most 4 is read as colour channels; images of more than 4 "
                     "channels and width 4 or less are not supported)"]
    assert "input(3,8,8)" in res.output


def test_checkpoint_trained_on_your_tensors_is_evaluated_with_them(tmp_path):
    """No config can reload in-memory data: `eval` says to pass it, and `evaluate_checkpoint(dataset=)`
    reproduces the recorded accuracy bit for bit on the same test split — and refuses to compare on another."""
    from ablab.train import CheckpointError, evaluate_checkpoint

    x, y = quadrants(600)
    ds = Dataset.from_tensors(x, y, classes=["tl", "tr", "bl", "br"])
    res = fit(CFG, dataset=ds, out_dir=tmp_path / "run")
    ck = tmp_path / "run" / "checkpoint"
    with pytest.raises(CheckpointError, match=r"in-memory data 'tensors'.*evaluate_checkpoint\(path, dataset=ds\)"):
        evaluate_checkpoint(ck)
    ev = evaluate_checkpoint(ck, dataset=ds)
    assert ev["reproduced"] is True and ev["test_acc"] == res.final["test_acc"] and ev["notes"] == []
    other = Dataset.from_tensors(*quadrants(600, seed=1), classes=["tl", "tr", "bl", "br"])
    ev2 = evaluate_checkpoint(ck, dataset=other)
    assert ev2["reproduced"] is None and ev2["n"] == 120 and 0.9 < ev2["test_acc"] <= 1.0
    assert ev2["notes"] == ["the dataset given has a different test split from the one trained with: the recorded "
                            "accuracy is not compared"]
    with pytest.raises(CheckpointError, match=r"trained on the classes \['tl', 'tr', 'bl', 'br'\], but the dataset "
                                              r"given has \['0', '1', '2', '3'\]"):
        evaluate_checkpoint(ck, dataset=Dataset.from_tensors(x, y))
    with pytest.raises(CheckpointError, match="trained on 1x12x12 images, but the dataset given has 1x8x8"):
        evaluate_checkpoint(ck, dataset=Dataset.from_tensors(x[:, :, :8, :8], y, classes=["tl", "tr", "bl", "br"]))
