"""One error type for every malformed input file, naming the file and the line."""

from __future__ import annotations

import os


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
