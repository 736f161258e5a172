"""pytest plugin (registered through the ``pytest11`` entry point as ``equivalence``).

Fixtures:

* ``assert_equivalent``: :func:`equivalence.assert_equivalent`; a failure is an
  ``AssertionError`` whose message is the comparison table and the first diverging layer.
* ``compare_models``: :func:`equivalence.api.compare` (returns the result, raises nothing).
* ``equivalence_rng``: a NumPy ``Generator`` seeded from the test's node id, the same on every
  run and machine, different per test.

Assertion output: ``assert result`` on a failed :class:`~equivalence.api.ModelComparison`
shows its table, and so does ``assert result == expected`` between two of them
(``pytest_assertrepr_compare``).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest


@pytest.fixture
def assert_equivalent():
    from .api import assert_equivalent as check

    return check


@pytest.fixture
def compare_models():
    from .api import compare

    return compare


@pytest.fixture
def equivalence_rng(request) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_assertrepr_compare(config, op, left, right):
    from .api import ModelComparison

    results = [x for x in (left, right) if isinstance(x, ModelComparison)]
    if not results:
        return None
    lines = [f"model comparison {op} {'failed' if op == '==' else 'check'}:"]
    for r in results:
        lines += str(r).splitlines()
    return lines
