"""A JSON list of records read with the line each record starts on, so that errors can name it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmbalance.errors import DataError

_WS = " \t\n\r"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def json_records(path: Path) -> list[tuple[int, Any]]:
    """``[(line, record), ...]`` of the JSON list in ``path``, each record with the line it starts on; a
    file that is not a JSON list is a one-line error naming the file and line.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = p.write_text('[\\n {"a": 1},\\n\\n {"a": 2}\\n]')
    >>> json_records(p)
    [(2, {'a': 1}), (4, {'a': 2})]
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable UTF-8 file ({type(exc).__name__}: {exc})") from exc
    decoder, out = json.JSONDecoder(), []
    i = _skip(text, 0)
    line = 1 + text.count("\n", 0, i)
    if i >= len(text) or text[i] != "[":
        raise DataError(f"{path} line {line}: expected a JSON list of records, [{{...}}, ...]")
    pos, i = i, _skip(text, i + 1)
    while i < len(text) and text[i] != "]":
        line += text.count("\n", pos, i)
        pos = i
        try:
            record, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
        out.append((line, record))
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)
        elif i >= len(text) or text[i] != "]":
            where = 1 + text.count("\n", 0, min(i, len(text)))
            raise DataError(f"{path} line {where}: expected ',' or ']' after a record")
    if i >= len(text):
        raise DataError(f"{path} line {1 + text.count(chr(10))}: the JSON list is not closed with ']'")
    return out
