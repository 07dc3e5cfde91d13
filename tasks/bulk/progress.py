"""Progress of a bulk load: a rich progress bar on a terminal, periodic log lines elsewhere.

A dataset load runs for many minutes, so the user must see it move: lines and observations
committed, rows per second, and an ETA. The ETA comes from the compressed bytes consumed by the
last committed batch, the only measure whose total is known before the archive is read to the end
(the parser runs ahead of the database by a batch at most, so committed work is what counts).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn

logger = logging.getLogger(__name__)


class LoadProgress(Protocol):
    def start(self, dataset: str, *, compressed_total: int, lines_total: int | None, first_line: int) -> None: ...

    def committed(self, *, rows: int, lines: int, compressed: int) -> None:
        """After each batch: items (observations + rejections) committed by this run, the line reached
        and the compressed bytes consumed up to the end of the batch."""

    def finish(self) -> None: ...


class NullProgress:
    def start(self, dataset: str, *, compressed_total: int, lines_total: int | None, first_line: int) -> None:
        pass

    def committed(self, *, rows: int, lines: int, compressed: int) -> None:
        pass

    def finish(self) -> None:
        pass


def _rate(rows: int, since: float) -> float:
    return rows / max(time.monotonic() - since, 1e-6)


class RichProgress:
    """A progress bar on stderr; use when stderr is a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[lines]} lines"),
            TextColumn("{task.fields[rows]} observations"),
            TextColumn("{task.fields[rate]} rows/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            refresh_per_second=4,
        )
        self._task: TaskID | None = None
        self._since = time.monotonic()
        self._lines_total: int | None = None

    def start(self, dataset: str, *, compressed_total: int, lines_total: int | None, first_line: int) -> None:
        self._since = time.monotonic()
        self._lines_total = lines_total
        self._progress.start()
        self._task = self._progress.add_task(
            dataset, total=max(compressed_total, 1), lines=self._lines(first_line), rows="0", rate="-"
        )

    def _lines(self, lines: int) -> str:
        return f"{lines:,}" + (f"/{self._lines_total:,}" if self._lines_total else "")

    def committed(self, *, rows: int, lines: int, compressed: int) -> None:
        if self._task is not None:
            self._progress.update(
                self._task,
                completed=compressed,
                lines=self._lines(lines),
                rows=f"{rows:,}",
                rate=f"{_rate(rows, self._since):,.0f}",
            )

    def finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[0]
            if task.total is not None:
                self._progress.update(self._task, completed=task.total)
        self._progress.stop()
        self._task = None


class LogProgress:
    """One log line every `every_s` seconds: for workers whose output is a log, not a terminal."""

    def __init__(
        self, log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None, every_s: float = 30.0
    ) -> None:
        self._log = log or logger
        self._every = every_s
        self._dataset = ""
        self._total = 1
        self._since = self._last = time.monotonic()
        self._lines = 0
        self._compressed = 0
        self._rows = 0

    def start(self, dataset: str, *, compressed_total: int, lines_total: int | None, first_line: int) -> None:
        self._dataset, self._total = dataset, max(compressed_total, 1)
        self._since = self._last = time.monotonic()
        self._lines = first_line

    def committed(self, *, rows: int, lines: int, compressed: int) -> None:
        self._rows, self._lines, self._compressed = rows, lines, compressed
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._log.info("%s", self.line())

    def line(self) -> str:
        done = self._compressed / self._total
        elapsed = time.monotonic() - self._since
        eta = f"{elapsed * (1 - done) / done:,.0f} s" if done > 0 else "unknown"
        return (
            f"{self._dataset}: {self._lines:,} lines, {self._rows:,} observations, "
            f"{_rate(self._rows, self._since):,.0f} rows/s, {done:.0%} of the archive, ETA {eta}"
        )

    def finish(self) -> None:
        pass
