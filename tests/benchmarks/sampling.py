"""How the bulk benchmark waits for a quiet machine and measures a side run as a subprocess.

A side's memory is that of its whole process tree (Prefect's ephemeral server is a child of `eia`),
sampled with psutil every ~0.1 s; the PostgreSQL server is not a child of the side, so its memory
is not counted. The machine is shared, so before each timed side the benchmark waits until the
CPUs have been idle for a few seconds and the load average has come down, and records the load
average it started at; a side that started on a busy machine (wait timed out) is marked as such.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_EVERY_S = 0.1


@dataclass(frozen=True)
class Quiet:
    """The machine's state when a side started."""

    load1: float  # 1-minute load average at the start
    waited_s: float
    quiet: bool  # False: the wait timed out and the side ran on a busy machine

    def describe(self) -> str:
        return f"{self.load1:.2f}" + ("" if self.quiet else " (busy: wait timed out)")


@dataclass(frozen=True)
class QuietPolicy:
    max_cpu_percent: float = 10.0  # all CPUs together, over each 1 s window
    windows: int = 3  # consecutive quiet windows needed
    max_load1: float = 1.0
    timeout_s: float = 600.0


def wait_for_quiet(policy: QuietPolicy) -> Quiet:
    """Blocks until `policy.windows` consecutive 1 s windows are under the CPU threshold and the
    1-minute load average is under its threshold, or until the timeout."""
    started = time.monotonic()
    streak = 0
    while True:
        busy = psutil.cpu_percent(interval=1.0)
        streak = streak + 1 if busy <= policy.max_cpu_percent else 0
        load1 = os.getloadavg()[0]
        waited = time.monotonic() - started
        if streak >= policy.windows and load1 <= policy.max_load1:
            return Quiet(load1, waited, True)
        if waited >= policy.timeout_s:
            return Quiet(load1, waited, False)


@dataclass(frozen=True)
class Sampled:
    returncode: int
    wall_s: float
    peak_tree_mb: float  # peak of the summed RSS of the process and all its descendants (MB = 10^6 bytes)
    peak_main_mb: float  # peak RSS of the process itself
    peak_processes: int  # most processes in the tree at once
    output: str


def _tree_rss(root: psutil.Process) -> tuple[int, int, int]:
    """(RSS of the tree, RSS of the root, processes) now; processes that just exited count as 0."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    total = main = 0
    for proc in procs:
        try:
            rss = proc.memory_info().rss
        except psutil.NoSuchProcess:  # also a zombie (ZombieProcess is a subclass)
            continue
        total += rss
        if proc.pid == root.pid:
            main = rss
    return total, main, len(procs)


def run_sampled(cmd: list[str], env: Mapping[str, str], *, cwd: Path, log: Path, timeout_s: float = 7200.0) -> Sampled:
    """Runs `cmd` in its own session with output to `log`, sampling its tree's RSS until it exits.

    The wall time runs from just before the process is started until it has exited (`wait` returns
    at once then, not at the next sample). Whatever it leaves behind in its session is killed.
    """
    peak_tree = peak_main = peak_procs = 0
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        root = psutil.Process(proc.pid)
        try:
            while True:
                tree, main, procs = _tree_rss(root)
                peak_tree, peak_main, peak_procs = max(peak_tree, tree), max(peak_main, main), max(peak_procs, procs)
                try:
                    proc.wait(SAMPLE_EVERY_S)
                    break
                except subprocess.TimeoutExpired:
                    if time.perf_counter() - started > timeout_s:
                        raise RuntimeError(f"{cmd[0]} did not finish in {timeout_s:.0f} s (log: {log})") from None
            wall = time.perf_counter() - started
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Sampled(proc.returncode, wall, peak_tree / 1e6, peak_main / 1e6, peak_procs, log.read_text(errors="replace"))
