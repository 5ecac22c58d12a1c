"""The output JSONL: one complete line per finished question, appended with a single write.

A line is written only when its question is done, with one `os.write` on an O_APPEND descriptor,
so a batch killed at any moment (kill -9 included) leaves whole lines and at worst one torn last
line (disk full, power loss). `--resume` reads the ids already present, cuts a torn tail off, and
appends the rest: nothing is lost and nothing is repeated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from ...traces.redact import Redactor
from ..errors import UsageError
from .rows import BatchRow


class ExistingOutput(BaseModel):
    rows: list[dict] = Field(default_factory=list, description="complete rows, file order")
    bad_lines: list[int] = Field(default_factory=list, description="complete lines that are not a row object")
    torn_bytes: int = Field(0, description="bytes after the last newline (a write cut short)")
    valid_bytes: int = 0

    @property
    def done_ids(self) -> set[str]:
        return {str(r["id"]) for r in self.rows}


def scan_output(path: Path) -> ExistingOutput:
    """What an earlier run left in `path` (empty when the file does not exist)."""
    if not path.exists():
        return ExistingOutput()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    valid = data.rfind(b"\n") + 1
    found = ExistingOutput(torn_bytes=len(data) - valid, valid_bytes=valid)
    for n, line in enumerate(data[:valid].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            found.bad_lines.append(n)
            continue
        if isinstance(row, dict) and row.get("id") not in (None, ""):
            found.rows.append(row)
        else:
            found.bad_lines.append(n)
    return found


class OutputWriter:
    """Appends rows to the output file; safe to share between the tasks of one event loop."""

    def __init__(self, path: Path, fd: int, fsync: bool = False, redactor: Redactor | None = None):
        self.path, self._fd, self._fsync = path, fd, fsync
        self.redactor = redactor  # the configured secrets and patterns (default: env secrets, built-ins)

    @classmethod
    def open(
        cls,
        path: Path,
        existing: ExistingOutput,
        *,
        keep_rows: list[dict] | None = None,
        fsync: bool = False,
        redactor: Redactor | None = None,
    ):
        """Open for appending after `existing`: a torn tail is cut off; `keep_rows` rewrites the file
        atomically with only those rows first (used to drop failed rows that are asked again)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if keep_rows is not None:
                tmp = path.with_name(f".{path.name}.rewrite")
                tmp.write_bytes(b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode() for r in keep_rows))
                os.replace(tmp, path)
            elif existing.torn_bytes:
                os.truncate(path, existing.valid_bytes)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror}") from None
        return cls(path, fd, fsync, redactor)

    def append(self, row: BatchRow) -> None:
        data = row.to_line(self.redactor)
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write on a regular file: finish the line
                written += os.write(self._fd, data[written:])
            if self._fsync:
                os.fsync(self._fd)
        except OSError as e:
            raise UsageError(f"cannot append to {self.path}: {e.strerror}") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
