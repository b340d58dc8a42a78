"""The model suite of the size-up tests (tests/test_sizeup_suite.py): equivalents of torchinfo's test fixtures
(TylerYep/torchinfo, tests/fixtures/models.py — same layers, same forward, written here), recurrent and
attention modules, and torchvision's classic architectures written out (resnet18, mobilenet_v2,
efficientnet_b0, vgg11, googlenet, vit_b_16: at full size their parameter counts equal torchvision's).

Each entry of ``SUITE`` builds ``(model, inputs)``: inputs as ``input_data`` takes them (a tuple of
positional inputs, or a dict of keyword inputs), plus ``batch_dim`` and what a training step does.
Nothing here knows about ablab; ``oracle`` is torch's own count (FlopCounterMode on the MATH backend)."""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten

# ---- torchinfo's fixtures -------------------------------------------------------------------------------


class IdentityModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.identity = nn.Identity()

    def forward(self, x):
        return self.identity(x)


def linear_model() -> nn.Module:
    return nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))


class SingleInputNet(nn.Module):
    """torchinfo's SingleInputNet: with Dropout2d and log_softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5)
        self.conv2_drop = nn.Dropout2d(0.3)
        self.fc1, self.fc2 = nn.Linear(320, 50), nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        return F.log_softmax(self.fc2(F.relu(self.fc1(x.view(-1, 320)))), dim=1)


class MultipleInputNetDifferentDtypes(nn.Module):
    """Two inputs, the second of integers; the two branches concatenated along the batch (torchinfo's)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1a, self.fc1b = nn.Linear(300, 50), nn.Linear(50, 10)
        self.fc2a, self.fc2b = nn.Linear(300, 50), nn.Linear(50, 10)

    def forward(self, x1, x2):
        x1 = self.fc1b(F.relu(self.fc1a(x1)))
        x2 = self.fc2b(F.relu(self.fc2a(x2.type(torch.float))))
        return F.log_softmax(torch.cat((x1, x2), 0), dim=1)


class ScalarNet(nn.Module):
    """A Python scalar argument chooses the path."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(64, 64, 3, 1, 1), nn.Conv2d(64, 32, 3, 1, 1)

    def forward(self, x, scalar):
        return self.conv1(x) if scalar == 5 else self.conv2(x)


class LSTMNet(nn.Module):
    """torchinfo's LSTMNet at full size: sequence first, returns (logits, (h, c))."""

    def __init__(self, vocab: int = 20, embed: int = 300, hidden: int = 512, layers: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, num_layers=layers)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x):
        out, hidden = self.encoder(self.embedding(x))
        out = self.decoder(out)
        return out.view(-1, out.size(2)), hidden


class RecursiveNet(nn.Module):
    """One conv applied six times."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(64, 64, 3, 1, 1)

    def forward(self, x, args1=None, args2=None):
        for _ in range(3):
            x = self.conv1(self.conv1(x))
        return x


class CustomParameter(nn.Module):
    """Returns its parameter; the input is unused."""

    def __init__(self, input_size: int = 8, attention_size: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones((attention_size, input_size)))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return self.weight


class ParameterListModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(w) for w in torch.zeros(100, 300).split([100, 200], dim=1)])

    def forward(self, x):
        return x


class SiameseNets(nn.Module):
    """Two images through one tower; |difference| of the embeddings, then a score (88x88 inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 64, 10), nn.Conv2d(64, 128, 7)
        self.conv3, self.conv4 = nn.Conv2d(128, 128, 4), nn.Conv2d(128, 256, 4)
        self.pooling = nn.MaxPool2d(2, 2)
        self.fc1, self.fc2 = nn.Linear(256, 4096), nn.Linear(4096, 1)
        self.dropout = nn.Dropout(0.5)

    def tower(self, x):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = self.pooling(F.relu(conv(x)))
        return self.fc1(x.view(x.size(0), -1))

    def forward(self, x1, x2):
        return torch.sigmoid(self.fc2(self.dropout(torch.abs(self.tower(x1) - self.tower(x2)))))


class FunctionalNet(nn.Module):
    """Functional layers; view(-1, 2048) pairs two 28x28 samples into one row."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 5, 1), nn.Conv2d(32, 64, 5, 1)
        self.dropout1 = nn.Dropout2d(0.4)
        self.fc1, self.fc2 = nn.Linear(2048, 1024), nn.Linear(1024, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = self.dropout1(F.relu(self.fc1(x.view(-1, 2048))))
        return F.log_softmax(self.fc2(x), dim=1)


class ReturnDictLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5)
        self.fc1, self.fc2 = nn.Linear(320, 50), nn.Linear(50, 10)

    def forward(self, x):
        out = {"conv1": self.conv1(x)}
        x = F.relu(F.max_pool2d(out["conv1"], 2))
        out["conv2"] = self.conv2(x)
        x = F.relu(F.max_pool2d(out["conv2"], 2))
        out["fc1"] = F.relu(self.fc1(x.view(-1, 320)))
        out["fc2"] = self.fc2(out["fc1"])
        out["output"] = F.log_softmax(out["fc2"], dim=1)
        return out


class ReturnDict(nn.Module):
    """Returns a dict of activations; a second argument is ignored."""

    def __init__(self) -> None:
        super().__init__()
        self.return_dict = ReturnDictLayer()

    def forward(self, x, y):
        return self.return_dict(x)


class DictParameter(nn.Module):
    """A dict with integer keys and a scale factor; no parameters."""

    def forward(self, x, scale_factor):
        return scale_factor * (x[256] + x[512][0]) * 5


class ModuleDictModel(nn.Module):
    """String arguments choose modules out of ModuleDicts."""

    def __init__(self) -> None:
        super().__init__()
        self.choices = nn.ModuleDict({"conv": nn.Conv2d(10, 10, 3), "pool": nn.MaxPool2d(3)})
        self.activations = nn.ModuleDict({"lrelu": nn.LeakyReLU(), "prelu": nn.PReLU()})

    def forward(self, x, layer_type, activation_type):
        return self.activations[activation_type](self.choices[layer_type](x))


class ObjectWithTensors:
    def __init__(self, tensors: Any) -> None:
        self.tensors = tensors


class HighlyNestedDictModel(nn.Module):
    """Returns {"foo": ({"bar": [object holding the tensor]},)}: no tensor reachable through containers."""

    def __init__(self) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(10, 10), nn.Linear(10, 10)

    def forward(self, x):
        return {"foo": ({"bar": [ObjectWithTensors(F.softmax(self.lin2(self.lin1(x)), dim=0))]},)}


class NamedTupleModel(nn.Module):
    """torchinfo's NamedTuple: inputs inside a namedtuple, a shape from a namedtuple field."""

    Point = namedtuple("Point", ["x", "y"])

    def forward(self, x, y, z):
        return self.Point(x, y).x + torch.ones(z.x)


class NumpyModel(nn.Module):
    """Returns a NumPy array."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, inp):
        return self.lin(torch.as_tensor(inp)).detach().numpy()


class EdgeCaseModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.model = IdentityModel()

    def forward(self, x):
        return self.model(self.conv1(x))


class PackPaddedLSTM(nn.Module):
    """Embedding, pack_padded_sequence, LSTM from a state made in forward; the last hidden state classified."""

    def __init__(self, vocab: int = 60, embed: int = 128, out: int = 18, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = hidden
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=1)
        self.hidden2out, self.dropout_layer = nn.Linear(hidden, out), nn.Dropout(0.2)

    def forward(self, batch, lengths):
        h0 = torch.ones(1, batch.size(-1), self.hidden)
        c0 = torch.ones(1, batch.size(-1), self.hidden)
        packed = pack_padded_sequence(self.embedding(batch), lengths)
        _, (ht, _) = self.lstm(packed, (h0, c0))
        return F.log_softmax(self.hidden2out(self.dropout_layer(ht[-1])), dim=1)


class ContainerChildModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._sequential = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5))
        self._between = nn.Linear(5, 5)

    def forward(self, x):
        out = self._between(self._sequential(x))
        for layer in self._sequential:
            out = layer(out)
        out = self._sequential(x)
        for layer in self._sequential:
            out = layer(out)
        return out


class ContainerModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._layers = nn.ModuleList([nn.Linear(5, 5), ContainerChildModule(), nn.Linear(5, 5)])

    def forward(self, x):
        for layer in self._layers:
            x = layer(x)
        return x


class AutoEncoder(nn.Module):
    """Max pool with indices, then max unpool."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
        self.pool, self.unpool = nn.MaxPool2d(2, 2, return_indices=True), nn.MaxUnpool2d(2, 2)
        self.decode = nn.Sequential(nn.Conv2d(16, 3, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.encoder(x)
        size = x.size()
        x, indices = self.pool(x)
        return self.decode(self.unpool(x, indices=indices, output_size=size))


class MixedTrainableParameters(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(10))
        self.b = nn.Parameter(torch.zeros(10), requires_grad=False)

    def forward(self, x):
        return self.w * x + self.b


class MixedTrainable(nn.Module):
    """Fully, partly and not trainable convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.fully_trainable = nn.Conv1d(1, 1, 1)
        self.partially_trainable = nn.Conv1d(1, 1, 1)
        self.partially_trainable.bias.requires_grad = False
        self.non_trainable = nn.Conv1d(1, 1, 1)
        self.non_trainable.requires_grad_(False)
        self.dropout = nn.Dropout()

    def forward(self, x):
        return self.dropout(self.non_trainable(self.partially_trainable(self.fully_trainable(x))))


class ReuseLinear(nn.Module):
    """One Linear four times (ReLU in place)."""

    def __init__(self, as_attribute: bool = False) -> None:
        super().__init__()
        linear = nn.Linear(10, 10)
        if as_attribute:  # torchinfo's ReuseLinearExtended
            self.linear = linear
        self.model = nn.Sequential(*[m for _ in range(4) for m in (linear, nn.ReLU(True))])

    def forward(self, x):
        return self.model(x)


def reuse_relu() -> nn.Module:
    """One in-place ReLU module used four times (torchinfo's ReuseReLU)."""
    act = nn.ReLU(True)
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(4, 1, 1), nn.BatchNorm2d(1), act]
    for i in range(3):
        layers += [nn.Conv2d(2**i, 2 ** (i + 1), 1, stride=2, padding=1), nn.BatchNorm2d(2 ** (i + 1)), act]
    return nn.Sequential(*layers)


class PrunedLayerNameModel(nn.Module):
    """A parameter named like pruning's weight_orig, with (FakePruned) or without a weight_mask."""

    def __init__(self, fake_mask: bool = False) -> None:
        super().__init__()
        self.weight_orig = nn.Parameter(torch.ones((4, 8)))
        if fake_mask:
            self.weight_mask = nn.Parameter(torch.zeros((4, 8)))

    def forward(self, x):
        return self.weight_orig


class ParameterFCNet(nn.Module):
    """Raw parameters in torch.mm, then a Linear."""

    def __init__(self, input_dim: int = 128, hidden_dim: int = 64, output_dim: int | None = 10) -> None:
        super().__init__()
        self.a, self.b = nn.Parameter(torch.randn(input_dim, hidden_dim)), nn.Parameter(torch.randn(hidden_dim))
        self.fc2 = nn.Linear(hidden_dim, output_dim) if output_dim else None

    def forward(self, x):
        h = torch.mm(x, self.a) + self.b
        return h if self.fc2 is None else self.fc2(h)


class InsideModel(nn.Module):
    """A parameter beside a module that holds one too."""

    class Inside(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l_1, self.param_1 = nn.Linear(1, 1), nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.l_1(x) * self.param_1

    def __init__(self) -> None:
        super().__init__()
        self.l_0, self.param_0, self.inside = nn.Linear(2, 1), nn.Parameter(torch.ones(2)), InsideModel.Inside()

    def forward(self, x):
        return self.inside(self.l_0(x)) * self.param_0


class RecursiveWithMissingLayers(nn.Module):
    """Dilated 'same' convolutions called out of ModuleDicts."""

    def __init__(self) -> None:
        super().__init__()
        self.out_conv0, self.out_bn0 = nn.Conv2d(3, 8, 5, padding="same"), nn.BatchNorm2d(8)
        self.block0, self.block1 = nn.ModuleDict(), nn.ModuleDict()
        for i in range(1, 4):
            self.block0.add_module(f"in_conv{i}", nn.Conv2d(8, 8, 3, padding="same", dilation=2**i))
            self.block0.add_module(f"in_bn{i}", nn.BatchNorm2d(8))
        for i in range(4, 7):
            self.block1.add_module(f"in_conv{i}", nn.Conv2d(8, 8, 3, padding="same", dilation=2 ** (7 - i)))
            self.block1.add_module(f"in_bn{i}", nn.BatchNorm2d(8))
        self.out_conv7, self.out_bn7 = nn.Conv2d(8, 1, 1, padding="same"), nn.BatchNorm2d(1)

    def forward(self, x):
        x = torch.relu(self.out_bn0(self.out_conv0(x)))
        for i in range(1, 4):
            x = torch.relu(self.block0[f"in_bn{i}"](self.block0[f"in_conv{i}"](x)))
        for i in range(4, 7):
            x = torch.relu(self.block1[f"in_bn{i}"](self.block1[f"in_conv{i}"](x)))
        return torch.relu(self.out_bn7(self.out_conv7(x)))


class ConvLayer(nn.Module):
    def __init__(self, relu_first: bool) -> None:
        super().__init__()
        if relu_first:  # torchinfo's ConvLayerB: modules created in another order than called
            self.relu, self.conv = nn.ReLU(), nn.Conv1d(1, 1, 1)
        else:
            self.conv, self.relu = nn.Conv1d(1, 1, 1), nn.ReLU()
        self.pool = nn.MaxPool1d(1)

    def forward(self, x):
        return self.pool(self.relu(self.conv(x)))


class CNNModuleList(nn.Module):
    def __init__(self, relu_first: bool) -> None:
        super().__init__()
        self.ml = nn.ModuleList([ConvLayer(relu_first) for _ in range(5)])

    def forward(self, x):
        for layer in self.ml:
            x = layer(x)
        return x


class SimpleRNN(nn.Module):
    """An LSTMCell looped four times on the same input, its state drawn at random inside forward."""

    def __init__(self, repeat_outside_loop: bool = False) -> None:
        super().__init__()
        self.repeat_outside_loop = repeat_outside_loop
        self.lstm, self.activation, self.projection = nn.LSTMCell(3, 2), nn.Tanh(), nn.Linear(2, 3)

    def forward(self, token_embedding):
        hx = torch.randn(token_embedding.size(0), 2)
        cx = torch.randn(token_embedding.size(0), 2)
        for _ in range(4):
            hx, cx = self.lstm(token_embedding, (hx, cx))
            hx = self.activation(hx)
        if self.repeat_outside_loop:
            hx = self.activation(self.projection(hx))
        return hx


class TensorKernelSizeConv(nn.Module):
    """A 0-d tensor attribute beside a Conv1d (HuggingFace's EncodecConv1d pattern)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.kernel_size = nn.Conv1d(1, 1, 3, padding=1), torch.tensor(3)

    def forward(self, x):
        return self.conv(x)


# ---- recurrent and attention -----------------------------------------------------------------------------


class TextLSTM(nn.Module):
    """The embedding + LSTM text classifier: token ids (batch first), 2-layer LSTM, the last step classified."""

    def __init__(self, vocab: int = 1000, embed: int = 64, hidden: int = 128, classes: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, 2, batch_first=True, dropout=0.0)
        self.head = nn.Linear(hidden, classes)

    def forward(self, ids):
        out, _ = self.lstm(self.embedding(ids))  # (B, T, hidden)
        return self.head(out[:, -1])


class Cell(nn.Module):
    """One recurrent cell over a sequence, from the zero state (made inside forward, counted)."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x):  # x: (B, T, features)
        h = torch.zeros(x.shape[0], self.cell.hidden_size)
        state = (h, torch.zeros_like(h)) if isinstance(self.cell, nn.LSTMCell) else h
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
        return state[0] if isinstance(state, tuple) else state


# ---- torchvision's architectures, written out ------------------------------------------------------------


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU):
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act(inplace=True)] if act else []))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=None))
        self.down = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.down(x))


def resnet18(classes: int = 1000) -> nn.Module:
    """torchvision.models.resnet18: 11,689,512 parameters."""
    blocks, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
                         nn.MaxPool2d(3, 2, 1), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        layers = ([conv_bn(cin, mid, 1, act=nn.ReLU6)] if expand != 1 else []) + [
            conv_bn(mid, mid, 3, stride, groups=mid, act=nn.ReLU6), conv_bn(mid, cout, 1, act=None)]
        self.conv, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def mobilenet_v2(classes: int = 1000) -> nn.Module:
    """torchvision.models.mobilenet_v2: 3,504,872 parameters."""
    layers, cin = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)], 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)):
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [conv_bn(cin, 1280, 1, act=nn.ReLU6), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
               nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class MBConv(nn.Module):
    """EfficientNet's block; stochastic depth in train mode (a random per-sample mask: the same count)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, drop: float) -> None:
        super().__init__()
        mid = cin * expand
        layers = ([conv_bn(cin, mid, 1, act=nn.SiLU)] if expand != 1 else []) + [
            conv_bn(mid, mid, k, stride, groups=mid, act=nn.SiLU), SqueezeExcitation(mid, max(1, cin // 4)),
            conv_bn(mid, cout, 1, act=None)]
        self.block, self.residual, self.drop = nn.Sequential(*layers), stride == 1 and cin == cout, drop

    def forward(self, x):
        y = self.block(x)
        if not self.residual:
            return y
        if self.training and self.drop:
            keep = torch.empty(x.shape[0], 1, 1, 1).bernoulli_(1 - self.drop) / (1 - self.drop)
            y = y * keep
        return x + y


def efficientnet_b0(classes: int = 1000) -> nn.Module:
    """torchvision.models.efficientnet_b0: 5,288,548 parameters."""
    stages = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
              (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))
    total, done = sum(s[-1] for s in stages), 0
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
    for e, k, s, cin, cout, n in stages:
        for i in range(n):
            layers.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e, 0.2 * done / total))
            done += 1
    layers += [conv_bn(320, 1280, 1, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
               nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


def vgg11(classes: int = 1000) -> nn.Module:
    """torchvision.models.vgg11: 132,863,336 parameters."""
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(True)]
            cin = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 4096), nn.ReLU(True),
                         nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, classes))


def basic_conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout, eps=0.001),
                         nn.ReLU(True))


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int) -> None:
        super().__init__()
        self.b1 = basic_conv(cin, c1, 1)
        self.b2 = nn.Sequential(basic_conv(cin, c3r, 1), basic_conv(c3r, c3, 3, padding=1))
        self.b3 = nn.Sequential(basic_conv(cin, c5r, 1), basic_conv(c5r, c5, 3, padding=1))  # torchvision: 3x3
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), basic_conv(cin, pool, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.conv = basic_conv(cin, 128, 1)
        self.fc1, self.fc2 = nn.Linear(2048, 1024), nn.Linear(1024, classes)

    def forward(self, x):
        x = torch.flatten(self.conv(F.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.7, self.training))


class GoogLeNet(nn.Module):
    """torchvision.models.googlenet(aux_logits=True, init_weights=False): 13,004,888 parameters; the two
    auxiliary heads run in train mode only (their logits returned after the main ones)."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.stem = nn.Sequential(basic_conv(3, 64, 7, 2, 3), pool(), basic_conv(64, 64, 1),
                                  basic_conv(64, 192, 3, padding=1), pool(),
                                  Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
                                  pool(), Inception(480, 192, 96, 208, 16, 48, 64))
        self.aux1 = InceptionAux(512, classes)
        self.mid = nn.Sequential(Inception(512, 160, 112, 224, 24, 64, 64), Inception(512, 128, 128, 256, 24, 64, 64),
                                 Inception(512, 112, 144, 288, 32, 64, 64))
        self.aux2 = InceptionAux(528, classes)
        self.tail = nn.Sequential(Inception(528, 256, 160, 320, 32, 128, 128), pool(),
                                  Inception(832, 256, 160, 320, 32, 128, 128),
                                  Inception(832, 384, 192, 384, 48, 128, 128),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1024, classes))

    def forward(self, x):
        x = self.stem(x)
        a1 = self.aux1(x) if self.training else None
        x = self.mid(x)
        a2 = self.aux2(x) if self.training else None
        x = self.tail(x)
        return (x, a2, a1) if self.training else x


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp, dim), nn.Dropout(0.0))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.self_attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    """torchvision.models.vit_b_16 (image 224, patch 16, 12 layers of width 768, 12 heads, MLP 3072):
    86,567,656 parameters."""

    def __init__(self, image: int = 224, patch: int = 16, layers: int = 12, dim: int = 768, heads: int = 12,
                 mlp: int = 3072, classes: int = 1000) -> None:
        super().__init__()
        self.patch, self.dim = patch, dim
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.empty(1, (image // patch) ** 2 + 1, dim).normal_(std=0.02))
        self.layers = nn.Sequential(*[EncoderBlock(dim, heads, mlp) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (B, patches, dim)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        return self.head(self.ln(self.layers(x))[:, 0])


TORCHVISION_PARAMS = {"resnet18": 11_689_512, "mobilenet_v2": 3_504_872, "efficientnet_b0": 5_288_548,
                      "vgg11": 132_863_336, "googlenet": 13_004_888, "vit_b_16": 86_567_656}
WRITTEN_OUT: dict[str, Callable[[], nn.Module]] = {
    "resnet18": resnet18, "mobilenet_v2": mobilenet_v2, "efficientnet_b0": efficientnet_b0, "vgg11": vgg11,
    "googlenet": GoogLeNet, "vit_b_16": ViT}


# ---- the suite --------------------------------------------------------------------------------------------


@dataclass
class Case:
    model: nn.Module
    inputs: tuple | dict  # positional inputs, or keyword inputs
    batch_dim: int = 0
    trains: bool = True  # False: no float output that depends on a trainable parameter (no training step)
    kwargs: dict | None = None  # non-tensor keyword arguments (ablab's kwargs=)


def r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def ids(high: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, high, shape)


SUITE: dict[str, Callable[[], Case]] = {
    # torchinfo's fixtures
    "torchinfo/IdentityModel": lambda: Case(IdentityModel(), (r(2, 8),), trains=False),
    "torchinfo/LinearModel": lambda: Case(linear_model(), (r(2, 128),)),
    "torchinfo/SingleInputNet": lambda: Case(SingleInputNet(), (r(2, 1, 28, 28),)),
    "torchinfo/MultipleInputNetDifferentDtypes": lambda: Case(MultipleInputNetDifferentDtypes(),
                                                              (r(2, 300), ids(5, 2, 300))),
    "torchinfo/ScalarNet": lambda: Case(ScalarNet(), (r(2, 64, 8, 8),), kwargs={"scalar": 5}),
    "torchinfo/LSTMNet": lambda: Case(LSTMNet(), (ids(20, 5, 2),), batch_dim=1),
    "torchinfo/RecursiveNet": lambda: Case(RecursiveNet(), (r(2, 64, 8, 8),)),
    "torchinfo/CustomParameter": lambda: Case(CustomParameter(), (r(2, 8),)),
    "torchinfo/ParameterListModel": lambda: Case(ParameterListModel(), (r(2, 100, 100),), trains=False),
    "torchinfo/SiameseNets": lambda: Case(SiameseNets(), (r(2, 1, 88, 88), r(2, 1, 88, 88))),
    "torchinfo/FunctionalNet": lambda: Case(FunctionalNet(), (r(2, 1, 28, 28),)),
    "torchinfo/ReturnDict": lambda: Case(ReturnDict(), (r(2, 1, 28, 28),), kwargs={"y": 0}),
    "torchinfo/DictParameter": lambda: Case(DictParameter(), ({256: r(2, 3), 512: [r(2, 3)]},),
                                            kwargs={"scale_factor": 3}, trains=False),
    "torchinfo/ModuleDictModel": lambda: Case(ModuleDictModel(), (r(2, 10, 9, 9),),
                                              kwargs={"layer_type": "conv", "activation_type": "prelu"}),
    "torchinfo/NamedTuple": lambda: Case(NamedTupleModel(), (r(2, 3), r(2, 3), NamedTupleModel.Point((2, 3), 0)),
                                         trains=False),
    "torchinfo/EdgeCaseModel": lambda: Case(EdgeCaseModel(), (r(2, 1, 28, 28),)),
    "torchinfo/PackPaddedLSTM": lambda: Case(PackPaddedLSTM(), (ids(60, 6, 2), torch.tensor([6, 4])), batch_dim=1),
    "torchinfo/ContainerModule": lambda: Case(ContainerModule(), (r(2, 5),)),
    "torchinfo/AutoEncoder": lambda: Case(AutoEncoder(), (r(2, 3, 16, 16),)),
    "torchinfo/MixedTrainableParameters": lambda: Case(MixedTrainableParameters(), (r(2, 10),)),
    "torchinfo/MixedTrainable": lambda: Case(MixedTrainable(), (r(2, 1, 10),)),
    "torchinfo/ReuseLinear": lambda: Case(ReuseLinear(), (r(2, 10),)),
    "torchinfo/ReuseLinearExtended": lambda: Case(ReuseLinear(as_attribute=True), (r(2, 10),)),
    "torchinfo/ReuseReLU": lambda: Case(reuse_relu(), (r(2, 4, 8, 8),)),
    "torchinfo/PrunedLayerNameModel": lambda: Case(PrunedLayerNameModel(), (r(2, 8),)),
    "torchinfo/FakePrunedLayerModel": lambda: Case(PrunedLayerNameModel(fake_mask=True), (r(2, 8),)),
    "torchinfo/ParameterFCNet": lambda: Case(ParameterFCNet(), (r(2, 128),)),
    "torchinfo/InsideModel": lambda: Case(InsideModel(), (r(2, 2),)),
    "torchinfo/RecursiveWithMissingLayers": lambda: Case(RecursiveWithMissingLayers(), (r(2, 3, 16, 16),)),
    "torchinfo/CNNModuleList-A": lambda: Case(CNNModuleList(relu_first=False), (r(2, 1, 10),)),
    "torchinfo/CNNModuleList-B": lambda: Case(CNNModuleList(relu_first=True), (r(2, 1, 10),)),
    "torchinfo/SimpleRNN": lambda: Case(SimpleRNN(), (r(2, 3),)),
    "torchinfo/SimpleRNN-repeat": lambda: Case(SimpleRNN(repeat_outside_loop=True), (r(2, 3),)),
    "torchinfo/TensorKernelSizeConv": lambda: Case(TensorKernelSizeConv(), (r(2, 1, 12),)),
    "torchinfo/PartialJITModel": lambda: Case(PartialJITModel(), (r(2, 1, 28, 28),)),
    "torchinfo/MultiDeviceModel": lambda: Case(MultiDeviceModel(), (r(2, 10),)),
    # recurrent modules and cells, both layouts
    "nn.LSTM": lambda: Case(nn.LSTM(16, 32, 2), (r(6, 2, 16),), batch_dim=1),
    "nn.LSTM-batch-first-proj": lambda: Case(nn.LSTM(16, 32, batch_first=True, proj_size=8), (r(2, 6, 16),)),
    "nn.GRU": lambda: Case(nn.GRU(16, 32), (r(6, 2, 16),), batch_dim=1),
    "nn.GRU-bidirectional-batch-first": lambda: Case(nn.GRU(16, 24, 2, batch_first=True, bidirectional=True),
                                                     (r(2, 6, 16),)),
    "nn.RNN-relu": lambda: Case(nn.RNN(16, 32, nonlinearity="relu"), (r(6, 2, 16),), batch_dim=1),
    "nn.LSTMCell": lambda: Case(Cell(nn.LSTMCell(16, 32)), (r(2, 5, 16),)),
    "nn.GRUCell": lambda: Case(Cell(nn.GRUCell(16, 32)), (r(2, 5, 16),)),
    "nn.RNNCell": lambda: Case(Cell(nn.RNNCell(16, 32)), (r(2, 5, 16),)),
    "text-embedding-lstm": lambda: Case(TextLSTM(), (ids(1000, 2, 12),)),
    # attention, both layouts
    "nn.TransformerEncoderLayer-batch-first": lambda: Case(
        nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True), (r(2, 10, 32),)),
    "nn.TransformerEncoderLayer-seq-first": lambda: Case(
        nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0), (r(10, 2, 32),), batch_dim=1),
    "nn.TransformerDecoderLayer-batch-first": lambda: Case(
        nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, batch_first=True), (r(2, 7, 32), r(2, 10, 32))),
    "nn.TransformerDecoderLayer-seq-first": lambda: Case(
        nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0), (r(7, 2, 32), r(10, 2, 32)), batch_dim=1),
    "nn.TransformerEncoder-norm-first": lambda: Case(
        nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, 0.0, batch_first=True, norm_first=True), 2,
                              enable_nested_tensor=False), (r(2, 10, 32),)),
    "nn.Transformer-batch-first": lambda: Case(nn.Transformer(32, 4, 1, 1, 64, dropout=0.0, batch_first=True),
                                               (r(2, 9, 32), r(2, 6, 32))),
    "nn.Transformer-seq-first": lambda: Case(nn.Transformer(32, 4, 1, 1, 64, dropout=0.0),
                                             (r(9, 2, 32), r(6, 2, 32)), batch_dim=1),
    "nn.MultiheadAttention-seq-first": lambda: Case(nn.MultiheadAttention(32, 4),
                                                    (r(7, 2, 32), r(9, 2, 32), r(9, 2, 32)), batch_dim=1),
    # torchvision's architectures, written out, at a small input (and ViT at a small width)
    "resnet18": lambda: Case(resnet18(10), (r(2, 3, 32, 32),)),
    "mobilenet_v2": lambda: Case(mobilenet_v2(10), (r(2, 3, 16, 16),)),
    "efficientnet_b0": lambda: Case(efficientnet_b0(10), (r(2, 3, 16, 16),)),
    "vgg11": lambda: Case(vgg11(10), (r(2, 3, 32, 32),)),
    "googlenet": lambda: Case(GoogLeNet(10), (r(2, 3, 64, 64),)),
    "vit": lambda: Case(ViT(32, 8, 2, 64, 4, 128, 10), (r(2, 3, 32, 32),)),
}


def first_tensor(out: Any) -> torch.Tensor | None:
    """The first tensor in nested tuples, lists and dicts: the output a training step's loss is taken on."""
    if isinstance(out, torch.Tensor):
        return out
    items = out.values() if isinstance(out, dict) else out if isinstance(out, tuple | list) else ()
    for a in items:
        t = first_tensor(a)
        if t is not None:
            return t
    return None


def run(case: Case) -> Any:
    kw = dict(case.kwargs or {})
    if isinstance(case.inputs, dict):
        return case.model(**case.inputs, **kw)
    return case.model(*case.inputs, **kw)


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                       _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FlopCounterMode's formula for ``aten.convolution_backward`` with the weight gradient fixed for grouped
    convolutions. torch's own builds the weight gradient as one convolution of the input with grad_out
    (``conv_flop_count(t(x), t(grad_out), t(w))``), which ignores ``groups``: for a depthwise convolution it
    counts ``groups`` times too many products. Each weight of a grouped convolution meets exactly the products
    of the forward (one per output element and kernel tap of its group), so its gradient costs the forward's
    FLOPs: ``2 * N * out_channels * prod(out spatial) * (in_channels / groups) * prod(kernel)`` (the forward's
    ``conv_flop_count``). The input gradient is torch's own (a transposed convolution with the same weight)."""
    from torch.utils.flop_counter import conv_flop_count

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, x_shape, not transposed)
    if output_mask[1]:
        flops += conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return flops


def oracle(case: Case, mode: str, step: bool) -> int:
    """FlopCounterMode's FLOPs on the MATH / decomposed path (every product a plain matmul or convolution it
    counts): the forward in ``mode``, or a training step — cross-entropy against class 0 on a 2-d batch-first
    output, else the mean square of the first output tensor; then backward."""
    case.model.train(mode == "train")
    torch.manual_seed(0)
    with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False), \
            FlopCounterMode(display=False, custom_mapping={aten.convolution_backward: conv_backward_flop}) as f:
        y = first_tensor(run(case))
        if step:
            loss = F.cross_entropy(y, torch.zeros(y.shape[0], dtype=torch.long)) \
                if y.dim() == 2 and case.batch_dim == 0 else y.float().square().mean()
            loss.backward()
    case.model.zero_grad(set_to_none=True)
    return f.get_total_flops()


# ---- torchinfo's fixtures ablab cannot size: each ends in one error (tests/test_sizeup_suite.py) ---------------


class UninitializedParameterModel(nn.Module):
    """A lazy parameter, initialised inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.param = nn.UninitializedParameter()

    def forward(self, x):
        self.param = nn.Parameter(torch.zeros(128))
        return x


class EmptyModule(nn.Module):
    """forward takes no input."""

    def __init__(self) -> None:
        super().__init__()
        self.parameter = torch.rand(3, 3, requires_grad=True)

    def forward(self):
        return {"loss": self.parameter.sum()}


class RegisterParameter(nn.Sequential):
    """x += w[k] * block(x): an in-place change of a tensor backward needs."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__(*blocks)
        self.register_parameter("weights", nn.Parameter(torch.zeros(len(blocks))))

    def forward(self, x):
        for k, block in enumerate(self):
            x += self.weights[k] * block(x)
        return x


class PartialJITModel(SingleInputNet):
    """SingleInputNet with its two Linear layers compiled by TorchScript."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.jit.script(nn.Linear(320, 50)), torch.jit.script(nn.Linear(50, 10))


class MultiDeviceModel(nn.Module):
    """Layers on two devices (both the CPU here), the input moved between them."""

    def __init__(self, device1: str = "cpu", device2: str = "cpu") -> None:
        super().__init__()
        self.device1, self.device2 = device1, device2
        self.net1, self.relu, self.net2 = nn.Linear(10, 10).to(device1), nn.ReLU(), nn.Linear(10, 5).to(device2)

    def forward(self, x):
        return self.net2(self.relu(self.net1(x.to(self.device1))).to(self.device2))
