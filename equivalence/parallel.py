"""``equivalence run --jobs N``: N runners at once, this process and N - 1 workers.

Each worker is a fresh interpreter (``spawn``: neither framework survives a fork
reliably) that imports torch, TensorFlow and the registry once, configures them
as the CLI does (determinism, the TF32 policy), and runs whole cases, every
dtype of a case in one worker (they share the case's float64 reference:
runner.compute). The calling process, which has imported the frameworks already
(the registry needs the ports), runs cases too (``run_parallel``'s ``here``):
the quickest ones while the workers start, then, as the workers do, the slowest
case left, so no runner is left with a long case at the end. A run shorter than
a worker's start (about 5 s of imports) thus takes no longer than a serial one;
before this process took part, ``--jobs 2`` added those seconds to every run
(`functional.*`: 12.9 s against 7.0 s serial; now 6.8 s). A case registered at
run time (a test's or a script's code) is not in a fresh worker's registry: it
runs in this process.

Threads: the cores over the runners, unless ``OMP_NUM_THREADS`` /
``TF_NUM_INTRAOP_THREADS`` / ``OPENBLAS_NUM_THREADS`` are set already (N runners
with every core's worth of threads each would oversubscribe the machine). For the
workers they are put in the environment they are spawned with, not set in the
worker: NumPy's OpenBLAS fixes its thread pool when NumPy is imported, which a
spawned worker does while unpickling its initializer, before the initializer
runs. Measured on 2 idle cores, the seven ladder trajectories with ``--jobs 2``
(two workers): 83.5 s wall and 153 s CPU with each worker's OpenBLAS left at 2
threads (busy-waiting threads on a shared core), 42.7 s and 71 s with 1. This
process sets its own pools for the run (``local_threads``: torch's and BLAS's
through threadpoolctl, restored afterwards; TensorFlow's only if its runtime has
not started, since TensorFlow cannot resize them).

Results are the ones a serial run with the same threads per process gives, row
for row: every case is seeded and both frameworks run deterministic kernels. A
different thread count may split a matmul's or a convolution's reductions
differently, which moves float results within their tolerances (measured: a
serial run with 2 threads and ``--jobs 2`` with 1 thread each differ in the last
bits of 8 of 76 case runs, all passing).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Sequence

from .case import Case
from .frameworks import Context
from .refcache import in_package
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
                          f"registered at run time); run it in the calling process (--jobs 1)", "") for ctx in contexts]
    out = []
    for ctx in contexts:
        res = run_case(case, ctx)
        out.append((ctx, res.rows, res.error, res.reference))
    return out


def _ready() -> None:
    """A worker's first task: done once the worker has imported and configured the frameworks."""


@contextlib.contextmanager
def local_threads(threads: int):
    """This process's thread pools at ``threads`` while it runs cases beside workers, unless the
    environment sets them (as for the workers): torch's intra-op threads and NumPy's BLAS (through
    threadpoolctl; both restored afterwards), and TensorFlow's where its runtime has not started
    yet (a process that has run TensorFlow already keeps its pools: TensorFlow cannot resize them)."""
    from threadpoolctl import threadpool_limits

    from . import frameworks

    torch, tf = frameworks.torch(), frameworks.tf()
    saved = torch.get_num_threads()
    # first: threadpoolctl restores every pool it saw (torch's OpenMP too) as it found them
    blas = threadpool_limits(threads, user_api="blas") if "OPENBLAS_NUM_THREADS" not in os.environ else None
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(threads)
    if "TF_NUM_INTRAOP_THREADS" not in os.environ:
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        yield
    finally:
        if blas is not None:
            blas.restore_original_limits()
        torch.set_num_threads(saved)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop workers that are still starting: this process ran every case, and waiting for their
    imports would only add their seconds to the run."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
    else:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def run_parallel(work: Sequence[tuple[Case, Sequence[Context]]], jobs: int,
                 done: Callable[[Case], None] | None = None,
                 here: Callable[[Case, Sequence[Context]], list[CaseResult]] | None = None) -> list[CaseResult]:
    """Run each case in each of its contexts over ``jobs`` runners; results in ``work``'s order
    (a case's contexts in the order given). ``done(case)`` is called as each case finishes.

    Without ``here``, the runners are ``jobs`` worker processes. With it (``here(case, contexts)``
    runs a case in this process), this process is one of the runners: it starts ``jobs - 1``
    workers, runs the quickest cases itself while they import the frameworks, and from then on
    takes the slowest case left, as the workers do (two cases in flight per ready worker; the
    quick ones fill the end). A run shorter than a worker's start ends here, and the workers
    still starting are stopped."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, not {jobs}")
    allow_tf32 = {ctx.allow_tf32 for _, contexts in work for ctx in contexts}
    if len(allow_tf32) > 1:
        raise ValueError("one TF32 policy per run: the workers configure it once")
    threads = max(1, default_jobs() // jobs)
    pending = collections.deque(sorted(range(len(work)), key=lambda i: "slow" not in work[i][0].tags))  # slowest first
    results: dict[int, list[CaseResult]] = {}
    # a case whose code is not in this package (registered at run time, by a test or a script) is
    # not in a fresh worker's registry: with ``here`` it runs here, first
    only_here = [i for i in pending if here is not None and not (in_package(work[i][0].torch)
                                                                  and in_package(work[i][0].tf))]

    def finish(i: int, res: list[CaseResult]) -> None:
        results[i] = res
        if done is not None:
            done(work[i][0])

    workers = jobs - 1 if here is not None else jobs
    local = local_threads(threads) if here is not None else contextlib.nullcontext()
    with local:
        for i in only_here:
            pending.remove(i)
            finish(i, here(*work[i]))
        if not workers:
            while pending:
                i = pending.popleft()
                finish(i, here(*work[i]))
            return [r for i in range(len(work)) for r in results[i]]
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_init_worker, initargs=(allow_tf32.pop() if allow_tf32 else False,))
        in_flight: dict[cf.Future, int] = {}
        try:
            with worker_environment(threads):  # submit() spawns a worker while fewer than `workers` run, none idle
                ready = [pool.submit(_ready) for _ in range(workers)] if here is not None else []
            while pending or in_flight:
                # workers are fed as they become ready (all at once when this process runs no case)
                limit = 2 * sum(f.done() for f in ready) if here is not None else len(work)
                with worker_environment(threads):
                    while pending and len(in_flight) < limit:
                        i = pending.popleft()
                        in_flight[pool.submit(_run_in_worker, work[i][0].name, list(work[i][1]))] = i
                for fut in [f for f in in_flight if f.done()]:
                    i = in_flight.pop(fut)
                    finish(i, [CaseResult(work[i][0], ctx, rows, error, ref) for ctx, rows, error, ref in fut.result()])
                if pending and here is not None:
                    # while the workers start, the quickest case left; then the slowest, as they take
                    # (the quick ones fill the end, when the runners finish at about the same time)
                    i = pending.popleft() if limit else pending.pop()
                    finish(i, here(*work[i]))
                elif in_flight:
                    cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
        except BaseException:
            _stop(pool)
            raise
        if all(f.done() for f in ready):
            pool.shutdown(wait=True)
        else:
            _stop(pool)
    return [r for i in range(len(work)) for r in results[i]]
