"""Library errors name configuration keys (``input_shape: ...``); a command names its flags. ``flags``
rewrites the keys of a ``UserError`` raised inside it into the command's flags (``--input: ...``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ablab.errors import UserError


def to_flags(message: str, mapping: Mapping[str, str]) -> str:
    """Replace each key where it names a value (``key:``, ``key 'x'``, ``give key``) by its flag."""
    for key, flag in mapping.items():
        k = re.escape(key)
        message = re.sub(rf"(?<![\w\-.\[])({k})(?=: | '|\[)|(?<=give )({k})\b", flag, message)
    return message


@contextmanager
def flags(mapping: Mapping[str, str]) -> Iterator[None]:
    """Run the block; a ``UserError`` leaving it is re-raised with keys spelled as flags."""
    try:
        yield
    except UserError as e:
        raise UserError(to_flags(str(e), mapping)) from None
