"""Shared test set-up: hypothesis profiles and the one-run-per-case cache."""

import os

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
