"""Deterministic train/validation splits and ``limit`` subsets, as index tensors.

Rules (the same for every dataset):

- **validation**: ``n_val = round_half_up(n_train_official * val_fraction)`` samples drawn by
  ``torch.randperm`` from a generator seeded with ``split_seed``; the rest is the training split. With
  ``stratified=True`` each class gives its share (largest-remainder rounding so the total is still
  ``n_val``), so class proportions in validation match the official training set.
- **limit N**: the training split keeps N of its samples, drawn by the same seeded generator (so a
  limited run uses a random, class-mixed subset, not the first N files rows); validation keeps
  ``round_half_up(N * val_fraction / (1 - val_fraction))`` of its samples (at least 1 when validation is
  not empty), preserving the train:val ratio; test keeps ``min(N, n_test)`` samples drawn with the
  fixed seed :data:`TEST_SUBSET_SEED` — independent of ``split_seed`` so every seed of a study is
  scored on the same test subset. Validation and limited subsets are always subsets of the full
  splits, so no limit can move a sample from validation into training.
- Every returned index tensor is sorted ascending (the original file order is kept inside a split).

:func:`split_sizes` is these rules as arithmetic (no data, no torch): the splitter draws exactly that
many samples, and the study cost estimate (``ablab study run --dry-run``) counts with it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

TEST_SUBSET_SEED = 0  # seed of the test subset under ``limit``: fixed, so all split seeds share it


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5 + 1e-9))  # 1e-9: 0.1 * 45 = 4.5000000000000001 rounds like 4.5


def holdout_size(n: int, test_fraction: float) -> int:
    """Test samples held out of ``n`` when a user dataset comes without a test split (at least 1)."""
    return max(1, round_half_up(n * test_fraction))


def split_sizes(n_train: int, n_test: int, *, val_fraction: float,
                limit: int | None) -> tuple[int, int, int]:
    """(train, val, test) sample counts of the splits that :func:`split_indices` returns for an official
    training set of ``n_train`` and test set of ``n_test`` samples — the one definition of those rules."""
    n_val = round_half_up(n_train * val_fraction)
    n_tr, n_te = n_train - n_val, n_test
    if limit is not None:
        n_tr = min(limit, n_tr)
        if n_val:
            n_val = min(max(1, round_half_up(limit * val_fraction / (1 - val_fraction))), n_val)
        n_te = min(limit, n_test)
    return n_tr, n_val, n_te


def _generator(seed: int) -> torch.Generator:
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


def choose(y: torch.Tensor, pool: torch.Tensor, k: int, gen: torch.Generator,
           stratified: bool = False) -> torch.Tensor:
    """``k`` indices out of ``pool`` (indices into ``y``), drawn by ``gen``; sorted ascending.

    Stratified: class c contributes ``k * n_c / n`` samples, rounded by largest remainder (ties go to
    the lower class index) so the counts sum to exactly ``k``.
    """
    import torch

    perm = pool[torch.randperm(pool.numel(), generator=gen)]  # (n,) pool in random order
    if not stratified or k == 0 or k >= pool.numel():
        return perm[:k].sort().values
    yp = y[perm]
    counts = torch.bincount(yp).to(torch.float64)
    exact = counts * (k / pool.numel())
    quota = exact.floor().to(torch.int64)
    short = k - int(quota.sum())
    if short:
        frac = exact - quota.to(torch.float64)
        order = torch.sort(-frac, stable=True).indices  # largest remainder first, lower class on ties
        quota[order[:short]] += 1
    picked = [perm[yp == c][: int(q)] for c, q in enumerate(quota.tolist()) if q > 0]
    return torch.cat(picked).sort().values


def split_indices(y_train: torch.Tensor, n_test: int, *, val_fraction: float, split_seed: int,
                  stratified: bool, limit: int | None,
                  y_test: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) index tensors following the module rules above; their lengths are
    :func:`split_sizes`."""
    import torch

    n = y_train.numel()
    n_tr, n_val, n_te = split_sizes(n, n_test, val_fraction=val_fraction, limit=limit)
    gen = _generator(split_seed)
    everything = torch.arange(n)
    val = choose(y_train, everything, round_half_up(n * val_fraction), gen, stratified)
    keep = torch.ones(n, dtype=torch.bool)
    keep[val] = False
    train = everything[keep]
    test = torch.arange(n_test)
    if limit is not None:
        train = choose(y_train, train, n_tr, gen, stratified)
        if val.numel():
            val = choose(y_train, val, n_val, gen, stratified)
        if n_te < n_test:
            yt = y_test if y_test is not None else torch.zeros(n_test, dtype=torch.int64)
            test = choose(yt, test, n_te, _generator(TEST_SUBSET_SEED), stratified)
    return train, val, test
