"""``ablab train`` and ``ablab eval``: thin wrappers over ablab.train.fit / evaluate_checkpoint.

torch is imported inside the commands so ``ablab --help`` stays instant.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ablab.cli.options import config_options, flag_error
from ablab.models.construct import parse_assignments, parse_model_args
from ablab.models.resolve import absolute_reference
from ablab.train.config import FIELDS, ConfigError, TrainConfig


def accuracy_line(acc: float | None, n: int, diverged: bool = False) -> str:
    """The line both commands end with, so `train` and `eval` can be compared by eye (or by diff)."""
    if acc is None and diverged:
        return f"test accuracy: n/a (diverged before a complete epoch; the test split has {n:,} samples)"
    if acc is None:
        return "test accuracy: n/a (empty test split)" if n == 0 else f"test accuracy: n/a ({n:,} test samples)"
    return f"test accuracy: {acc:.4f} ({round(acc * n)}/{n})"


def _parse_set(items: tuple[str, ...]) -> dict[str, Any]:
    """``--set key=value`` pairs, parsed as ``--model-arg`` is (TOML literals; true/false in any case; none)."""

    keyed = tuple(k.replace("-", "_") + sep + v for k, sep, v in (i.partition("=") for i in items))
    out = parse_assignments(keyed, "--set", ConfigError)
    for key in out:
        if key not in FIELDS:
            raise ConfigError(f"--set {key}: unknown key '{key}' (see TrainConfig fields in docs/train.md)")
    return out


@click.command("train")
@click.argument("model")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
              help="Constructor argument of your own model (FILE.py:NAME), repeatable; values are TOML "
                   "literals: --model-arg use_dropout=true --model-arg width=64")
@click.option("--variant", "variants", multiple=True, metavar="NAME[=VALUE]",
              help="Regularization variant (repeatable): baseline, dropout, l2, adamw, l2-penalty, bn, augment, "
                   "label-smoothing, early-stopping. E.g. --variant bn --variant dropout=0.3")
@config_options(skip=("model",))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any TrainConfig field by its key, e.g. --set step_epochs=4 (values as for --model-arg).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write metrics.json, metrics.csv and checkpoint/ here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the final line.")
def train(model: str, model_args: tuple[str, ...], variants: tuple[str, ...], sets: tuple[str, ...],
          out_dir: str | None, quiet: bool, **fields: Any) -> None:
    """Train MODEL and print its test accuracy. MODEL is a preset, a spec string or file, or your own
    nn.Module: path/to/file.py:Name or package.module:Name (a class or a function returning a module).

    Every option below --variant is a TrainConfig field (docs/train.md); --set reaches them by key.

    \b
    Example:
      ablab train lenet5 --data fashion-mnist --variant bn --epochs 12 --out runs/lenet5-bn
      ablab eval runs/lenet5-bn/checkpoint
      ablab train tests/models/mymodel.py:LeNet5V1 --model-arg use_batch_norm=true --epochs 12
    """
    from ablab.train import apply_variants, fit

    try:
        config = TrainConfig(model=absolute_reference(model), model_args=parse_model_args(model_args), **fields)
    except ConfigError as e:
        raise flag_error(e) from None
    if sets:
        config = TrainConfig.from_dict({**config.to_dict(), **_parse_set(sets)}, where="--set")
    config = apply_variants(config, variants)
    progress = None if quiet else _Progress(config.epochs)
    try:
        result = fit(config, callback=progress, out_dir=out_dir)
    finally:
        if progress is not None:
            progress.close()
    if result.status == "diverged":
        d = result.diverged or {}
        click.echo(f"diverged: loss {d.get('loss')} at epoch {d.get('epoch')}, step {d.get('step')}; "
                   f"{len(result.history)} complete epoch(s) kept")
    if result.checkpoint:
        click.echo(f"checkpoint: {result.checkpoint}")
    click.echo(accuracy_line(result.final.get("test_acc"), int(result.info.get("n_test", 0)),
                             result.status == "diverged"))


def _where(device: dict[str, Any]) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: the device line of the progress header."""
    where, name = str(device.get("device", "?")), device.get("name")
    return f"{where} ({name})" if name and device.get("type") != "cpu" else where


class _Progress:
    """A rich progress bar fed by fit's callback: it redraws on epoch ends and every 50 steps (the
    trainer's existing check points), so it adds no work to the training loop. Without a terminal it
    prints only the per-epoch lines."""

    def __init__(self, epochs: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("steps"), TimeElapsedColumn(), console=self.console, transient=True)
        self.epochs = epochs
        self.task: Any = None
        self.steps = 1

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            self.steps = int(data["steps_per_epoch"])
            self.console.print(f"dataset: {data['dataset_source']} · pixels {data['pixel_scale']}", soft_wrap=True,
                               markup=False, highlight=False)
            self.console.print(data["spec"], soft_wrap=True, markup=False, highlight=False)
            self.console.print(f"{data['params']:,} parameters · {data['n_train']:,} train / {data['n_val']:,} val / "
                               f"{data['n_test']:,} test · {self.steps} steps per epoch · {data['threads']} thread(s)"
                               f" · {_where(data.get('device') or {})}",
                               soft_wrap=True, highlight=False)
            if self.live:
                self.bar.start()
                self.task = self.bar.add_task("epoch 1", total=self.epochs * self.steps)
        elif event == "resume":
            self.console.print(f"resuming after epoch {data['epoch']} (its saved state in the --out folder)",
                               highlight=False)
        elif event == "progress" and self.task is not None:
            done = (int(data["epoch"]) - 1) * self.steps + int(data["batch"])
            self.bar.update(self.task, completed=done, description=f"epoch {data['epoch']}")
        elif event == "epoch":
            m = data
            val = f"  val {m['val_acc']:.4f}" if m["val_acc"] is not None else ""
            self.console.print(f"epoch {m['epoch']:>3}  loss {m['train_loss']:.4f}  train {m['train_acc']:.4f}{val}  "
                               f"test {m['test_acc']:.4f}  ({m['train_time_s']:.1f} s + {m['eval_time_s']:.1f} s)",
                               soft_wrap=True, highlight=False)
            if self.task is not None:
                self.bar.update(self.task, completed=int(m["epoch"]) * self.steps)

    def close(self) -> None:
        if self.live:
            self.bar.stop()


@click.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--model", "model_ref", default=None, metavar="FILE.py:NAME",
              help="Your own model's code, checked against the SHA-256 recorded at training (a checkpoint of your "
                   "own model needs this or --trust-code).")
@click.option("--trust-code", is_flag=True,
              help="Import the model code the checkpoint records (only for checkpoints you trust).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Folder holding the dataset files.")
@click.option("--device", default=None, metavar="auto|cpu|cuda|cuda:N|mps",
              help="Where to evaluate (default: the device it was trained on when available here, else auto).")
@click.option("--data", "data", default=None, metavar="SOURCE",
              help="Score on another dataset (a name or an own-data source: npz:FILE, idx:DIR, folder:DIR); "
                   "its classes and image shape must match the checkpoint's.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True,
              help="Which split to score (the recorded accuracy is compared only on the test split).")
@click.option("--per-class", is_flag=True, help="Print the per-class accuracy and the confusion matrix.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_cmd(checkpoint: str, model_ref: str | None, trust_code: bool, data_dir: str | None, device: str | None,
             data: str | None, split: str, per_class: bool, as_json: bool) -> None:
    """Evaluate CHECKPOINT on its dataset's test split and check it reproduces the recorded accuracy.

    The checkpoint's files are verified against their recorded SHA-256 first. A checkpoint never makes
    ablab run code on its own: a model of your own is rebuilt only from the code you name (--model, checked
    against the recorded SHA-256) or, with --trust-code, from the reference it records — never from code
    inside the checkpoint folder.

    \b
    Example:
      ablab eval runs/lenet5-bn/checkpoint
      ablab eval runs/v1-bn/checkpoint --model src/mymodel.py:LeNet5V1
      ablab eval runs/lenet5-bn/checkpoint --data npz:my_shirts.npz --per-class
    """
    from ablab.train import evaluate_checkpoint

    res = evaluate_checkpoint(checkpoint, data_dir=data_dir, device=device, trust_code=trust_code,
                              model_ref=absolute_reference(model_ref) if model_ref else None, data=data, split=split,
                              per_class=per_class)
    for note in res["notes"]:
        click.echo(f"warning: {note}", err=True)
    if as_json:
        click.echo(json.dumps(res))
        return
    click.echo(f"dataset: {res['dataset']}" + (f" ({split} split)" if split != "test" else ""))
    click.echo(f"test loss: {res['test_loss']:.6f}" if res["test_loss"] is not None else "test loss: n/a")
    if res["reproduced"]:
        click.echo(f"reproduced: the recorded test accuracy {res['recorded_acc']:.4f}, exactly")
    elif res["recorded_acc"] is None:
        click.echo("not compared: the checkpoint records no test accuracy")
    click.echo(accuracy_line(res["test_acc"], res["n"]).replace("test ", f"{split} "))
    if per_class:
        click.echo(per_class_text(res["per_class"], res["confusion"]))


def per_class_text(rows: list[dict[str, Any]], confusion: list[list[int]] | None) -> str:
    """The per-class accuracy table (``evaluate_checkpoint``'s ``per_class`` rows) and the confusion matrix
    (rows: true class, columns: predicted)."""
    if confusion is None:
        return "per class: n/a (empty split)"
    classes = [r["class"] for r in rows]
    width = max(len(c) for c in classes)
    lines = ["", f"{'class':<{width}}  {'n':>6}  {'correct':>7}  accuracy"]
    for r in rows:
        acc = f"{100 * r['accuracy']:7.2f}%" if r["accuracy"] is not None else "     n/a"
        lines.append(f"{r['class']:<{width}}  {r['n']:>6}  {r['correct']:>7}  {acc}")
    cw = max(5, *(len(str(v)) for row in confusion for v in row))
    lines += ["", "confusion matrix (rows: true class, columns: predicted, same order):",
              " " * (width + 2) + " ".join(f"{k:>{cw}}" for k in range(len(classes)))]
    lines += [f"{c:<{width}}  " + " ".join(f"{v:>{cw}}" for v in row)
              for c, row in zip(classes, confusion, strict=True)]
    return "\n".join(lines)
