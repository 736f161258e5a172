"""Shared test set-up: hypothesis profiles and the one-run-per-case cache."""

import os

# pytest-xdist runs one worker per core: a worker that also spreads torch's and
# TensorFlow's kernels over every core oversubscribes the machine (measured on 2
# cores: 61 s with the frameworks' default thread pools, 47 s with one thread each).
# NumPy's OpenBLAS sizes its pool when NumPy is imported, which a worker has done before it
# reads this file: pytest_configure puts the BLAS variables in the environment the controller
# spawns the workers with (measured without: each worker's OpenBLAS kept 2 threads).
ONE_THREAD = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS",
              "MKL_NUM_THREADS")
if "PYTEST_XDIST_WORKER" in os.environ:
    for _var in ONE_THREAD:
        os.environ.setdefault(_var, "1")


def pytest_configure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ and getattr(config.option, "numprocesses", None):
        for var in ONE_THREAD:  # the controller runs no test: only its workers see these
            os.environ.setdefault(var, "1")

from hypothesis import HealthCheck, settings

# "ci" (the default): derandomized, no example database, no deadline: the same
# examples on every run and every machine. "dev": many more random examples, for
# local runs (HYPOTHESIS_PROFILE=dev pytest ...).
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, print_blob=True, max_examples=500, suppress_health_check=[HealthCheck.too_slow],
)
# "mutation": the ci profile with fewer examples, for the many short runs of mutation
# testing (tools/mutation.sh, docs/reliability.md).
settings.register_profile(
    "mutation", derandomize=True, database=None, deadline=None, print_blob=True, max_examples=10,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
