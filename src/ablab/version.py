"""ablab's version, as the installed distribution records it (one source: pyproject.toml)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ablab")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
