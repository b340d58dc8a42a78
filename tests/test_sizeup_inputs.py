"""Inputs as users give them, eval/train mode, and one clear error for what cannot be sized up
(issue 20, cases 3, 4 and 5)."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")
from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402

from ablab.cli import cli  # noqa: E402
from ablab.errors import UserError  # noqa: E402
from ablab.sizeup import summary  # noqa: E402


class AuxHead(nn.Module):
    """googlenet's pattern: an auxiliary classifier that runs only in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head, self.aux = nn.Linear(8, 16), nn.Linear(16, 4), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x))
        out = self.head(h)
        return out + self.aux(h) if self.training else out


def test_mode_eval_is_the_default_and_train_counts_the_aux_head() -> None:
    m = AuxHead()
    assert summary(m, (8,)).totals.macs == 8 * 16 + 16 * 4
    assert summary(m, (8,), mode="train").totals.macs == 8 * 16 + 2 * 16 * 4
    assert "eval mode" in summary(m, (8,)).render()
    t = summary(m, (8,), training=True)  # counts in eval, the training step in train mode
    assert t.totals.macs == 192 and t.training_flops["forward"] == 2 * 256
    assert m.training  # left as it was


def test_mode_is_checked() -> None:
    with pytest.raises(UserError, match="mode"):
        summary(AuxHead(), (8,), mode="inference")


def conv_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))


CONV_MACS = 4 * 26 * 26 * 9 + 4 * 26 * 26 * 10


def test_torchinfo_input_size_with_the_batch_axis() -> None:
    s = summary(conv_net(), (64, 1, 28, 28))
    assert s.batch == 64 and s.input_shape == (1, 28, 28)
    assert s.totals.macs == 64 * CONV_MACS
    assert "torchinfo" in s.notes[0]
    assert summary(conv_net(), (1, 28, 28)).totals.macs == CONV_MACS
    assert not [n for n in summary(conv_net(), (1, 28, 28)).notes if "convention" in n]  # the plain case: no note


@pytest.mark.parametrize("net", [conv_net, lambda: nn.Sequential(nn.Conv2d(1, 2, 3))])
def test_a_missing_channel_axis_is_one_error_without_ablabs_batch(net) -> None:  # noqa: ANN001
    with pytest.raises(UserError) as e:
        summary(net(), (28, 28))  # a bare conv runs on one unbatched 28x28 "sample" of 28 channels: not this
    msg = str(e.value)
    assert "did you mean 1x28x28" in msg and "[2," not in msg and "2 channels" not in msg


def test_a_class_instead_of_an_instance() -> None:
    with pytest.raises(UserError, match="got the class Linear, not a module"):
        summary(nn.Linear, (3,))


class Siamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(10, 6)

    def forward(self, a: torch.Tensor, b: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return (self.enc(a) - self.enc(b)).abs().sum(1) * scale


def test_two_inputs_by_size_and_by_data_and_a_dict() -> None:
    m = Siamese()
    assert summary(m, [(10,), (10,)]).totals.macs == 2 * 60
    s = summary(m, input_data=(torch.randn(3, 10), torch.randn(3, 10)))
    assert s.batch == 3 and s.totals.macs == 3 * 120
    assert summary(m, input_data={"a": torch.randn(3, 10), "b": torch.randn(3, 10)}).totals.macs == 360
    assert summary(m, [(10,), (10,)], kwargs={"scale": 2.0}).totals.macs == 120


class TextModel(nn.Module):
    """An embedding + LSTM text classifier on token ids."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.rnn, self.out = nn.Embedding(100, 16), nn.LSTM(16, 32, batch_first=True), nn.Linear(32, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.emb(ids))
        return self.out(h[:, -1])


TEXT_MACS = 12 * 4 * 32 * (16 + 32) + 32 * 5


def test_integer_token_ids() -> None:
    m = TextModel()
    assert summary(m, (12,), dtypes=[torch.long]).totals.macs == TEXT_MACS
    assert summary(m, "long:12").totals.macs == TEXT_MACS
    assert summary(m, input_data=torch.randint(0, 100, (3, 12))).totals.macs == 3 * TEXT_MACS
    s = summary(m, "long:12", training=True)
    assert s.training_flops["forward"] == 2 * TEXT_MACS


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.small, self.big = nn.Linear(16, 4), nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.big(x) if x.sum() > 0 else self.small(x)


class Loop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 0
        while x.abs().mean() > 0.6 and n < 5:
            x, n = self.f(x) * 0.5, n + 1
        return x


@pytest.mark.parametrize("model", [Branchy(), Loop()])
def test_a_data_dependent_path_is_said(model: nn.Module) -> None:
    s = summary(model, (16,))
    found = [f for f in s.findings if f.code == "data-dependent"]
    assert found and "input_data=" in found[0].message


def test_a_model_without_branches_gets_no_warning() -> None:
    assert not [f for f in summary(conv_net(), (1, 28, 28)).findings if f.code == "data-dependent"]


def test_sparse_parameter_is_one_clear_error() -> None:
    m = nn.Linear(4, 2)
    m.weight = nn.Parameter(torch.randn(2, 4).to_sparse())
    with pytest.raises(UserError, match="parameter weight is stored sparse_coo"):
        summary(m, (4,))


def test_cli_several_inputs_and_token_ids(tmp_path) -> None:  # noqa: ANN001
    f = tmp_path / "nets.py"
    f.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Siamese(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(10, 6)

            def forward(self, a, b):
                return (self.enc(a) - self.enc(b)).abs().sum(1)

        class Text(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.out = nn.Embedding(50, 8), nn.Linear(8, 3)

            def forward(self, ids):
                return self.out(self.emb(ids).mean(1))
    """))
    r = CliRunner().invoke(cli, ["summary", f"{f}:Siamese", "--input", "10", "--input", "10", "--json"])
    assert r.exit_code == 0, r.output
    assert '"macs": 120' in r.output
    r = CliRunner().invoke(cli, ["summary", f"{f}:Text", "--input", "long:16", "--mode", "train"])
    assert r.exit_code == 0, r.output
    assert "train mode" in r.output and "MACs: 24" in r.output
    r = CliRunner().invoke(cli, ["summary", f"{f}:Text", "--input", "cplx:16"])
    assert r.exit_code == 2 and r.output.startswith("error: --input") and "Traceback" not in r.output


@pytest.mark.parametrize("args", [["--input", "1x28x28", "--input", "1x28x28"], ["--mode", "eval"],
                                  ["--batch-dim", "1"]])
def test_cli_module_only_flags_on_a_preset_are_refused(args: list[str]) -> None:
    r = CliRunner().invoke(cli, ["summary", "lenet5", *args])
    assert r.exit_code == 2 and "need your own module" in r.output
