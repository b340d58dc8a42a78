"""Library errors name configuration keys (``input_shape: ...``); a command names its flags. ``flags``
rewrites the keys of a ``UserError`` raised inside it into the command's flags (``--input: ...``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ablab.errors import UserError


def to_flags(message: str, mapping: Mapping[str, str]) -> str:
    """Spell the keys a message opens with (``x: ...``, ``layer, input: ...``, ``input_shape '1x2': ...``)
    and the key after "give " or "with " as flags. Keys after a file name (``net.json: x: ...``) stay keys."""
    m = re.match(r"([\w, ]+?)(?=: | ')", message)
    if m and all(k.strip() in mapping for k in m.group(1).split(",")):
        head = ", ".join(mapping[k.strip()] for k in m.group(1).split(","))
        message = head + message[m.end():]
    return re.sub(r"(?<=give |with )(\w+)\b", lambda g: mapping.get(g.group(1), g.group(1)), message)


@contextmanager
def flags(mapping: Mapping[str, str]) -> Iterator[None]:
    """Run the block; a ``UserError`` leaving it is re-raised with keys spelled as flags."""
    try:
        yield
    except UserError as e:
        if e.key in mapping:  # the error says which key it is about
            raise UserError(e.detail, key=mapping[e.key]) from None
        raise UserError(to_flags(str(e), mapping)) from None
