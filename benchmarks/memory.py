"""Memory: peak RSS of ``equivalence run --jobs 1`` (every case, float32 and float64, CPU), next to
the import floor's, and a leak check: case runs repeated in one process must not grow.

* Peak RSS: each command is a fresh subprocess; ``os.wait4`` returns its own
  ``ru_maxrss`` (KiB on Linux).
* Leak check, in this process: one warm-up pass over the sampled case runs (every
  ``--stride``-th of all case x dtype jobs: first traces, caches, lazy imports), then
  ``--runs`` more runs cycling through the same sample, the current RSS
  (``/proc/self/statm``) read after ``gc.collect()`` every 10 runs. Reported: the growth
  from after the warm-up to the end, and the least-squares slope per run.

    PYTHONPATH=. python -m benchmarks.memory [--runs 100] [--stride 8] [--trim] [--no-peak]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys

import numpy as np

from benchmarks._common import IMPORT_FLOOR, ROOT, env, load

# one process: ru_maxrss is a process's own peak (the largest of its waited-for children's at
# most), so a run with workers (the default --jobs auto) would show one runner's peak, not the sum
SUITE = ["-m", "equivalence.cli", "run", "--dtype", "float32,float64", "--device", "cpu", "--jobs", "1"]


def peak_rss_mib(args: list[str]) -> float:
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} exited with {proc.returncode}")
    return usage.ru_maxrss / 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def trim() -> None:
    """glibc's ``malloc_trim(0)``: freed heap memory goes back to the system, so that RSS counts
    what is in use, not what the allocator keeps for later (elsewhere: nothing)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def leak_check(runs: int, stride: int, trimmed: bool = False) -> None:
    from equivalence.case import select
    from equivalence.frameworks import Context, tf
    from equivalence.runner import run_case

    tf().get_logger().setLevel("ERROR")
    jobs = [(c, d) for d in ("float32", "float64") for c in select(None) if d in c.dtypes][::stride]
    for case, dtype in jobs:  # warm-up
        run_case(case, Context(dtype=dtype))
    gc.collect()
    if trimmed:
        trim()
    xs, ys = [0], [rss_mib()]
    failed = 0
    for i in range(1, runs + 1):
        case, dtype = jobs[(i - 1) % len(jobs)]
        failed += not run_case(case, Context(dtype=dtype)).passed
        if i % 10 == 0:
            gc.collect()
            if trimmed:
                trim()
            xs.append(i)
            ys.append(rss_mib())
    slope = float(np.polyfit(xs, ys, 1)[0])
    print(f"leak check: {len(jobs)} sampled case runs (every {stride}th of all jobs), warm-up pass, then {runs} runs"
          f" ({failed} not passing){'; RSS read after malloc_trim(0)' if trimmed else ''}")
    print("  RSS MiB after run " + ", ".join(f"{x}: {y:.1f}" for x, y in zip(xs, ys)))
    print(f"  growth after warm-up: {ys[-1] - ys[0]:+.1f} MiB over {runs} runs; slope {1024 * slope:+.1f} KiB per run")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--stride", type=int, default=8, help="sample every STRIDE-th case run (default 8)")
    p.add_argument("--trim", action="store_true",
                   help="read RSS after glibc's malloc_trim(0): memory in use, not what malloc keeps for reuse")
    p.add_argument("--no-peak", action="store_true", help="only the leak check")
    args = p.parse_args(argv)
    print(f"before: {load()}")
    if not args.no_peak:
        floor = peak_rss_mib(["-c", IMPORT_FLOOR])
        suite = peak_rss_mib(SUITE)
        print(f"peak RSS: import floor {floor:.0f} MiB, equivalence run --jobs 1 {suite:.0f} MiB (ratio {suite / floor:.2f})")
    leak_check(args.runs, args.stride, args.trim)
    print(f"after:  {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
