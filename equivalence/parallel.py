"""``equivalence run --jobs N``: the cases spread over N worker processes.

Each worker is a fresh interpreter (``spawn``: neither framework survives a fork
reliably) that imports torch, TensorFlow and the registry once, configures them
as the CLI does (determinism, the TF32 policy), and runs whole cases, every
dtype of a case in one worker (they share the case's float64 reference:
runner.compute). The slowest cases go first, so no worker is left with a long
case at the end. A worker's threads: the cores over the workers, unless
``OMP_NUM_THREADS`` / ``TF_NUM_INTRAOP_THREADS`` / ``OPENBLAS_NUM_THREADS`` are set
already (N workers with every core's worth of threads each would oversubscribe the
machine). They are put in the environment the workers are spawned with, not set in
the worker: NumPy's OpenBLAS fixes its thread pool when NumPy is imported, which a
spawned worker does while unpickling its initializer, before the initializer runs.
Measured on 2 idle cores, the seven ladder trajectories with ``--jobs 2``: 83.5 s
wall and 153 s CPU with each worker's OpenBLAS left at 2 threads (busy-waiting
threads on a shared core), 42.7 s and 71 s with 1.

Results are the ones a serial run with the same threads per process gives, row
for row: every case is seeded and both frameworks run deterministic kernels. A
different thread count may split a matmul's or a convolution's reductions
differently, which moves float results within their tolerances (measured: a
serial run with 2 threads and ``--jobs 2`` with 1 thread each differ in the last
bits of 8 of 76 case runs, all passing).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Sequence

from .case import Case
from .frameworks import Context
from .runner import CaseResult, Row

#: thread-pool sizes a worker takes from its environment: torch (OpenMP), TensorFlow, NumPy's BLAS
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_jobs() -> int:
    """``--jobs auto``: one worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def worker_environment(threads: int):
    """The thread variables (unless set already) in ``os.environ`` while workers are spawned,
    which copy it; the parent's environment is restored afterwards."""
    wanted = {var: str(threads) for var in THREAD_VARIABLES} | {"TF_NUM_INTEROP_THREADS": "1"}
    added = [var for var in wanted if var not in os.environ]
    os.environ.update({var: wanted[var] for var in added})
    try:
        yield
    finally:
        for var in added:
            os.environ.pop(var, None)


def _init_worker(allow_tf32: bool) -> None:
    from . import frameworks

    frameworks.keras()
    frameworks.tf().get_logger().setLevel("ERROR")
    frameworks.set_tf32(allow_tf32)


def _run_in_worker(name: str, contexts: Sequence[Context]) -> list[tuple[Context, list[Row], str, str]]:
    from .case import all_cases
    from .runner import run_case

    case = {c.name: c for c in all_cases()}.get(name)
    if case is None:  # registered at run time in the parent (a test, a script): not in a fresh process
        return [(ctx, [], f"CaseError: case {name!r} is not in the registry of a fresh process (it was "
                          f"registered at run time); run it with --jobs 1", "") for ctx in contexts]
    out = []
    for ctx in contexts:
        res = run_case(case, ctx)
        out.append((ctx, res.rows, res.error, res.reference))
    return out


def run_parallel(work: Sequence[tuple[Case, Sequence[Context]]], jobs: int,
                 done: Callable[[Case], None] | None = None) -> list[CaseResult]:
    """Run each case in each of its contexts over ``jobs`` workers; results in ``work``'s order
    (a case's contexts in the order given). ``done(case)`` is called as each case finishes."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, not {jobs}")
    allow_tf32 = {ctx.allow_tf32 for _, contexts in work for ctx in contexts}
    if len(allow_tf32) > 1:
        raise ValueError("one TF32 policy per run: the workers configure it once")
    threads = max(1, default_jobs() // jobs)
    order = sorted(range(len(work)), key=lambda i: "slow" not in work[i][0].tags)  # slowest first (stable)
    results: dict[int, list[CaseResult]] = {}
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_init_worker, initargs=(allow_tf32.pop() if allow_tf32 else False,)) as pool:
        with worker_environment(threads):  # submit() spawns a worker while fewer than `jobs` run, none idle
            futures = {pool.submit(_run_in_worker, work[i][0].name, list(work[i][1])): i for i in order}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                case = work[i][0]
                results[i] = [CaseResult(case, ctx, rows, error, ref) for ctx, rows, error, ref in fut.result()]
                if done is not None:
                    done(case)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return [r for i in range(len(work)) for r in results[i]]
