"""Student-style models, written the way course solutions write them (the tests size them up, train them,
check them against torch's own counters). Nothing here knows about ablab."""

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5V1(nn.Module):
    """LeNet-5 as the course writes it (61,706 parameters, 416,520 MACs on 1x28x28), with the two
    flags a student ablates."""

    def __init__(self, use_dropout=False, use_batch_norm=False):
        super().__init__()
        bn = (lambda c: nn.BatchNorm2d(c)) if use_batch_norm else (lambda c: nn.Identity())
        self.feature = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5, stride=1, padding=2),  # 28x28
            bn(6),
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # 14x14
            nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5, stride=1),  # 10x10
            bn(16),
            nn.Tanh(),
            nn.AvgPool2d(kernel_size=2, stride=2),  # 5x5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features=16 * 5 * 5, out_features=120),
            nn.Tanh(),
            nn.Dropout(0.5) if use_dropout else nn.Identity(),
            nn.Linear(in_features=120, out_features=84),
            nn.Tanh(),
            nn.Dropout(0.5) if use_dropout else nn.Identity(),
            nn.Linear(in_features=84, out_features=10),
        )

    def forward(self, x):
        return self.classifier(self.feature(x))


class FunctionalCNN(nn.Module):
    """The PyTorch-tutorial style: layers as attributes, the nonlinearities and pooling as functions."""

    def __init__(self, width=6, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 5)
        self.conv2 = nn.Conv2d(width, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, w, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, 4, 4)
        x = x.view(x.size(0), -1)  # (B, 256)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class FlattenCNN(nn.Module):
    """``torch.flatten`` and a tensor-method relu between two convs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2)
        self.head = nn.Linear(8 * 13 * 13, 10)

    def forward(self, x):
        x = self.conv1(x).relu()
        x = torch.sigmoid(self.conv2(x))
        return self.head(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(x + y)  # the residual add


class ResidualNet(nn.Module):
    def __init__(self, channels=8, blocks=2):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.blocks = nn.Sequential(*[Block(channels) for _ in range(blocks)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.blocks(x)
        return self.fc(torch.flatten(self.pool(x), 1))


class TiedMLP(nn.Module):
    """Shared weights two ways: one module called twice, and two modules holding the same weight
    tensor. torch counts each parameter once; so must the summary."""

    def __init__(self, hidden=32):
        super().__init__()
        self.enc = nn.Linear(784, hidden)
        self.shared = nn.Linear(hidden, hidden)  # called twice in forward
        self.a = nn.Linear(hidden, hidden)
        self.b = nn.Linear(hidden, hidden, bias=False)
        self.b.weight = self.a.weight  # tied: one tensor, two modules
        self.out = nn.Linear(hidden, 10)

    def forward(self, x):
        h = torch.tanh(self.enc(x.flatten(1)))
        h = torch.tanh(self.shared(h))
        h = torch.tanh(self.shared(h))
        h = torch.tanh(self.b(torch.tanh(self.a(h))))
        return self.out(h)


class CumsumNet(nn.Module):
    """A model with an op ablab has no cost formula for (``torch.cumsum``)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        x = torch.cumsum(F.relu(self.conv(x)), dim=3)
        return self.fc(x.flatten(1))


def make_mlp(width=32, depth=1):
    """A factory returning a module (``mymodel.py:make_mlp``)."""
    layers = [nn.Flatten()]
    n = 784
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.ReLU()]
        n = width
    layers.append(nn.Linear(n, 10))
    return nn.Sequential(*layers)


class NotAModel:
    """A plain class: refused (not an nn.Module)."""


def not_a_factory():
    return 42


class SevenWay(nn.Module):
    """Outputs 7 logits: does not fit a 10-class dataset."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 7)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Picky(nn.Module):
    """A constructor that refuses a value itself."""

    def __init__(self, width=8):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))
