"""Property tests: tf_impl.functional agrees with torch.nn.functional over the whole valid argument space.

Hypothesis draws a call (equivalence.strategies: shapes, stride, padding as ints,
tuples, 'valid' or 'same', dilation, groups, ceil_mode, count_include_pad,
divisor_override, return_indices, unbatched inputs, bias, positional or keyword
arguments) and an upstream gradient. The call runs in torch and in the TF port
in float32 and float64; the output, the max-pool indices and the gradients with
respect to every tensor argument are compared with the tolerance model
(``pair_tolerance`` of each quantity's ``n`` and magnitude, then ``compare``):
torch against TF, and each against torch in float64.

The ``ci`` profile of tests/conftest.py (derandomized, 40 examples) runs by
default; ``HYPOTHESIS_PROFILE=dev`` runs 500 random examples per op.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from equivalence import strategies
from equivalence.calls import as_case
from equivalence.compare import compare
from equivalence.frameworks import DTYPES, Context
from equivalence.runner import evaluate
from equivalence.tolerance import magnitude, pair_tolerance

# valid calls that warn: the deprecated size_average/reduce pair (both frameworks, alike), and torch's
# performance note that 'same' padding with an even kernel copies the input
pytestmark = [pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated"),
              pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")]


def check(call, cotangent) -> None:
    """torch ~ TF, and each ~ torch float64, for every quantity of the call, in float32 and float64."""
    case = as_case("property.draw", "hypothesis", call, cotangent=cotangent)
    failures = []
    for dtype in DTYPES:
        wide, torch_out, tf_out, ref = evaluate(case, Context(dtype=dtype))
        outs = {"torch": torch_out, "tf": tf_out, "reference": ref}
        # in float64 the reference is torch itself: only torch ~ TF says something
        pairs = [("torch", "tf")] + ([("torch", "reference"), ("tf", "reference")] if dtype != "float64" else [])
        for q in case.quantities:
            got_dtypes = {side: outs[side][q.name].dtype for side in ("torch", "tf")}
            assert got_dtypes["torch"] == got_dtypes["tf"], f"{call} [{dtype}] {q.name}: dtypes {got_dtypes}"
            m = magnitude(ref[q.name], q.magnitude(wide, ref) if q.magnitude else None)
            for a, b in pairs:
                tol = pair_tolerance(q.n, dtype, "float64" if b == "reference" else dtype, m)
                c = compare(outs[a][q.name], outs[b][q.name], tol, ulp_dtype=dtype)
                if not c.passed:
                    failures.append(f"  [{dtype}] {q.name} {a}~{b} (n={q.n}): max abs err {c.max_abs_err:.3g}, "
                                    f"tolerance {c.tolerance:.3g}, {c.max_ulp:.0f} ulp {c.problem}")
    assert not failures, f"{call} disagrees:\n" + "\n".join(failures)


@pytest.mark.parametrize("op", sorted(strategies.CALLS))
@given(data=st.data())
def test_agrees_with_torch(op, data):
    call = data.draw(strategies.CALLS[op], label="call")
    cotangent = data.draw(strategies.cotangents(call), label="cotangent")
    check(call, cotangent)


@given(data=st.data())
def test_strategies_draw_only_what_torch_accepts(data):
    # the strategies' constraints are torch's: every drawn call runs in torch (on the meta device: no compute)
    from equivalence.calls import output_shape

    call = data.draw(strategies.functional_calls())
    shape = output_shape(call)
    assert all(s >= 0 for s in shape)
    assert np.all(np.isfinite(call.tensors["input"]) | (call.op in ("max_pool1d", "max_pool2d", "relu")))
