"""``ablab data``: list, info, fetch, verify. Thin: each command calls one ``ablab.data`` function and
formats its result; torch is imported inside the commands only."""

from __future__ import annotations

from pathlib import Path

import click

from ablab.cli.keys import flags
from ablab.cli.options import config_option, flag_of
from ablab.data import get_spec, list_datasets

DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Folder searched first (as DIR/NAME and DIR); fetch writes to DIR/NAME.")


@click.group()
def data() -> None:
    """Datasets: where they are, what is in them, fetching and verifying them.

    \b
    Search order: --data-dir, $ABLAB_DATA, ~/.cache/ablab/NAME, /usr/share/datasets/NAME.
    Example:
      ablab data list
      ablab data info fashion-mnist
    """


@data.command("list")
@DATA_DIR
def list_cmd(data_dir: Path | None) -> None:
    """Known datasets and where each was found.

    \b
    Example:
      ablab data list --data-dir ~/datasets
    """
    from ablab.data.locate import locate

    rows = [("NAME", "TRAIN", "TEST", "SHAPE", "WHERE")]
    for name in list_datasets():
        spec = get_spec(name)
        if spec.files is None:
            where = "generated in memory"
        else:
            found = locate(spec, data_dir)
            # found by file name only: the official set only after `verify` (or a load) checked the sums
            where = (f"{found.dir} ({found.how}, {found.fmt}) files present, unverified" if found
                     else f"not found: ablab data fetch {name}"
                     + (f"  or  sudo apt-get install {spec.apt_package}" if spec.apt_package else ""))
        rows.append((name, f"{spec.n_train:,}", f"{spec.n_test:,}", "x".join(map(str, spec.shape)), where))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(f"{r[i]:<{widths[i]}}" for i in range(4)) + "  " + r[4])


@data.command("info")
@click.argument("name")
@DATA_DIR
@config_option("val_fraction")  # the split options as `ablab train` has them: one definition, TrainConfig's
@config_option("split_seed")
@config_option("stratified")
@config_option("limit")
@click.option("--no-download", is_flag=True, help="Fail instead of fetching a missing dataset.")
def info_cmd(name: str, data_dir: Path | None, val_fraction: float, split_seed: int, stratified: bool,
             limit: int | None, no_download: bool) -> None:
    """Counts, shapes, class balance and normalization constants of NAME as it loads.

    \b
    Example:
      ablab data info fashion-mnist --split-seed 1 --stratified
      ablab data info synthetic:n=1000,shape=1x8x8,classes=4
    """
    import torch

    from ablab.data import get_spec, is_source, load_dataset

    with flags({k: flag_of(k) for k in ("val_fraction", "split_seed", "limit")}):
        ds = load_dataset(name, data_dir=data_dir, val_fraction=val_fraction, split_seed=split_seed,
                          stratified=stratified, limit=limit, download=not no_download)
    title = "your own data (validated, not SHA-pinned)" if is_source(name) else get_spec(name).title
    i = ds.info
    click.echo(f"{ds.name} — {title}")
    click.echo(f"source:  {i['source']} ({i['found_via']}, {i['format']})")
    split = (f"val_fraction {i['val_fraction']:g}, split_seed {i['split_seed']}, "
             f"{'stratified' if i['stratified'] else 'not stratified'}, "
             + (f"limit {limit:,}" if limit is not None else "no limit"))
    click.echo(f"split:   {split}")
    shape = "x".join(map(str, ds.input_shape))
    click.echo(f"sizes:   train {len(ds.train):,}  val {len(ds.val):,}  test {len(ds.test):,}  "
               f"(image {shape} {'uint8' if ds.scale == '0-255' else 'float32 ' + ds.scale}; "
               f"{'full' if is_source(name) else 'official'} {i['official_sizes']['train']:,} / "
               f"{i['official_sizes']['test']:,})")
    of = {"0-255": "per channel, x/255, train split", "0-1": "per channel, x (already 0-1), train split",
          "standardized": "none: given standardized"}[ds.scale]
    click.echo("mean:    " + ", ".join(f"{m:.4f}" for m in ds.mean) + f"   ({of})")
    click.echo("std:     " + ", ".join(f"{s:.4f}" for s in ds.std))
    k = ds.num_classes
    counts = {n: torch.bincount(s.y, minlength=k).tolist() for n, s in
              (("train", ds.train), ("val", ds.val), ("test", ds.test))}
    w = max(len("class"), *(len(c) for c in ds.classes))
    click.echo(f"{'label':>5}  {'class':<{w}}  {'train':>7}  {'val':>6}  {'test':>6}")
    for label, cname in enumerate(ds.classes):
        click.echo(f"{label:>5}  {cname:<{w}}  {counts['train'][label]:>7,}  {counts['val'][label]:>6,}  "
                   f"{counts['test'][label]:>6,}")


@data.command("fetch")
@click.argument("name")
@DATA_DIR
@click.option("--mirror", default=None, metavar="URL",
              help="Base URL to download from instead of the official sources ($ABLAB_DATA_MIRROR).")
@click.option("--force", is_flag=True, help="Download again even if a verified copy exists.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def fetch_cmd(name: str, data_dir: Path | None, mirror: str | None, force: bool, no_progress: bool) -> None:
    """Download NAME from its official sources (or --mirror) and verify every SHA-256.

    Files are written atomically (temporary file, checksum, rename) to DIR/NAME with --data-dir, else
    $ABLAB_DATA/NAME, else ~/.cache/ablab/NAME.

    \b
    Example:
      ablab data fetch mnist
      ablab data fetch cifar10 --data-dir ~/datasets
    """
    from ablab.data import fetch

    bar = None if no_progress else _DownloadBar()
    try:
        found, downloaded = fetch(name, data_dir, mirror=mirror, force=force, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if downloaded:
        click.echo(f"{name}: downloaded and verified in {found.dir}")
    else:
        click.echo(f"{name}: already present and verified in {found.dir} ({found.how}); nothing to do")


@data.command("verify")
@click.argument("name")
@DATA_DIR
def verify_cmd(name: str, data_dir: Path | None) -> None:
    """Check NAME's files: SHA-256 against the pinned sums, then format, counts, labels, class balance.

    \b
    Example:
      ablab data verify fashion-mnist
    """
    import torch

    from ablab.data import get_spec, verify_dataset

    found, checks, raw = verify_dataset(name, data_dir)
    spec = get_spec(name)
    click.echo(f"{spec.name}: {found.dir} ({found.how}, {found.fmt})")
    for c in checks:
        click.echo(f"  ok  {c.path.name:<28} {c.detail}")
    counts = torch.bincount(raw.train.y, minlength=len(spec.classes)).tolist()
    click.echo(f"  train {len(raw.train):,} images, test {len(raw.test):,} images, "
               f"image {'x'.join(map(str, raw.train.x.shape[1:]))}, labels 0..{len(spec.classes) - 1}")
    balance = (f"{counts[0]:,} per class" if len(set(counts)) == 1
               else "per class " + ", ".join(f"{n:,}" for n in counts))
    click.echo(f"  train class balance: {balance}")
    click.echo(f"{spec.name}: verified")


class _DownloadBar:
    """A rich progress bar on stderr fed by ``fetch``'s ``progress(file, done, total)`` callback: one task
    per file."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.tasks: dict[str, object] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if name not in self.tasks:
            if not self.tasks:
                self.bar.start()
            self.tasks[name] = self.bar.add_task(name, total=total)
        self.bar.update(self.tasks[name], completed=done)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.tasks:
            self.bar.stop()
