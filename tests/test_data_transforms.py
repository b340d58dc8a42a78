"""normalize and the vectorized augment, checked against a per-sample loop that draws the same random
numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ablab.data import augment, normalize


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference(x: torch.Tensor, g: torch.Generator, p: int, flip: bool) -> torch.Tensor:
    """The obvious loop: pad, cut the window, maybe mirror — one sample at a time."""
    n, _, h, w = x.shape
    oy = torch.randint(0, 2 * p + 1, (n,), generator=g)
    ox = torch.randint(0, 2 * p + 1, (n,), generator=g)
    fl = torch.rand(n, generator=g) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    out = []
    for i in range(n):
        img = F.pad(x[i], (p, p, p, p))[:, oy[i]: oy[i] + h, ox[i]: ox[i] + w]
        out.append(img.flip(-1) if fl[i] else img)
    return torch.stack(out)


@pytest.mark.parametrize("p, flip", [(4, True), (4, False), (0, True), (2, True), (1, False)])
def test_augment_matches_per_sample_loop(p, flip):
    x = torch.randn(64, 3, 9, 7, generator=_gen(1))
    got = augment(x, _gen(5), crop_padding=p, flip=flip)
    want = _reference(x, _gen(5), p, flip)
    assert torch.equal(got, want)


def test_augment_chunks_give_the_same_result(monkeypatch):
    x = torch.randn(64, 2, 6, 6, generator=_gen(2))
    monkeypatch.setattr("ablab.data.transforms.CHUNK", 10)  # 7 chunks, the last one partial
    assert torch.equal(augment(x, _gen(8)), _reference(x, _gen(8), 4, True))


def test_augment_properties():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    assert torch.equal(augment(x, _gen(0), crop_padding=0, flip=False), x)
    out = augment(x, _gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    # every output pixel is an input pixel of the same sample or zero padding
    for i in range(2):
        assert set(out[i].flatten().tolist()) <= set(x[i].flatten().tolist()) | {0.0}
    assert torch.equal(augment(x, _gen(3)), augment(x, _gen(3)))
    flips = torch.stack([augment(x[:1], _gen(s), crop_padding=0) for s in range(40)])
    mirrored = (flips == x[:1].flip(-1)).flatten(1).all(1)
    assert 5 < int(mirrored.sum()) < 35, "about half the draws mirror the image"


def test_augment_rejects_non_batch():
    with pytest.raises(ValueError, match=r"expected a batch \(N, C, H, W\), got shape \(3, 8, 8\)"):
        augment(torch.zeros(3, 8, 8), _gen(0))


def test_normalize_per_channel():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    out = normalize(x, (0.0, 0.2, 0.5), (1.0, 0.5, 0.25))
    assert out.dtype == torch.float32 and out.shape == (2, 3, 2, 2)
    assert out[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r"3 channels but 1 means and 1 stds"):
        normalize(x, (0.5,), (0.5,))
