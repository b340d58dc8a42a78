"""``ablab summary``: parse the flags, call ``ablab.sizeup.summary``, print a table or JSON.

No torch import on this path: a spec, a preset or a spec file is sized up in pure Python.
"""

from __future__ import annotations

import sys

import click

from ablab.calc.costs import DOT_CONVENTIONS, Conventions
from ablab.calc.memory import DTYPE_BYTES, OPTIMIZER_STATES
from ablab.cli.keys import flags
from ablab.models.construct import instantiate, parse_model_args
from ablab.models.resolve import is_reference
from ablab.sizeup import summary as size_up


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
              help="Constructor argument of your own model (FILE.py:NAME), repeatable; TOML values.")
@click.option("--input", "-i", "input_shape", metavar="CxHxW", multiple=True,
              help="Input shape without the batch axis (1x28x28, 3x32x32, 784). Default: the spec's/preset's. "
                   "Own modules: repeat for several inputs; TYPE:SHAPE for other element types (long:16).")
@click.option("--batch", "-b", default=None, type=click.IntRange(min=1),
              help="Batch size: MACs, FLOPs and memory are for the whole batch. Default: 1.")
@click.option("--batch-dim", default=None, type=click.IntRange(min=0),
              help="Own modules: the batch axis of the input (1: sequence first). Default: 0, or 1 for torch's "
                   "sequence-first modules.")
@click.option("--mode", default=None, type=click.Choice(["eval", "train"]),
              help="Own modules: trace in this mode. Default: eval for the counts, train for --training.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(list(DTYPE_BYTES)),
              help="Element type of activations, parameters, gradients and optimizer state.")
@click.option("--optimizer", default="sgd", show_default=True, type=click.Choice(list(OPTIMIZER_STATES)),
              help="Optimizer state in training memory: sgd none, momentum 1x, adam 2x the parameters.")
@click.option("--training", is_flag=True,
              help="Also count the FLOPs of a training step: forward + loss + backward (own modules: traced).")
@click.option("--measure", is_flag=True,
              help="Also run one training step under the allocator (loads torch) and print its measured peak "
                   "beside the estimated training memory, naming the backend workspace (oneDNN, cuDNN) in the gap.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema in docs/summary.md) instead of a table.")
@click.option("--explain", is_flag=True, help="Print each layer's formulas with the numbers substituted.")
@click.option("--dot", default="2n", show_default=True, type=click.Choice(list(DOT_CONVENTIONS)),
              help="FLOPs of a dot product of length n (2n: FLOPs = 2*MACs; 2n-1: the first add is free).")
@click.option("--bias-flops/--no-bias-flops", default=False, show_default=True,
              help="Count one FLOP per output element for the bias add.")
@click.option("--pool-flops/--no-pool-flops", default=False, show_default=True,
              help="Count pooling: max k-1 comparisons, avg k per output element.")
@click.option("--act-flops", default=0, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="FLOPs per element charged to every activation.")
@click.option("--norm-flops/--no-norm-flops", default=False, show_default=True,
              help="Count batch norm as 2 FLOPs per element (inference).")
def summary(model: str, model_args: tuple[str, ...], input_shape: tuple[str, ...], batch: int | None,
            batch_dim: int | None, mode: str | None, dtype: str, optimizer: str, training: bool, measure: bool,
            as_json: bool,
            explain: bool, dot: str, bias_flops: bool, pool_flops: bool,
            act_flops: int, norm_flops: bool) -> None:
    """Size up a network: shapes, parameters, MACs/FLOPs, memory, receptive field, lint.

    MODEL is a preset (lenet5, lenet5-modern, cifar-lenet, mlp:H1,...,OUT), a spec file (.json or spec
    text), a spec string, or your own nn.Module: path/to/file.py:Name or package.module:Name (a class
    or a function returning a module; give --input). The conventions in force are printed under the table.

    \b
    Example:
      ablab summary lenet5 --input 1x28x28
      ablab summary "conv(32,3,s=2,pad=same) relu conv(64,3,s=2,pad=same) relu flatten linear(10)" \\
          --input 3x200x300 --batch 50 --optimizer adam
      ablab summary mlp:256,10 --input 784 --json
      ablab summary mymodel.py:LeNet5V1 --input 1x28x28 --model-arg use_batch_norm=true
      ablab summary mymodel.py:Siamese --input 1x28x28 --input 1x28x28 --mode eval
      ablab summary mymodel.py:TextModel --input long:16
      ablab summary lenet5 --batch 32 --measure
    """

    conv = Conventions(dot=dot, bias=bias_flops, pooling=pool_flops, activation=act_flops, norm=norm_flops)
    target: object = model
    if is_reference(model):  # your own module: import and build it (torch loads only on this route)

        target = instantiate(model, parse_model_args(model_args))
    elif model_args:
        raise click.UsageError("--model-arg needs a model reference (FILE.py:NAME or package.module:NAME)")
    own = not isinstance(target, str)
    if not own and (len(input_shape) > 1 or batch_dim is not None or mode):
        raise click.UsageError("several --input, --batch-dim and --mode need your own module (FILE.py:NAME)")
    shape: object = (list(input_shape) if len(input_shape) > 1 else input_shape[0]) if input_shape else None
    extra = {"batch_dim": batch_dim, "mode": mode} if own else {}
    with flags({"input_shape": "--input", "batch": "--batch", "batch_dim": "--batch-dim", "mode": "--mode",
                "dtypes": "--input"}):
        result = size_up(target, shape, batch=batch, dtype=dtype, optimizer=optimizer, conventions=conv,
                         training=training, measure=measure, **extra)
    if as_json:
        click.echo(result.to_json())
        return
    from rich.console import Console

    from ablab.calc.render import print_summary

    # a terminal gets its own width; a pipe or file gets 120 columns rather than rich's default 80
    print_summary(result, Console(highlight=False, width=None if sys.stdout.isatty() else 120), explain=explain)
