"""A zoo of networks that are not feed-forward CNNs on one float image — torchinfo's kinds of fixtures
(several inputs, a dict input, embeddings, LSTMs, a module reused, a recursive module) and recurrent and
attention models — each checked against torch itself: parameters, MACs against FlopCounterMode (on the
MATH / decomposed path, where every product is a plain matmul it counts) in eval and train mode, and the
FLOPs of a training step against FlopCounterMode over the same forward, loss and backward."""

from __future__ import annotations

from collections.abc import Callable

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ablab.sizeup import summary  # noqa: E402


class SingleInputNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5)
        self.fc1, self.fc2 = nn.Linear(320, 50), nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.max_pool2d(self.conv2(x), 2))
        return self.fc2(torch.relu(self.fc1(x.view(-1, 320))))


class MultipleInputNetDifferentDtypes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1a, self.fc1b = nn.Linear(300, 50), nn.Linear(50, 10)
        self.fc2a, self.fc2b = nn.Linear(300, 50), nn.Linear(50, 10)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        a = self.fc1b(torch.relu(self.fc1a(x1)))
        b = self.fc2b(torch.relu(self.fc2a(x2.float())))
        return torch.cat((a, b), 1)


class DictInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.img, self.meta, self.out = nn.Linear(64, 16), nn.Linear(4, 16), nn.Linear(16, 3)

    def forward(self, image: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.img(image) + self.meta(meta)))


class LSTMNet(nn.Module):
    """torchinfo's LSTMNet, smaller: embedding, 2-layer LSTM, a decoder per step."""

    def __init__(self, vocab: int = 20, embed: int = 30, hidden: int = 40) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, 2, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(self.embedding(x))
        return self.decoder(out).reshape(-1, self.decoder.out_features)


class RecursiveNet(nn.Module):
    """One conv module applied three times."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = torch.relu(self.conv1(x))
        return x.mean((2, 3))


class ReuseLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        linear = nn.Linear(10, 10)
        self.model = nn.Sequential(*[m for _ in range(4) for m in (linear, nn.ReLU())])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class GRUClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.GRU(12, 24, 2, batch_first=True, bidirectional=True), nn.Linear(48, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class CellLoop(nn.Module):
    """An LSTMCell unrolled over the sequence by hand, its state made in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.LSTMCell(6, 10), nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], 10)
        c = torch.zeros(x.shape[0], 10)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.head(h)


class TinyBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(50, 32), nn.Embedding(16, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.cls = nn.Linear(32, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        return self.cls(self.enc(x)[:, 0])


def mlp_mixer() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16), nn.LayerNorm(16), nn.Flatten(),
                         nn.Linear(8 * 16, 5))


ZOO: dict[str, Callable[[], tuple[nn.Module, tuple]]] = {
    "single-input": lambda: (SingleInputNet(), (torch.randn(2, 1, 28, 28),)),
    "two-inputs-two-dtypes": lambda: (MultipleInputNetDifferentDtypes(),
                                      (torch.randn(2, 300), torch.randint(0, 5, (2, 300)))),
    "dict-input": lambda: (DictInput(), ({"image": torch.randn(3, 64), "meta": torch.randn(3, 4)},)),
    "lstm-net": lambda: (LSTMNet(), (torch.randint(0, 20, (2, 7)),)),
    "recursive": lambda: (RecursiveNet(), (torch.randn(2, 8, 6, 6),)),
    "reuse-linear": lambda: (ReuseLinear(), (torch.randn(2, 10),)),
    "gru-bidirectional": lambda: (GRUClassifier(), (torch.randn(2, 5, 12),)),
    "lstm-cell-loop": lambda: (CellLoop(), (torch.randn(2, 4, 6),)),
    "rnn-tanh": lambda: (nn.RNN(6, 9, 2), (torch.randn(5, 2, 6),)),
    "tiny-bert": lambda: (TinyBert(), (torch.randint(0, 50, (2, 16)),)),
    "transformer-seq-first": lambda: (nn.Transformer(16, 2, 1, 1, 32, dropout=0.0),
                                      (torch.randn(7, 2, 16), torch.randn(5, 2, 16))),
    "mha-cross": lambda: (nn.MultiheadAttention(16, 4, batch_first=True),
                          (torch.randn(2, 3, 16), torch.randn(2, 5, 16), torch.randn(2, 5, 16))),
    "mlp-mixer-like": lambda: (mlp_mixer(), (torch.randn(2, 8, 16),)),
}


def call(model: nn.Module, args: tuple) -> torch.Tensor:
    out = model(**args[0]) if isinstance(args[0], dict) else model(*args)
    return out[0] if isinstance(out, tuple) else out


def oracle(model: nn.Module, args: tuple, mode: str, step: bool) -> int:
    """FlopCounterMode's FLOPs on the MATH / decomposed path: the forward, or ablab's training step
    (cross-entropy against class 0 for a 2-d output, else the mean square; then backward)."""
    model.train(mode == "train")
    with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False), \
            FlopCounterMode(display=False) as f:
        y = call(model, args)
        if step:
            loss = nn.functional.cross_entropy(y, torch.zeros(y.shape[0], dtype=torch.long)) if y.dim() == 2 \
                else y.float().square().mean()
            loss.backward()
    model.zero_grad(set_to_none=True)
    return f.get_total_flops()


def ablab_summary(model: nn.Module, args: tuple, **kw: object):  # noqa: ANN201
    data = args[0] if isinstance(args[0], dict) else args
    with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False):
        return summary(model, input_data=data, **kw)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_params_and_macs(name: str, mode: str) -> None:
    torch.manual_seed(0)
    model, args = ZOO[name]()
    s = ablab_summary(model, args, mode=mode)
    assert s.totals.params == sum(p.numel() for p in model.parameters())
    assert 2 * s.totals.macs == oracle(model, args, mode, step=False) > 0
    assert not [f for f in s.findings if f.code in ("uncosted-op", "data-dependent")], s.findings


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_training_step_flops(name: str) -> None:
    torch.manual_seed(0)
    model, args = ZOO[name]()
    s = ablab_summary(model, args, training=True, mode="train")
    assert s.training_flops["step"] == oracle(model, args, "train", step=True)


@pytest.mark.parametrize("name", ["lstm-net", "gru-bidirectional", "tiny-bert", "transformer-seq-first"])
def test_zoo_fused_kernels_give_the_same_counts(name: str) -> None:
    """Without forcing the MATH / decomposed path: oneDNN's LSTM and CPU flash attention, by formula."""
    torch.manual_seed(0)
    model, args = ZOO[name]()
    data = args[0] if isinstance(args[0], dict) else args
    assert summary(model, input_data=data).totals.macs == ablab_summary(model, args).totals.macs
