"""The model suite of issue 20: 57 networks (tests/models/suite_models.py) — torchinfo's test fixtures, nn.LSTM /
GRU / RNN and their cells, nn.Transformer* in both layouts, an embedding + LSTM text model and torchvision's
resnet18, mobilenet_v2, efficientnet_b0, vgg11, googlenet and vit written out — each checked exactly against
torch itself: parameters, MACs against FlopCounterMode on the MATH / decomposed path in eval and in train mode,
and the FLOPs of a training step (FlopCounterMode over the same forward, loss and backward, its grouped-conv
weight-gradient formula fixed: see suite_models.conv_backward_flop). Models that cannot be sized or trained
end in one clear error. With torchvision importable, its own six models are checked too (slow)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from ablab.errors import UserError  # noqa: E402
from ablab.sizeup import summary  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "models"))
import suite_models as S  # noqa: E402

# what a user is told instead of numbers
NOTHING = "nothing to size up: forward ran no operator on the input"
CANNOT_TRAIN = "the model cannot train: its output (float32) does not depend on any trainable parameter"
NO_SUMMARY = {"torchinfo/IdentityModel": NOTHING, "torchinfo/ParameterListModel": NOTHING}
SLOW = {"mobilenet_v2", "efficientnet_b0"}  # depthwise convolutions off oneDNN: ~25 s each here


def names(select=lambda name: True) -> list:  # noqa: ANN001
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in S.SUITE if select(n)]


def sized(case: S.Case, **kw: object):  # noqa: ANN201
    with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False):
        return summary(case.model, input_data=case.inputs, batch_dim=case.batch_dim, kwargs=case.kwargs, **kw)


def build(name: str) -> S.Case:
    torch.manual_seed(0)
    return S.SUITE[name]()


def test_the_suite_has_at_least_40_models() -> None:
    assert len(S.SUITE) >= 40
    assert sum(n.startswith("torchinfo/") for n in S.SUITE) == 36


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", names(lambda n: n not in NO_SUMMARY))
def test_params_and_macs_equal_flopcountermode(name: str, mode: str) -> None:
    case = build(name)
    s = sized(case, mode=mode)
    assert s.totals.params == sum(p.numel() for p in {id(p): p for p in case.model.parameters()}.values())
    assert s.totals.trainable_params == sum(p.numel() for p in set(case.model.parameters()) if p.requires_grad)
    assert 2 * s.totals.macs == S.oracle(case, mode, step=False)
    assert not [f for f in s.findings if f.code in ("uncosted-op", "data-dependent")], s.findings


@pytest.mark.parametrize("name", names(lambda n: n not in NO_SUMMARY))
def test_training_step_flops_equal_flopcountermode(name: str) -> None:
    case = build(name)
    if not case.trains:
        with pytest.raises(UserError, match=CANNOT_TRAIN.replace("(", r"\(").replace(")", r"\)")):
            sized(case, training=True)
        return
    s = sized(case, training=True, mode="train")
    assert s.training_flops["step"] == S.oracle(case, "train", step=True)


@pytest.mark.parametrize("name", list(NO_SUMMARY))
def test_a_model_that_computes_nothing_is_one_error(name: str) -> None:
    case = build(name)
    n = sum(p.numel() for p in case.model.parameters())
    with pytest.raises(UserError, match=f"{NOTHING}.*the model has {n:,} parameters"):
        sized(case)


def test_torchinfo_fixtures_ablab_cannot_size_are_one_error_each() -> None:
    """The rest of torchinfo's fixtures: what each is told (torchinfo prints a table for some of these)."""
    cases = [
        (S.UninitializedParameterModel(), (torch.randn(2, 8),), False, "parameter param is not initialised yet"),
        (S.HighlyNestedDictModel(), (torch.randn(2, 10),), False, "the model returned dict, not a tensor"),
        (S.NumpyModel(), (torch.randn(2, 3),), False, "the model returned ndarray, not a tensor"),
        (S.NumpyModel(), (torch.randn(2, 3).numpy(),), False, "input_data: no tensor among the inputs"),
        (S.EmptyModule(), (), False, "input_data: no tensor among the inputs"),
        (S.RegisterParameter(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)), (torch.randn(2, 2),), True,
         "the model cannot train: a tensor of shape 2x2 saved for backward was modified in place"),
    ]
    for model, data, training, message in cases:
        with pytest.raises(UserError, match=message):
            summary(model, input_data=data, training=training)
    # RegisterParameter's forward alone is fine: 14 parameters, 2 linear layers of 2x2 on 2 samples = 16 MACs
    assert summary(S.RegisterParameter(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)),
                   input_data=torch.randn(2, 2)).totals.macs == 16


@pytest.mark.parametrize("name", [n for n in S.SUITE if n.startswith(("nn.", "text-", "vit", "torchinfo/LSTM"))])
def test_fused_kernels_count_the_same_as_the_math_path(name: str) -> None:
    """Without forcing the MATH path: oneDNN's RNN and CPU flash attention, counted by formula, give the same."""
    case = build(name)
    fused = summary(case.model, input_data=case.inputs, batch_dim=case.batch_dim, kwargs=case.kwargs)
    assert fused.totals.macs == sized(case).totals.macs


def test_googlenet_counts_its_aux_heads_in_train_mode_only() -> None:
    case = build("googlenet")
    eval_macs, train_macs = sized(case, mode="eval").totals.macs, sized(case, mode="train").totals.macs
    assert (eval_macs, train_macs) == (244_486_144, 257_175_552)  # at 3x64x64, batch 2: the heads add 12,689,408


@pytest.mark.parametrize("name", list(S.WRITTEN_OUT))
def test_written_out_architectures_are_torchvisions(name: str) -> None:
    """At full size, the written-out networks have exactly torchvision's parameter count (built on the meta
    device: nothing allocated)."""
    with torch.device("meta"):
        model = S.WRITTEN_OUT[name]()
    assert sum(p.numel() for p in model.parameters()) == S.TORCHVISION_PARAMS[name]


def torchvision_models():  # noqa: ANN201
    try:  # a CUDA build of torchvision beside a CPU torch raises RuntimeError on import, not ImportError
        from torchvision import models
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"torchvision is not importable here: {type(e).__name__}: {e}")
    return models


@pytest.mark.slow
@pytest.mark.parametrize("name", list(S.TORCHVISION_PARAMS))
def test_torchvision_models(name: str) -> None:
    """torchvision's own models at 3x224x224, batch 1: parameters, MACs in eval and train mode, a training step."""
    models = torchvision_models()
    torch.manual_seed(0)
    model = getattr(models, name)(**({"aux_logits": True, "init_weights": False} if name == "googlenet" else {}))
    case = S.Case(model, (torch.randn(1, 3, 224, 224),))
    assert sum(p.numel() for p in model.parameters()) == S.TORCHVISION_PARAMS[name]
    for mode in ("eval", "train"):
        s = sized(case, mode=mode)
        assert s.totals.params == S.TORCHVISION_PARAMS[name]
        assert 2 * s.totals.macs == S.oracle(case, mode, step=False)
    assert sized(case, training=True, mode="train").training_flops["step"] == S.oracle(case, "train", step=True)
