"""Memory bombs from small files, and a full disk (issue 19, items 7 and 8): each is one ``error:`` line naming
the file or dataset (exit 2), decided before the memory is spent — the children here run under an address-space
limit (``prlimit --as``) and report their own peak RSS.

- ``folder:``: the decoded pixels (images × width × height × channels × bytes) are charged against the budget
  from the headers alone; Pillow's decompression-bomb check and its PNG text-chunk limits name the file;
- ``synthetic:``: every size is charged before anything is allocated, in a checkpoint's config too;
- labels bound the class table (at most ``MAX_LABEL`` classes);
- ``ablab train --out`` on a full disk: one line naming the file, no partial state left.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.data.errors import DataError
from ablab.data.synthetic import footprint, parse_options

LIMIT = 1_800_000_000  # bytes of address space for the children (torch loaded: ~1.2 GB of it is mappings)
ZEROS_9000 = zlib.compress(bytes(9001 * 9000), 9)  # the IDAT of a 9000 x 9000 greyscale PNG of zeros: 79 KB


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, before: bytes = b"", after: bytes = b"", idat: bytes | None = None) -> bytes:
    """A greyscale 8-bit PNG whose header says width x height; ``before``/``after``: chunks around IDAT."""
    if idat is None:
        idat = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(height)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + before + _chunk(b"IDAT", idat) + after
            + _chunk(b"IEND", b""))


NOISE_8 = png(8, 8, idat=zlib.compress(b"".join(b"\0" + random.Random(k).randbytes(8) for k in range(8))))
ZTXT_50MB = _chunk(b"zTXt", b"comment\0\0" + zlib.compress(bytes(50 << 20), 9))  # 50 MB of text in 49 KB
INFLATES = "a compressed PNG chunk (zTXt/iTXt text or an iCCP profile) inflates past Pillow's limit"
ICCP_50MB = _chunk(b"iCCP", b"profile\0\0" + zlib.compress(bytes(50 << 20), 9))
ITXT_50MB = _chunk(b"iTXt", b"comment\0\1\0\0\0" + zlib.compress(bytes(50 << 20), 9))


def image_folder(root: Path, bad: bytes | None = None, n: int = 6, size: int = 8) -> Path:
    """root/a/*.png and root/b/*.png: small images, the last of b/ replaced by ``bad``."""
    for cls in "ab":
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"{i}.png").write_bytes(png(size, size))
    if bad is not None:
        (root / "b" / f"{n - 1}.png").write_bytes(bad)
    return root


# the child's own peak RSS in MiB: VmHWM of its address space. Not ru_maxrss, which exec inherits from the
# parent's address space (subprocess forks the pytest process: its RSS, ~660 MiB late in the suite, showed up
# as the child's peak)
PEAK = ("int([line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1]) / 1024"
        " if sys.platform == 'linux' else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024")


def limited(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """``ablab ARGS`` under ``prlimit --as`` (or setrlimit where prlimit is missing); (result, peak RSS MiB)."""
    code = ("import resource, sys\nfrom ablab.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
            "    print(" + PEAK + ", file=sys.stdout, flush=True)\n")
    prefix = ["prlimit", f"--as={LIMIT}"] if shutil.which("prlimit") else []
    if not prefix:
        code = f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({LIMIT}, {LIMIT}))\n" + code
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([*prefix, sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=300, env=env)
    return res, float(res.stdout.strip().splitlines()[-1])


@functools.cache
def baseline(cwd: Path) -> float:
    """Peak RSS (MiB) of the same child reading a tiny dataset: the interpreter, torch and ablab, no data —
    what every bounded refusal may use, measured in this environment."""
    res, peak = limited(["data", "info", "synthetic:n=20,test=10,shape=1x4x4,classes=2"], cwd)
    assert res.returncode == 0, res.stderr
    return peak


BOUNDED = 200  # MiB above the baseline: the refusals read headers, never pixels (GiBs if they did)


def one_error(res: subprocess.CompletedProcess, *parts: str) -> str:
    assert res.returncode == 2, res.stderr[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr[-3000:]
    for p in parts:
        assert p in lines[0], lines[0]
    return lines[0]


def cli_error(args: list[str], *parts: str) -> str:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in res.output, res.output
    for p in parts:
        assert p in lines[-1], lines[-1]
    return lines[-1]


# ---------------------------------------------------------------- folder:


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_sixty_small_9000x9000_pngs_are_refused_from_their_headers(tmp_path):
    """60 files of 79 KB each (5 MB) that decode to 4.5 GiB: refused before one pixel is decoded."""
    root = tmp_path / "big"
    for cls in "ab":
        (root / cls).mkdir(parents=True)
        for i in range(30):
            (root / cls / f"{i}.png").write_bytes(png(9000, 9000, idat=ZEROS_9000))
    assert sum(p.stat().st_size for p in root.rglob("*.png")) < 6_000_000
    res, peak = limited(["data", "info", f"folder:{root}"], tmp_path)
    # 60 x 9000 x 9000 bytes of pixels and one image's 4-byte copy while decoding: 4.83 GiB, 4 copies at the peak
    one_error(res, f"folder:{root}: 60 images of 9000x9000x1 need 4.83 GiB in memory (19.31 GiB while being read)",
              "use fewer or smaller images")
    assert peak < baseline(tmp_path.parent) + BOUNDED, peak  # MiB: the interpreter and torch, no pixels


def test_the_folder_budget_counts_decoded_pixels_with_the_readers_peak(tmp_path, monkeypatch):
    """12 images of 64x64 grey = 49,152 bytes of pixels: read within a budget of 4 x that (the reader's peak),
    refused just below it, in the one line check_fits writes."""
    from ablab.data import budget
    from ablab.data.folder import read_folder

    root = image_folder(tmp_path / "f", size=64)
    need = 12 * 64 * 64 + 64 * 64 * 4  # the pixels, and one image's decoding copy
    monkeypatch.setattr(budget, "memory_budget", lambda max_bytes=None: 4 * need)
    x, y, _, names, _ = read_folder(root)
    assert x.shape == (12, 1, 64, 64) and names == ["a", "b"]
    monkeypatch.setattr(budget, "memory_budget", lambda max_bytes=None: 4 * need - 1)
    with pytest.raises(DataError) as e:
        read_folder(root)
    assert ("12 images of 64x64x1 need 65,536 bytes in memory (262,144 bytes while being read), more than the "
            "262,143 bytes allowed") in str(e.value)


@pytest.mark.parametrize("bad, message", [
    (png(60000, 60000, idat=ZEROS_9000), "Image size (3600000000 pixels) exceeds limit of 178956970 pixels: Pillow's "
                        "decompression-bomb limit; ablab does not decode it"),
    (png(10000, 10000, idat=zlib.compress(bytes(10001))), "Image size (100000000 pixels) exceeds limit of "
                                                           "89478485 pixels: Pillow's decompression-bomb limit"),
    (png(8, 8, before=ZTXT_50MB), INFLATES + " of 1,048,576 bytes"),
    (png(8, 8, before=ITXT_50MB), INFLATES),
    (png(8, 8, before=ICCP_50MB), "an iCCP profile) inflates past Pillow's limit"),
    (png(8, 8, after=ZTXT_50MB), INFLATES),  # read on decoding
    (NOISE_8[:-30], "not a readable image"),  # truncated inside IDAT
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a readable image"),  # a signature, then nonsense
    (png(8, 8).replace(b"IDAT", b"IDAX"), "not a readable image"),  # no image data at all
    (random.Random(0).randbytes(2000), "not a readable image"),
    (png(8, 8, idat=b"not zlib at all"), "not a readable image"),
], ids=["bomb-error", "bomb-warning", "ztxt-50mb", "itxt-50mb", "iccp-50mb", "ztxt-after-idat", "truncated",
        "garbage-chunks", "no-idat", "random-bytes", "bad-zlib"])
def test_hostile_pngs_are_one_error_naming_the_file(tmp_path, bad, message):
    root = image_folder(tmp_path / "f", bad)
    line = cli_error(["data", "info", f"folder:{root}"], str(root / "b" / "5.png"))
    assert message in line, line


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_a_50mb_text_chunk_is_refused_within_the_limit(tmp_path):
    root = image_folder(tmp_path / "f", png(8, 8, before=ZTXT_50MB * 20))  # 1 GB of text in 1 MB
    res, peak = limited(["train", "mlp:8,2", "--data", f"folder:{root}", "--epochs", "1", "-q"], tmp_path)
    one_error(res, str(root / "b" / "5.png"), "a compressed PNG chunk (zTXt/iTXt text")
    assert peak < baseline(tmp_path.parent) + BOUNDED, peak


# ---------------------------------------------------------------- synthetic:


@pytest.mark.parametrize("name, shown", [
    ("synthetic:test=1e8", "100,002,000 images of 1x28x28 need 221.32 GiB in memory"),
    ("synthetic:test=100000000", "100,002,000 images of 1x28x28 need 221.32 GiB in memory"),
    ("synthetic:n=1e12", "1,000,000,000,500 images of 1x28x28 need"),
    ("synthetic:shape=1x100000x100000", "2,500 images of 1x100000x100000 need"),
    ("synthetic:shape=3x1000000x1", "2,500 images of 3x1000000x1 need"),
    ("synthetic:n=1,test=1,shape=1x1000000000x1000000000", "2 images of 1x1000000000x1000000000 need"),
])
def test_every_synthetic_size_is_bounded_by_the_budget(name, shown):
    line = cli_error(["data", "info", name], shown, "ask for fewer or smaller images (n=, test=, shape=)")
    assert line.startswith("error: dataset 'synthetic:")


def test_synthetic_options_must_be_whole_numbers_and_the_footprint_is_what_generate_holds():
    cli_error(["data", "info", "synthetic:test=1.5"], "option test='1.5' is not valid (a whole number)")
    cli_error(["data", "info", "synthetic:n=1e400"], "option n='1e400' is not valid (a whole number)")
    assert parse_options("synthetic:n=2e3").n == 2000
    opts = parse_options("synthetic:n=1000,test=200,shape=3x8x8")
    assert footprint(opts) == 3 * 1200 * (192 + 8) + 10 * 192 * 5 + 1000 * 192 * 36


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_a_checkpoint_asking_for_synthetic_test_1e8_is_one_error(tmp_path):
    """A checkpoint whose config.json names synthetic:test=1e8 (the digest recomputed: anyone can) is evaluated
    on that dataset: one error, no 24 GiB allocation, under a 1.8 GB address-space limit."""
    from ablab.train.checkpoint import META, seal

    res = CliRunner().invoke(cli, ["train", "mlp:8,10", "--data", "synthetic:n=64,test=32", "--epochs", "1", "-q",
                                   "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    ck = tmp_path / "run" / "checkpoint"
    doc = json.loads((ck / META).read_text())
    doc["config"]["dataset"] = "synthetic:test=1e8"
    (ck / META).write_text(json.dumps(seal({k: v for k, v in doc.items() if k != "meta_sha256"})))
    res, peak = limited(["eval", str(ck)], tmp_path)
    one_error(res, "synthetic:n=2000,test=100000000", "need 221.32 GiB in memory")
    assert peak < baseline(tmp_path.parent) + BOUNDED, peak


def test_synthetic_data_is_the_same_drawn_in_chunks():
    """The chunked draw gives the values of one draw: the dataset a seed names has not changed."""
    from ablab.data import synthetic

    opts = parse_options("synthetic:n=300,test=70,shape=3x17x9,classes=7,noise=0.3,seed=4")
    xtr, ytr, xte, yte = synthetic.generate(opts)
    r = np.random.default_rng([4, 1])
    y = r.permutation(np.arange(300) % 7)
    rng = np.random.default_rng(4)
    coarse = rng.random((7, 3, 4, 4)) < 0.5
    pat = coarse[:, :, np.arange(17) * 4 // 17][:, :, :, np.arange(9) * 4 // 9].astype(np.float32)
    x = 0.15 + 0.7 * pat[y] + r.normal(0.0, 0.3, (300, 3, 17, 9)).astype(np.float32)
    assert (ytr == y).all() and (xtr == np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)).all()
    assert xte.shape == (70, 3, 17, 9) and yte.shape == (70,)


# ---------------------------------------------------------------- labels bound the class table


@pytest.mark.parametrize("label", [2_000_000_000, 1e20, 1_000_001])
def test_a_label_past_the_class_bound_is_one_error(tmp_path, label):
    y = np.arange(40) % 4
    y = y.astype(np.float64) if isinstance(label, float) else y
    y[7] = label
    f = tmp_path / "d.npz"
    np.savez(f, x_train=np.zeros((40, 8, 8), np.uint8), y_train=y)
    cli_error(["data", "info", f"npz:{f}"], f"{f}: labels: label", "is not a class index (at most 1,000,000)")


# ---------------------------------------------------------------- a full disk in train --out


def _mount(mnt: Path, size: str) -> bool:
    mnt.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("size, failing", [("60k", "resume/epoch-0001"), ("700k", "checkpoint/model.safetensors")],
                         ids=["resume-state", "checkpoint"])
def test_train_out_on_a_full_disk_is_one_error_and_leaves_no_partial_file(tmp_path, size, failing):
    """A tmpfs too small for the epoch's resume state (60 KB), or for the final weights after it (700 KB)."""
    disk = tmp_path / "disk"
    if not _mount(disk, size):
        pytest.skip("needs root to mount a tmpfs (test_train_out_enospc_simulated covers the same code)")
    try:
        cli_error(["train", "mlp:64,10", "--data", "synthetic:n=100,test=50", "--epochs", "1", "-q", "--out",
                   str(disk / "run")], f"{disk / 'run' / failing}: disk full: no space left on device (Errno 28); "
                                       "free some space or choose a folder on another disk")
        left = sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))
        assert not any(".tmp" in p for p in left) and "run/checkpoint/model.safetensors" not in left, left
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_train_out_enospc_simulated(tmp_path, monkeypatch):
    """Without root: safetensors' writer raising its ENOSPC error half-way through the file."""
    import safetensors.torch
    from safetensors import SafetensorError

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "run"
    cli_error(["train", "mlp:8,10", "--data", "synthetic:n=64,test=32", "--epochs", "1", "-q", "--out", str(out)],
              f"{out / 'resume' / 'epoch-0001'}: disk full: no space left on device (Errno 28)")
    assert not [p for p in out.rglob("*") if p.is_file()]  # no partial file


# ---------------------------------------------------------------- the budget inside a memory cgroup


def _cgroup_tree(root: Path, layout: str, limits: dict[str, tuple[int | str, int]]) -> Path:
    """A fake /sys/fs/cgroup: ``limits`` maps a cgroup path ('' = the mount's root) to (limit, usage)."""
    mount, names = {"v2": (root, ("memory.max", "memory.current")),
                    "v1": (root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes"))}[layout]
    for rel, (limit, usage) in limits.items():
        folder = mount / rel
        folder.mkdir(parents=True, exist_ok=True)
        (folder / names[0]).write_text(f"{limit}\n")
        (folder / names[1]).write_text(f"{usage}\n")
    return root


@pytest.mark.parametrize("layout, proc, limits, left", [
    ("v2", "0::/job/step\n", {"job/step": (1 << 30, 300 << 20)}, (1 << 30) - (300 << 20)),
    ("v2", "0::/job/step\n", {"job/step": ("max", 5), "job": (800 << 20, 100 << 20)}, 700 << 20),  # the parent's
    ("v2", "0::/\n", {"": (2 << 30, 1 << 30)}, 1 << 30),  # a container sees its own cgroup at the root
    ("v1", "4:memory:/process_api/abc\n0::/\n", {"process_api/abc": (1 << 30, 1 << 29)}, 1 << 29),
    ("v1", "4:memory:/docker/abc\n", {"": (600 << 20, 100 << 20)}, 500 << 20),  # v1 container: the mount's root
    ("v1", "4:cpu,memory:/a\n", {"a": (9223372036854771712, 1), "": (9223372036854771712, 1)}, None),  # no limit
    ("v1", "4:memory:/a\n", {"a": (100, 200)}, 0),  # over its limit already: nothing left
])
def test_the_budget_reads_the_processes_memory_cgroups(tmp_path, monkeypatch, layout, proc, limits, left):
    from ablab.data import budget

    (tmp_path / "cgroup").write_text(proc)
    monkeypatch.setattr(budget, "PROC_CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(budget, "CGROUP_ROOT", _cgroup_tree(tmp_path / "fs", layout, limits))
    assert budget._cgroup_left() == left  # noqa: SLF001


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_a_folder_within_the_machine_but_not_within_its_cgroup_is_refused(tmp_path):
    """12 images of 4000 x 4000 (192 MB of pixels and one image's 64 MB decoding copy: 1 GB at the reader's peak)
    fit this machine's budget but not a cgroup with 1 GiB left (a budget of 512 MiB): the child (also under
    prlimit --as) sees the cgroup and refuses, naming the folder."""
    root = tmp_path / "f"
    idat = zlib.compress(bytes(4001 * 4000), 9)
    for cls in "ab":
        (root / cls).mkdir(parents=True)
        for i in range(6):
            (root / cls / f"{i}.png").write_bytes(png(4000, 4000, idat=idat))
    fs = _cgroup_tree(tmp_path / "fs", "v1", {"job": (2 << 30, 1 << 30)})
    (tmp_path / "proc").write_text("4:memory:/job\n")
    code = (f"import resource, sys\nfrom pathlib import Path\nimport ablab.data.budget as b\n"
            f"b.CGROUP_ROOT, b.PROC_CGROUP = Path({str(fs)!r}), Path({str(tmp_path / 'proc')!r})\n"
            "from ablab.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
            "    print(" + PEAK + ", flush=True)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run(["prlimit", f"--as={LIMIT}", sys.executable, "-c", code, "data", "info", f"folder:{root}"]
                         if shutil.which("prlimit") else [sys.executable, "-c", code, "data", "info", f"folder:{root}"],
                         capture_output=True, text=True, timeout=300, env=env)
    one_error(res, f"folder:{root}: 12 images of 4000x4000x1 need 244.1 MiB in memory (976.6 MiB while being read), "
                   "more than the 512.0 MiB allowed")
    assert float(res.stdout.strip().splitlines()[-1]) < baseline(tmp_path.parent) + BOUNDED
