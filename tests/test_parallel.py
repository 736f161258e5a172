"""equivalence.parallel: the calling process as one of the runners, the workers beside it."""

import argparse
import multiprocessing
import time

import pytest

from equivalence.case import REGISTRY, Case, Q, select
from equivalence.frameworks import Context
from equivalence.parallel import local_threads, run_parallel
from equivalence.runner import run_case


def _work(cases, dtypes=("float32", "float64")):
    return [(c, [Context(d) for d in dtypes if d in c.dtypes]) for c in cases]


def _names(results):
    return [(r.case.name, r.ctx.dtype) for r in results]


def test_a_short_run_ends_here_and_stops_the_workers_still_starting():
    """Four quick cases take well under a worker's start (importing torch and TensorFlow): this
    process runs them all, in the order given, and no worker process outlives the call."""
    work = _work(select("autograd.norm_grad,autograd.dag_grad,functional.relu*")[:4])
    ran_here, finished = [], []

    def here(case, contexts):
        ran_here.append(case.name)
        return [run_case(case, ctx) for ctx in contexts]

    results = run_parallel(work, jobs=2, done=lambda case: finished.append(case.name), here=here)
    assert _names(results) == [(c.name, ctx.dtype) for c, contexts in work for ctx in contexts]
    assert all(r.passed for r in results)
    assert sorted(finished) == sorted(c.name for c, _ in work)  # done() once per case, wherever it ran
    assert sorted(ran_here) == sorted(finished)
    assert multiprocessing.active_children() == []


def test_workers_take_cases_once_they_are_ready():
    """While this process is busy (a slow ``here``: 0.5 s a case, 28 s for all), the worker
    finishes starting and takes cases too; every case runs once, and the results are in order."""
    cases = select("functional.*")
    work = _work(cases, ("float32",))
    ran_here = []

    def here(case, contexts):
        ran_here.append(case.name)
        time.sleep(0.5)
        return [run_case(case, ctx) for ctx in contexts]

    results = run_parallel(work, jobs=2, here=here)
    assert _names(results) == [(c.name, "float32") for c in cases]
    assert all(r.passed for r in results)
    assert len(set(ran_here)) == len(ran_here) < len(cases), "the worker ran no case"
    assert multiprocessing.active_children() == []


@pytest.fixture
def runtime_case():
    case = Case(name="test.registered_at_run_time", source="tests/test_parallel.py",
                inputs=lambda rng: {"x": rng.standard_normal(5)},
                torch=lambda a, ctx: {"y": ctx.t(a["x"]) * 2}, tf=lambda a, ctx: {"y": ctx.tf_const(a["x"]) * 2},
                reference=lambda a: {"y": a["x"] * 2}, quantities=(Q("y", "forward", n=1),))
    REGISTRY[case.name] = case
    yield case
    del REGISTRY[case.name]


def test_a_case_registered_at_run_time_runs_here(runtime_case):
    """A fresh worker does not have it (its code is a test's): with ``here`` it runs in this
    process, and passes; without, a worker reports it as an error (tests/test_cli.py)."""
    ran_here = []

    def here(case, contexts):
        ran_here.append(case.name)
        return [run_case(case, ctx) for ctx in contexts]

    work = _work([runtime_case, REGISTRY["autograd.norm_grad"]])
    results = run_parallel(work, jobs=2, here=here)
    assert runtime_case.name in ran_here
    assert [r.case.name for r in results] == [runtime_case.name] * 2 + ["autograd.norm_grad"] * 2
    assert all(r.passed and not r.error for r in results)


def test_local_threads_sets_and_restores_torch_and_blas(monkeypatch):
    from threadpoolctl import threadpool_info

    from equivalence.frameworks import torch

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        monkeypatch.delenv(var, raising=False)
    t = torch()
    before = t.get_num_threads()
    blas_before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    t.set_num_threads(2)
    try:
        with local_threads(1):
            assert t.get_num_threads() == 1
            assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        assert t.get_num_threads() == 2
        assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == blas_before
    finally:
        t.set_num_threads(before)


def test_local_threads_leaves_what_the_environment_sets(monkeypatch):
    from equivalence.frameworks import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    t = torch()
    before = t.get_num_threads()
    with local_threads(1):
        assert t.get_num_threads() == before


@pytest.mark.parametrize(("jobs", "devices", "expected"), [
    ("auto", ("cpu", "cpu"), "cores"),
    ("auto", ("cuda", "cpu"), 1),
    ("auto", ("cpu", "gpu"), 1),
    ("auto", ("cuda", "gpu"), 1),
    (3, ("cpu", "cpu"), 3),
    (2, ("cuda", "gpu"), 2),  # asked for: as given
])
def test_jobs_auto_is_one_per_core_on_the_cpu_and_one_on_a_gpu(jobs, devices, expected):
    from equivalence.cli import _resolve_jobs
    from equivalence.parallel import default_jobs

    ctx = argparse.Namespace(torch_device=devices[0], tf_device=devices[1])
    assert _resolve_jobs(jobs, ctx) == (default_jobs() if expected == "cores" else expected)
