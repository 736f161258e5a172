"""torch on CUDA against TensorFlow on the CPU, for every case (GPU machines only)."""

import pytest

from equivalence.case import all_cases
from equivalence.frameworks import Context, torch
from equivalence.runner import run_case

pytestmark = pytest.mark.skipif(
    not torch().cuda.is_available(), reason="needs a CUDA GPU visible to torch; this machine has none"
)


@pytest.mark.parametrize(
    ("case", "dtype"), [pytest.param(c, d, id=f"{c.name}-{d}") for c in all_cases() for d in c.dtypes]
)
def test_torch_cuda_against_tf_cpu(case, dtype):
    res = run_case(case, Context(dtype=dtype, torch_device="cuda", tf_device="cpu"))
    assert not res.error, res.error
    bad = [f"{r.quantity} {r.pair}: {r.comparison.max_abs_err:.3g} > {r.comparison.tolerance:.3g}" for r in res.rows if not r.passed]
    assert not bad, f"{case.name} [{dtype}, torch:cuda]:\n" + "\n".join(bad)
