"""One memory model for specs and modules (issue 20): the same quantities under the same names — layer
outputs, kept for backward, training memory — a spec's from the per-kind rules (``ablab.calc.memory.KEEPS``,
pure Python), a module's from the trace, checked against each other for every layer kind; and ``measure``,
the allocator's peak of one real training step beside the estimate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ablab.calc.costs import Conventions  # noqa: E402
from ablab.calc.measure import measure_step  # noqa: E402
from ablab.calc.memory import KEEPS, kept_for_backward  # noqa: E402
from ablab.calc.modulesize import per_batch_saved, size_module  # noqa: E402
from ablab.calc.shapes import resolve  # noqa: E402
from ablab.layers import grammar_kinds  # noqa: E402
from ablab.models.builder import build  # noqa: E402
from ablab.models.source import load_spec  # noqa: E402
from ablab.sizeup import summary  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "models"))
import mymodel  # noqa: E402

ONE = {"adaptiveavgpool2d": "adaptiveavgpool2d(2)", "avgpool2d": "avgpool2d(2)", "conv2d": "conv2d(4,3)",
       "dropout": "dropout(0.5)", "groupnorm": "groupnorm(2)", "maxpool2d": "maxpool2d(2)", "avgpool1d": "avgpool1d(2)",
       "conv1d": "conv1d(4,3)", "maxpool1d": "maxpool1d(2)", "linear": "linear(6)"}


def chain(kind: str) -> tuple[str, tuple[int, ...]]:
    """A spec with ``kind`` between a weighted layer and a flatten + linear head (its input and output are
    somebody's output and somebody's saved input)."""
    text = ONE.get(kind, kind)
    if kind.endswith("1d"):
        return f"conv1d(4,3) {text} relu flatten linear(3)", (2, 16)
    if kind == "linear":
        return f"flatten linear(8) {text} tanh linear(3)", (2, 6, 6)
    return f"conv2d(4,3) {text} flatten linear(3)", (2, 8, 8)


def test_every_grammar_kind_has_a_rule() -> None:
    assert set(grammar_kinds()) <= set(KEEPS)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kind", grammar_kinds())
def test_spec_rules_equal_what_autograd_keeps(kind: str, batch: int) -> None:
    """Per kind: the bytes the spec's rules say backward keeps == what the trace of its torch model saw
    (train mode, float32), in total and per row."""
    text, shape = chain(kind)
    spec = load_spec(text)
    layers = resolve(spec, shape)
    rules = kept_for_backward(layers, batch, "float32")
    parts = size_module(build(spec, shape), Conventions(), input_size=shape, mode="train", training=True)
    traced = [per_batch_saved(s, batch, 4) for s in parts.saved]
    assert sum(rules) == sum(traced) > 0
    if kind not in ("dropout", "batchnorm"):  # the trace charges the mask and the running statistics, saved
        assert rules == traced  # before the layer's own operator is recorded, to the layer before it


LENET_KEPT = (6 * 28 * 28 + 6 * 14 * 14 + 16 * 10 * 10 + 16 * 5 * 5 + 120 + 84) * 4  # per sample: 32,336 B


@pytest.mark.parametrize("batch", [1, 32])
def test_preset_and_module_lenet5_report_the_same_memory(batch: int) -> None:
    """The preset lenet5 and the course's LeNet5V1 (the same network as an nn.Module) print the same memory."""
    preset = summary("lenet5", batch=batch)
    module = summary(mymodel.LeNet5V1(), (1, 28, 28), batch=batch)
    p, m = preset.totals.memory, module.totals.memory
    assert p == m.__class__(**{**m.__dict__, "peak_layer": p.peak_layer})  # all but the peak layer's name
    assert p.activation_bytes == 15_002 * 4 * batch  # every layer's output
    assert p.kept_bytes == LENET_KEPT * batch  # tanh outputs, pooled maps and the flatten: conv/linear inputs
    # input + kept + params + grads (SGD: no state): 529,120 B at batch 1, 1,628,752 B at 32
    assert p.training_bytes == (784 * 4 + LENET_KEPT) * batch + 2 * 61_706 * 4 == {1: 529_120, 32: 1_628_752}[batch]
    assert [r.activation_bytes for r in preset.layers] == [r.activation_bytes for r in module.layers]
    assert [r.kept_bytes for r in preset.layers] == [r.kept_bytes for r in module.layers]
    assert [r.kept_bytes for r in preset.layers][:4] == [0, 6 * 28 * 28 * 4 * batch, 6 * 14 * 14 * 4 * batch, 0]
    text = [preset.render(), module.render()]
    for t in text:
        assert "output bytes" in t and "kept for bwd" not in t
        assert f"kept for backward {LENET_KEPT * batch:,} B" in t
        assert f"Training (batch {batch}, sgd): {p.training_bytes:,} B" in t


def test_measure_an_mlp_matches_the_estimate_but_for_the_loss() -> None:
    """mlp 784-256-10 at batch 32, SGD: the estimate is input 100,352 + kept 32,768 (the ReLU's output) + params
    814,120 + grads 814,120 = 1,761,360 B; the allocator's peak is 1,288 B more (the 32x10 log-softmax of the
    loss, 1,280 B, and the loss itself)."""
    s = summary("mlp:256,10", "1x28x28", batch=32, measure=True)
    m = s.measured
    assert s.totals.memory.training_bytes == 1_761_360
    assert (m.device, m.before_bytes, m.backend) == ("cpu", 100_352 + 814_120, "")
    assert m.peak_bytes == 1_762_648
    assert "Measured peak (one training step, cpu, torch.profiler (profile_memory)): 1,762,648 B = estimate " \
           "1,761,360 + 1,288 B (+0.1%)" in s.render(width=200)


def test_measure_names_onednn_padding_on_lenet5() -> None:
    """LeNet-5 at batch 32: oneDNN stores the first conv's 6-channel output in blocks of 8 (AVX2) or 16
    (AVX-512) channels, so the measured peak is far above the estimate; without oneDNN the peak is 2,154,176 B,
    and what remains above the estimate (525,424 B) is the gradients of the activations during backward."""
    preset = summary("lenet5", batch=32, measure=True)
    module = summary(mymodel.LeNet5V1(), (1, 28, 28), batch=32, measure=True)
    assert preset.measured == module.measured
    m = preset.measured
    assert m.backend == "oneDNN" and m.largest_backend_alloc[0] == "aten::mkldnn_convolution"
    assert m.largest_backend_alloc[1] in (32 * 8 * 28 * 28 * 4, 32 * 16 * 28 * 28 * 4)  # 6 channels padded
    assert m.without_backend_bytes == 2_154_176 < m.peak_bytes
    assert m.without_backend_bytes - preset.totals.memory.training_bytes == 525_424
    text = preset.render(width=200)
    assert "oneDNN workspace: with oneDNN off the peak is 2,154,176 B" in text and "blocked layouts" in text
    assert preset.to_dict()["measured"]["without_backend_bytes"] == 2_154_176


def test_cli_measure() -> None:
    from click.testing import CliRunner

    from ablab.cli import cli

    r = CliRunner().invoke(cli, ["summary", "mlp:256,10", "--input", "784", "--batch", "32", "--measure"])
    assert r.exit_code == 0, r.output
    assert "Measured peak (one training step, cpu, torch.profiler (profile_memory)): 1,762,648 B" in r.output
    assert "USDT" not in r.output and "TF32" not in r.output


def test_measure_on_a_model_that_cannot_train_is_one_error() -> None:
    from ablab.errors import UserError

    frozen = torch.nn.Linear(4, 2).requires_grad_(False)
    with pytest.raises(UserError, match="the model cannot train: its output"):  # the train-mode trace says it first
        summary(frozen, (4,), measure=True)
    with pytest.raises(UserError, match="measure: the model has no trainable parameter"):
        measure_step(frozen, (torch.randn(2, 4),), {})

    class Breaks(torch.nn.Module):  # eval mode works; train mode raises
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:
                raise ValueError("no training here")
            return self.fc(x)

    assert summary(Breaks(), (4,)).totals.macs == 8
    with pytest.raises(UserError, match=r"model: the model raised in train mode \(the training step's trace\): "
                                        "ValueError: no training here"):
        summary(Breaks(), (4,), measure=True)
    with pytest.raises(UserError, match="measure: the training step failed: ValueError: no training here"):
        measure_step(Breaks(), (torch.randn(2, 4),), {})
