"""Shared test settings. Under CI (CI=true) hypothesis draws the same examples every time, so a CI run is
reproducible locally with `CI=true pytest`; elsewhere it explores new examples on each run."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
