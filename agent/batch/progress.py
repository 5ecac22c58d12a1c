"""Batch progress on stderr: a rich bar with ETA, live accuracy and errors on a terminal; plain lines otherwise."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .rows import BatchRow


class Tally:
    """Running figures over the rows finished so far."""

    def __init__(self) -> None:
        self.done = self.errors = self.scored = self.judged = 0
        self.em = self.f1 = self.correct = 0.0

    def add(self, row: BatchRow) -> None:
        self.done += 1
        self.errors += row.error is not None
        if row.gold:
            self.scored += 1
            if row.scores is not None:
                self.em += row.scores.em or 0.0
                self.f1 += row.scores.f1 or 0.0
                if row.scores.judge is not None:
                    self.judged += 1
                    self.correct += row.scores.judge == "correct"

    def accuracy(self) -> str:
        if not self.scored:
            return "no gold"
        text = f"EM {self.em / self.scored:.1%} F1 {self.f1 / self.scored:.1%}"
        return text + (f" judge {self.correct / self.judged:.1%}" if self.judged else "")


def _eta(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class BatchProgress:
    """Use as a context manager; call `advance(row)` as each question finishes."""

    def __init__(self, total: int, *, stream: TextIO | None = None, quiet: bool = False, rich: bool | None = None):
        self.total, self.quiet = total, quiet
        self.stream = stream or sys.stderr
        self.tally = Tally()
        is_tty = getattr(self.stream, "isatty", lambda: False)()
        self.rich = (is_tty and not os.environ.get("NO_COLOR")) if rich is None else rich
        self._started = time.monotonic()
        self._progress: Progress | None = None

    def __enter__(self) -> BatchProgress:
        if self.rich and not self.quiet and self.total:
            self._progress = Progress(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[accuracy]} · [red]{task.fields[errors]} failed"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("batch", total=self.total, accuracy="no gold yet", errors=0)
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, row: BatchRow) -> None:
        self.tally.add(row)
        t = self.tally
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, advance=1, accuracy=t.accuracy(), errors=t.errors)
            return
        elapsed = time.monotonic() - self._started
        eta = elapsed / t.done * (self.total - t.done)
        width = len(str(self.total))
        outcome = row.error or (f"EM {row.scores.em:.0f}" if row.scores else "")
        self.stream.write(
            f"[{t.done:>{width}}/{self.total}] {row.id} {row.termination} {row.usage.seconds:.1f}s {outcome} | "
            f"{t.accuracy()} · {t.errors} failed | {_eta(elapsed)} elapsed, ETA {_eta(eta)}\n"
        )
        self.stream.flush()
