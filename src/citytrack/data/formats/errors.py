"""One error type for every malformed input file, naming the file and the line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class FormatError(ValueError):
    """A file does not follow the format it claims to be in.

    The message always names the file and, when known, the 1-based line, so a user
    can open the file and see the problem without a debugger.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def require_file(path: str | os.PathLike[str], what: str) -> None:
    """Raise `FormatError` naming `path` when it is missing or not a file (`what` says what it should hold)."""
    if not Path(path).is_file():
        raise FormatError(path, f"{what} is missing" if not Path(path).exists() else f"{what} is not a file")


def read_text_file(path: str | os.PathLike[str]) -> str:
    """The file's text (UTF-8); a binary or otherwise undecodable file raises `FormatError` naming it."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FormatError(path, f"not a UTF-8 text file (byte 0x{data[err.start]:02x} at offset {err.start})", line) from None


def read_json_file(path: str | os.PathLike[str]) -> Any:
    """The file's JSON value; invalid JSON raises `FormatError` naming the file and the line."""
    try:
        return json.loads(read_text_file(path))
    except json.JSONDecodeError as err:
        raise FormatError(path, f"invalid JSON: {err.msg}", err.lineno) from None
