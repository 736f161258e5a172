"""Helpers shared by the benchmark scripts: timing, medians, the machine's load."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_FLOOR = "import torch, tensorflow, keras"


def env() -> dict[str, str]:
    """The environment for subprocesses: this checkout first on the path, TF quiet, Keras on TF."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    e.setdefault("KERAS_BACKEND", "tensorflow")
    return e


def timed_subprocess(args: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds of ``python args...`` (output discarded) and its exit status."""
    wall, _, rc = timed_subprocess_cpu(args, extra_env)
    return wall, rc


def timed_subprocess_cpu(args: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, the process and its children: a measure that
    other processes' load inflates far less than wall time) and the exit status of ``python args...``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    rc = subprocess.run([sys.executable, *args], cwd=ROOT, env={**env(), **(extra_env or {})},
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, rc


def median(xs) -> float:
    return statistics.median(xs)


def load() -> str:
    """The 1, 5 and 15 minute load averages and the core count, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def fmt_times(xs) -> str:
    return " ".join(f"{x:.2f}" for x in xs)
