"""Where a key is written in a TOML text: ``tomllib`` gives no positions, so study-file errors find
the line of the offending key by scanning the text (see :func:`find_line`)."""

from __future__ import annotations

import re

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_dotted(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def find_line(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line where the key ``path`` (e.g. ("variants", "bn", "dropout")) is set or its table
    starts; the closest enclosing key's line when the exact key is not written out; None if absent."""
    best: tuple[int, int] | None = None  # (matched depth, line)
    table: list[str] = []
    in_multiline = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_multiline:  # skip the body of multi-line arrays/strings (a crude but sufficient guard)
            if line.count('"""') % 2 == 1 or line.strip().startswith("]"):
                in_multiline = False
            continue
        h = _HEADER_RE.match(line)
        if h and not _KEY_RE.match(line):
            table = _split_dotted(h.group(2))
            full = table
        else:
            k = _KEY_RE.match(line)
            if not k:
                continue
            full = table + _split_dotted(k.group(1))
            rest = line[k.end():].strip()
            if (rest.startswith("[") and "]" not in rest) or rest.count('"""') == 1:
                in_multiline = True
        depth = 0
        for a, b in zip(full, path, strict=False):
            if a != b:
                break
            depth += 1
        if depth == len(full) <= len(path) and (best is None or depth > best[0]):
            best = (depth, lineno)
            if depth == len(path):
                return lineno
    return best[1] if best else None
