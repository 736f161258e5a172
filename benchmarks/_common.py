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


def timed_subprocess(args: list[str]) -> tuple[float, int]:
    """Wall seconds of ``python args...`` (output discarded) and its exit status."""
    start = time.perf_counter()
    rc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, rc


def median(xs) -> float:
    return statistics.median(xs)


def load() -> str:
    """The 1, 5 and 15 minute load averages and the core count, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def fmt_times(xs) -> str:
    return " ".join(f"{x:.2f}" for x in xs)
