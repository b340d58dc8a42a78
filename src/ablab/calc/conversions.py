"""What other tools print, computed from ablab's exact per-layer numbers — so users can see why they disagree.

Each function is a documented conversion, checked against the real tool in the tests (the tools are
test oracles only, never imported here). ``s`` is a :class:`Summary` whose MACs are for its batch.

* **torch.utils.flop_counter.FlopCounterMode** counts 2 FLOPs per multiply-add of matmuls and
  convolutions (bias adds, pooling, normalization, activations: nothing):
  ``FLOPs = 2 * MACs``.
* **torchinfo** "Total mult-adds" charges every parameter of a module once per output position: a
  conv ``(weights + bias) * batch * output positions`` (so the bias counts as one MAC per output), any
  other module with parameters ``batch * params`` — right for a linear layer on a vector (MACs + bias),
  an undercount for a linear layer on a C x L map (it ignores L), and ``2C`` per sample for batch norm:
  ``mult-adds = MACs + bias outputs of conv/linear + batch * 2C per affine batch norm``.
  For a traced module it is computed per module *call*, as torchinfo does: a layer called four times
  (a shared ``nn.Linear``) is charged four times, parameters used outside a leaf module (``self.w * x``)
  and functional operators nothing, an RNN's ``weight_ih_l0``-style parameters once per output position
  of its first two axes (sequence x batch).
* **fvcore** ``FlopCountAnalysis`` counts one "flop" per multiply-add of convs and linear layers (no
  bias), batch norm in eval mode as 1 per element (2 with affine), layer and group norm as 4 per
  element (5 with affine), adaptive average pooling as 1 per *input* element; other pooling and
  activations are skipped: ``flops = MACs + per-element norm cost + adaptive pooling inputs``.
"""

from __future__ import annotations

from ablab.calc.result import Summary


def flop_counter_flops(s: Summary) -> int:
    """What ``torch.utils.flop_counter.FlopCounterMode`` reports: 2 FLOPs per MAC."""
    return 2 * s.totals.macs


def torchinfo_mult_adds(s: Summary) -> int:
    """What torchinfo's ``summary(...).total_mult_adds`` reports for the same network and batch."""
    total = 0
    for row in s.layers:
        if row.call_params is not None:  # a traced module: per call, torchinfo's calculate_macs
            named, inner = row.call_params
            positions = _prod(row.output_shape[1:]) if "conv" in row.kind else 1
            total += s.batch * positions * named + s.batch * (row.output_shape[0] if row.output_shape else 1) * inner
            continue
        if row.kind in ("conv1d", "conv2d"):
            # (weights + bias) * batch * output positions; out_channels * positions = output elements
            positions = 1
            for x in row.output_shape[1:]:
                positions *= x
            total += row.macs + s.batch * row.bias * positions
        elif row.params:  # linear, batch norm, modules: every parameter once per sample
            total += s.batch * row.params
    return total


def fvcore_flops(s: Summary) -> int:
    """What fvcore's ``FlopCountAnalysis(model.eval(), x).total()`` reports."""
    total = 0
    for row in s.layers:
        if row.kind in ("conv1d", "conv2d", "linear"):
            total += row.macs
        elif row.kind == "batchnorm":
            elements = s.batch
            for x in row.output_shape:
                elements *= x
            total += elements * (2 if row.params else 1)
        elif row.kind in ("layernorm", "groupnorm"):
            total += s.batch * _prod(row.output_shape) * (5 if row.params else 4)
        elif row.kind == "adaptiveavgpool2d":
            total += s.batch * _prod(row.input_shape)
    return total


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for x in shape:
        out *= x
    return out
