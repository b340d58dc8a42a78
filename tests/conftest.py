"""Shared test settings. Under CI (CI=true) hypothesis draws the same examples every time, so a CI run is
reproducible locally with `CI=true pytest`; elsewhere it explores new examples on each run."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(config, items):
    """`gpu`-marked tests run only where CUDA is present (torch is imported only if such tests were collected)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import pytest
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: no GPU here")
    for item in gpu_items:
        item.add_marker(skip)
