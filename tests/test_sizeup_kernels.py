"""Recurrent and attention layers: every fused kernel the CPU dispatcher emits for them is counted by
formula, and agrees with the MATH / decomposed path of the same module (issue 20, cases 1 and 2)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ablab.calc.costs import Conventions  # noqa: E402
from ablab.calc.ops import op_cost  # noqa: E402
from ablab.sizeup import summary  # noqa: E402


def flop_counter_macs(model: nn.Module, *args: torch.Tensor) -> int:
    model.eval()
    with FlopCounterMode(display=False) as f:
        model(*args)
    return f.get_total_flops() // 2


def seeded(module: type, *a: object, **k: object) -> nn.Module:
    torch.manual_seed(0)
    return module(*a, **k)


# --- recurrent layers: T*N*G*H*(I+H) per layer (G: 4 LSTM, 3 GRU, 1 RNN)


def test_lstm_two_layers_on_20_steps_of_4_sequences() -> None:
    """nn.LSTM(64,128,2) on 20x4x64 (sequence first): 20*4*4*128*((64+128) + (128+128)) MACs."""
    s = summary(seeded(nn.LSTM, 64, 128, 2), input_data=torch.randn(20, 4, 64))
    assert s.totals.macs == 20 * 4 * 4 * 128 * (64 + 128 + 128 + 128) == 18_350_080
    assert s.batch == 4 and s.input_shape == (20, 64)  # the batch axis of a sequence-first LSTM is 1
    assert not [f for f in s.findings if f.code == "uncosted-op"]


def test_lstm_fused_kernel_agrees_with_the_decomposed_path() -> None:
    """oneDNN's mkldnn_rnn_layer (+ backward) against the same LSTM with oneDNN off (mm/addmm per step)."""
    m, x = seeded(nn.LSTM, 64, 128, 2), torch.randn(20, 4, 64)
    fused = summary(m, input_data=x, training=True)
    with torch.backends.mkldnn.flags(enabled=False):
        math = summary(m, input_data=x, training=True)
    assert fused.totals.macs == math.totals.macs == 18_350_080
    assert fused.training_flops["forward"] == math.training_flops["forward"] == 2 * 18_350_080
    # the fused backward computes every input gradient; autograd's decomposed path skips the two it does not
    # need: the first layer's input (x needs no gradient) and the zero initial state of each layer
    skipped = 2 * (20 * 4 * 4 * 128 * 64 + 2 * 4 * 4 * 128 * 128)
    assert fused.training_flops["backward"] == 4 * 18_350_080 == math.training_flops["backward"] + skipped


@pytest.mark.parametrize("kw", [{"bidirectional": True}, {"batch_first": True}, {"proj_size": 8}])
def test_lstm_variants_agree_with_the_decomposed_path(kw: dict) -> None:
    m = seeded(nn.LSTM, 6, 16, 2, **kw)
    x = torch.randn(3, 5, 6) if kw.get("batch_first") else torch.randn(5, 3, 6)
    fused = summary(m, input_data=x)
    with torch.backends.mkldnn.flags(enabled=False):
        math = summary(m, input_data=x)
    assert fused.totals.macs == math.totals.macs > 0
    assert fused.batch == 3


def test_gru_counts_its_initial_hidden_state() -> None:
    """nn.GRU(64,128) on 20x4x64: 20*4*3*128*(64+128) = 5,898,240 (the zero h0 made in forward included)."""
    m, x = seeded(nn.GRU, 64, 128), torch.randn(20, 4, 64)
    s = summary(m, input_data=x)
    assert s.totals.macs == 20 * 4 * 3 * 128 * (64 + 128) == 5_898_240 == flop_counter_macs(m, x)


def test_the_same_gru_from_an_input_size_without_the_batch() -> None:
    s = summary(seeded(nn.GRU, 64, 128), (20, 64), batch=4)
    assert s.totals.macs == 5_898_240
    assert "axis 1" in s.notes[0]


@pytest.mark.parametrize(("cell", "gates"), [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)])
def test_cells_count_the_zero_state_they_make(cell: type, gates: int) -> None:
    """LSTMCell(2,8): 4*8*(2+8) = 320 MACs per sample (its hidden state made inside forward included)."""
    m = seeded(cell, 2, 8)
    s = summary(m, (2,))
    assert s.totals.macs == gates * 8 * (2 + 8) == flop_counter_macs(m, torch.randn(1, 2))
    assert not [f for f in s.findings if f.code == "uncosted-op"]  # aten.unsafe_split is a free view


def test_rnn_relu_counts_by_formula() -> None:
    m, x = seeded(nn.RNN, 8, 16, nonlinearity="relu"), torch.randn(7, 3, 8)
    assert summary(m, input_data=x).totals.macs == 7 * 3 * 16 * (8 + 16) == flop_counter_macs(m, x)


# --- attention: tokens * weights + B*L*L*2E for the products of scaled-dot-product attention


def encoder_layer_macs(tokens: int, batch: int, seq: int, e: int = 512, ff: int = 2048) -> int:
    return tokens * (3 * e * e + e * e + 2 * e * ff) + batch * seq * seq * 2 * e


def test_transformer_encoder_layer_flash_attention_counted() -> None:
    """TransformerEncoderLayer(512, 8, dropout=0) on 2 sequences of 32 tokens: 203,423,744 MACs."""
    m = seeded(nn.TransformerEncoderLayer, 512, 8, dropout=0.0, batch_first=True)
    s = summary(m, (32, 512), batch=2)
    assert s.totals.macs == encoder_layer_macs(64, 2, 32) == 203_423_744
    with sdpa_kernel(SDPBackend.MATH):
        math = summary(m, (32, 512), batch=2, training=True)
    fused = summary(m, (32, 512), batch=2, training=True)
    assert math.totals.macs == s.totals.macs
    assert fused.training_flops == math.training_flops
    assert not [f for f in s.findings if f.code == "linear-on-map"]  # a per-token linear is no forgotten flatten


def test_sequence_first_layout_reads_the_batch_on_axis_1() -> None:
    """Sequence first (no batch_first): 4 sequences of 32 tokens, 406,847,488 MACs (not 402,915,328)."""
    m = seeded(nn.TransformerEncoderLayer, 512, 8, dropout=0.0)
    s = summary(m, (32, 512), batch=4)
    assert s.totals.macs == encoder_layer_macs(128, 4, 32) == 406_847_488
    assert summary(m, (32, 512), batch=4, batch_dim=1).totals.macs == 406_847_488


def test_dropout_takes_the_math_path_with_the_same_count() -> None:
    m = seeded(nn.TransformerEncoderLayer, 64, 4, dropout=0.1, batch_first=True)
    a = summary(m, (10, 64), batch=2, mode="train")
    b = summary(seeded(nn.TransformerEncoderLayer, 64, 4, dropout=0.0, batch_first=True), (10, 64), batch=2)
    assert a.totals.macs == b.totals.macs == encoder_layer_macs(20, 2, 10, 64, 2048)


class Capture(TorchDispatchMode):
    """Records the argument shapes of one fused operator."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.args = name, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func._overloadpacket.__name__ == self.name:
            self.args = args
        return func(*args, **(kwargs or {}))


def test_fast_path_encoder_layer_under_no_grad() -> None:
    """Inference fast path (eval, no_grad, batch_first): aten._transformer_encoder_layer_fwd, one call."""
    m = seeded(nn.TransformerEncoderLayer, 64, 4, dim_feedforward=96, dropout=0.0, batch_first=True).eval()
    cap = Capture("_transformer_encoder_layer_fwd")
    with torch.no_grad(), cap:
        m(torch.randn(3, 10, 64))
    assert cap.args is not None
    c = op_cost("_transformer_encoder_layer_fwd", [], (), Conventions(), args=cap.args)
    math = summary(m, (10, 64), batch=3)
    assert c.macs == math.totals.macs == encoder_layer_macs(30, 3, 10, 64, 96)
    assert c.flops == 2 * c.macs


def test_fast_path_multi_head_attention_under_no_grad() -> None:
    """aten._native_multi_head_attention (self-attention): in-projections, QK^T, AV and the out-projection."""
    mha = seeded(nn.MultiheadAttention, 32, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 32)
    cap = Capture("_native_multi_head_attention")
    with torch.no_grad(), cap:
        mha(x, x, x, need_weights=False)
    assert cap.args is not None
    c = op_cost("_native_multi_head_attention", [], (), Conventions(), args=cap.args)
    with sdpa_kernel(SDPBackend.MATH):
        math = summary(mha, input_data=(x, x, x))
    assert c.macs == math.totals.macs == 2 * 5 * 4 * 32 * 32 + 2 * 5 * 5 * 2 * 32


def test_scaled_dot_product_attention_formula() -> None:
    """FlopCounterMode's sdpa_flop_count: B*h*Lq*Lk*(d+dv) MACs forward, twice that backward."""
    q, k, v = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 5)
    c = op_cost("_scaled_dot_product_flash_attention_for_cpu", [], (), Conventions(), args=(q, k, v))
    assert c.macs == 2 * 4 * 6 * 9 * (8 + 5)
    g = op_cost("_scaled_dot_product_flash_attention_for_cpu_backward", [], (), Conventions(),
                args=(torch.randn(2, 4, 6, 5), q, k, v))
    assert g.macs == 2 * c.macs


def math_path_macs(model: nn.Module, *args: torch.Tensor) -> int:
    """FlopCounterMode with scaled-dot-product attention forced onto the MATH backend (plain bmm)."""
    model.eval()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as f:
        model(*args)
    return f.get_total_flops() // 2


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kind", ["transformer", "encoder", "decoder_layer", "mha"])
def test_transformers_in_both_layouts_equal_flop_counter_on_the_math_path(kind: str, batch_first: bool) -> None:
    torch.manual_seed(0)
    e, lq, lk, n = 32, 6, 9, 3
    bf = {"batch_first": batch_first}
    seq = (lambda length: (n, length, e)) if batch_first else (lambda length: (length, n, e))
    src, tgt = torch.randn(seq(lk)), torch.randn(seq(lq))
    if kind == "transformer":
        m, args = nn.Transformer(e, 4, 1, 1, 48, dropout=0.0, **bf), (src, tgt)
    elif kind == "encoder":
        m, args = nn.TransformerEncoder(nn.TransformerEncoderLayer(e, 4, 48, 0.0, **bf), 2,
                                        enable_nested_tensor=False), (src,)
    elif kind == "decoder_layer":
        m, args = nn.TransformerDecoderLayer(e, 4, 48, 0.0, **bf), (tgt, src)
    else:
        m, args = nn.MultiheadAttention(e, 4, **bf), (tgt, src, src)
    s = summary(m, input_data=args)
    assert s.batch == n  # the batch axis follows the module's layout
    assert s.totals.macs == math_path_macs(m, *args) > 0
    assert not [f for f in s.findings if f.code == "uncosted-op"]


class TinyViT(nn.Module):
    """torchvision's VisionTransformer layout: conv patch embedding, class token, pre-norm blocks of
    nn.MultiheadAttention (need_weights=False) and a GELU MLP, the head on the class token."""

    def __init__(self, image: int = 32, patch: int = 8, dim: int = 48, depth: int = 2, heads: int = 4,
                 mlp: int = 96, classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(dim), "attn": nn.MultiheadAttention(dim, heads, batch_first=True),
            "ln2": nn.LayerNorm(dim), "mlp": nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))})
            for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)  # (B, patches, dim)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos  # (B, T, dim)
        for b in self.blocks:
            h = b["ln1"](x)
            x = x + b["attn"](h, h, h, need_weights=False)[0]
            x = x + b["mlp"](b["ln2"](x))
        return self.head(x[:, 0])


def vit_macs(image: int, patch: int, dim: int, depth: int, mlp: int, classes: int) -> int:
    """Patch embedding + per block (QKV, QK^T and AV, out-projection, MLP) + head, for one image."""
    t = (image // patch) ** 2 + 1
    block = t * 3 * dim * dim + 2 * t * t * dim + t * dim * dim + 2 * t * dim * mlp
    return (t - 1) * dim * 3 * patch * patch + depth * block + dim * classes


def test_a_vision_transformer_counts_its_attention() -> None:
    m = TinyViT()
    s = summary(m, (3, 32, 32))
    assert s.totals.macs == vit_macs(32, 8, 48, 2, 96, 10) == math_path_macs(m, torch.randn(1, 3, 32, 32))


@pytest.mark.slow
def test_vit_b_16_is_17_56_giga_macs() -> None:
    """vit_b_16's architecture at 224x224: 17,563,828,224 MACs (torchvision's table: 17.56 GFLOPS)."""
    m = TinyViT(224, 16, 768, 12, 12, 3072, 1000)
    assert summary(m, (3, 224, 224)).totals.macs == vit_macs(224, 16, 768, 12, 3072, 1000) == 17_563_828_224
