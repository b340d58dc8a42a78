"""The one base class of user-facing errors: the CLI prints its message and exits with code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (spec, file, flag, data); the message names the place and what was
    expected.

    ``key``: the configuration key the error is about (``epochs``, ``input_shape``). The message then reads
    ``"key: detail"``, and a command that exposes the key as a flag restates it as ``"--flag: detail"``
    (``ablab.cli.keys``) from ``key`` and ``detail`` — no parsing of the message."""

    def __init__(self, message: str = "", *, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.detail = message
