"""Invalid arguments: where torch.nn.functional raises, tf_impl.functional raises too, and says what is wrong.

Each row is one bad call, replayed verbatim against both: torch must refuse it
(RuntimeError, ValueError, TypeError or IndexError, depending on the op), and
the TF port must raise the row's exception type (ValueError for values and
shapes, TypeError for types; tf_impl/functional.py documents the choice) with a
message matching the row's pattern, which names the offending argument.
"""

import numpy as np
import pytest

from equivalence.frameworks import tf, torch
from tf_impl import functional as tf_F

TORCH_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)


def a(*shape, dtype=np.float32):
    """A tensor argument: the shape, filled with standard-normal values (the same on both sides)."""
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


X4, W4, X3, W3 = a(2, 4, 7, 8), a(6, 4, 3, 3), a(2, 4, 9), a(6, 4, 3)
P4, P3 = a(2, 3, 7, 8), a(2, 3, 9)

# (id, op, positional arguments (arrays become tensors), keyword arguments, TF exception, message pattern)
BAD_CALLS = [
    # conv2d: argument values
    ("conv2d-stride-0", "conv2d", (X4, W4), {"stride": 0}, ValueError, "stride must be greater than zero"),
    ("conv2d-stride-negative", "conv2d", (X4, W4), {"stride": -1}, ValueError, "stride must be greater than zero"),
    ("conv2d-stride-3-tuple", "conv2d", (X4, W4), {"stride": (2, 1, 1)}, ValueError, r"stride must be .* tuple of 2"),
    ("conv2d-stride-float", "conv2d", (X4, W4), {"stride": 1.0}, TypeError, "stride must be an int or a tuple"),
    ("conv2d-stride-bool", "conv2d", (X4, W4), {"stride": True}, TypeError, "stride must be an int or a tuple"),
    ("conv2d-padding-negative", "conv2d", (X4, W4), {"padding": -1}, ValueError, "negative padding"),
    ("conv2d-padding-string", "conv2d", (X4, W4), {"padding": "foo"}, ValueError, "invalid padding string 'foo'"),
    ("conv2d-padding-SAME", "conv2d", (X4, W4), {"padding": "SAME"}, ValueError, "invalid padding string 'SAME'"),
    ("conv2d-same-strided", "conv2d", (X4, W4), {"padding": "same", "stride": 2}, ValueError,
     "padding='same' is not supported for strided"),
    ("conv2d-same-strided-tuple", "conv2d", (X4, W4), {"padding": "same", "stride": (1, 2)}, ValueError,
     "padding='same' is not supported for strided"),
    ("conv2d-padding-float", "conv2d", (X4, W4), {"padding": 1.5}, TypeError, "padding must be an int or a tuple"),
    ("conv2d-padding-3-tuple", "conv2d", (X4, W4), {"padding": (1, 1, 1)}, ValueError, "padding must be"),
    ("conv2d-dilation-0", "conv2d", (X4, W4), {"dilation": 0}, ValueError, "dilation must be greater than zero"),
    ("conv2d-groups-0", "conv2d", (X4, W4), {"groups": 0}, ValueError, "groups must be greater than zero"),
    ("conv2d-groups-float", "conv2d", (X4, W4), {"groups": 1.0}, TypeError, "groups must be an int"),
    ("conv2d-groups-channels", "conv2d", (X4, W4), {"groups": 2}, ValueError, "must have 8 channels"),
    ("conv2d-groups-out-channels", "conv2d", (X4, a(6, 1, 3, 3)), {"groups": 4}, ValueError,
     r"out_channels .* divisible by groups=4"),
    ("conv2d-channel-mismatch", "conv2d", (X4, a(6, 3, 3, 3)), {}, ValueError, "must have 3 channels"),
    ("conv2d-kernel-too-big", "conv2d", (X4, a(6, 4, 8, 3)), {}, ValueError, "smaller than the .*kernel size"),
    ("conv2d-dilated-kernel-too-big", "conv2d", (X4, W4), {"dilation": 4}, ValueError,
     "smaller than the .*kernel size"),
    ("conv2d-no-out-channels", "conv2d", (X4, a(0, 4, 3, 3)), {}, ValueError, "has no channels"),
    # conv2d: shapes and dtypes
    ("conv2d-bias-size", "conv2d", (X4, W4, a(5)), {}, ValueError, "bias must be 1-D with 6 elements"),
    ("conv2d-bias-2d", "conv2d", (X4, W4, a(6, 1)), {}, ValueError, "bias must be 1-D with 6 elements"),
    ("conv2d-weight-3d", "conv2d", (X4, a(6, 4, 3)), {}, ValueError, "weight must be 4-D"),
    ("conv2d-input-2d", "conv2d", (a(4, 7), W4), {}, ValueError, r"3-D \(unbatched\) or 4-D \(batched\) input"),
    ("conv2d-input-5d", "conv2d", (a(1, 2, 4, 7, 8), W4), {}, ValueError, "3-D .*or 4-D .*input"),
    ("conv2d-dtype-mismatch", "conv2d", (X4.astype(np.float64), W4), {}, TypeError,
     "input is float64 but weight is float32"),
    # conv1d
    ("conv1d-stride-2-tuple", "conv1d", (X3, W3), {"stride": (1, 1)}, ValueError, r"stride must be .* tuple of 1"),
    ("conv1d-weight-4d", "conv1d", (X3, a(6, 4, 3, 1)), {}, ValueError, "weight must be 3-D"),
    ("conv1d-input-4d", "conv1d", (a(2, 4, 9, 1), W3), {}, ValueError, "2-D .*or 3-D .*input"),
    ("conv1d-same-strided", "conv1d", (X3, W3), {"padding": "same", "stride": 2}, ValueError, "strided"),
    ("conv1d-bias-size", "conv1d", (X3, W3, a(4)), {}, ValueError, "bias must be 1-D with 6 elements"),
    # max_pool2d
    ("max_pool2d-kernel-3-tuple", "max_pool2d", (P4, (2, 2, 2)), {}, ValueError, "kernel_size must be"),
    ("max_pool2d-kernel-0", "max_pool2d", (P4, 0), {}, ValueError, "kernel_size must be greater than zero"),
    ("max_pool2d-kernel-negative", "max_pool2d", (P4, -1), {}, ValueError, "kernel_size must be greater than zero"),
    ("max_pool2d-kernel-float", "max_pool2d", (P4, 2.0), {}, TypeError, "kernel_size must be an int"),
    ("max_pool2d-stride-0", "max_pool2d", (P4, 2, 0), {}, ValueError, "stride must be greater than zero"),
    ("max_pool2d-stride-negative", "max_pool2d", (P4, 2, -1), {}, ValueError, "stride must be greater than zero"),
    ("max_pool2d-stride-3-tuple", "max_pool2d", (P4, 3, (2, 2, 2)), {}, ValueError, "stride must be"),
    ("max_pool2d-padding-over-half", "max_pool2d", (P4, 3), {"padding": 2}, ValueError,
     "padding should be at most half of kernel_size"),
    ("max_pool2d-padding-over-half-dilated", "max_pool2d", (P4, 3), {"padding": 2, "dilation": 3}, ValueError,
     "padding should be at most half of kernel_size"),
    ("max_pool2d-padding-negative", "max_pool2d", (P4, 3), {"padding": -1}, ValueError, "padding must be non-negative"),
    ("max_pool2d-padding-same", "max_pool2d", (P4, 3), {"padding": "same"}, TypeError, "padding must be an int"),
    ("max_pool2d-dilation-0", "max_pool2d", (P4, 3), {"dilation": 0}, ValueError, "dilation must be greater than zero"),
    ("max_pool2d-output-too-small", "max_pool2d", (P4, 8), {}, ValueError, "output size .* is too small"),
    ("max_pool2d-dilated-output-too-small", "max_pool2d", (P4, 3), {"dilation": 4}, ValueError,
     "output size .* is too small"),
    ("max_pool2d-input-2d", "max_pool2d", (a(7, 8), 2), {}, ValueError, "3-D .*or 4-D .*input"),
    ("max_pool2d-input-5d", "max_pool2d", (a(1, 2, 3, 7, 8), 2), {}, ValueError, "3-D .*or 4-D .*input"),
    ("max_pool2d-no-channels", "max_pool2d", (a(2, 0, 7, 8), 2), {}, ValueError, "must be non-zero"),
    # max_pool1d
    ("max_pool1d-kernel-2-tuple", "max_pool1d", (P3, (2, 2)), {}, ValueError, "kernel_size must be .* tuple of 1"),
    ("max_pool1d-stride-0", "max_pool1d", (P3, 2, 0), {}, ValueError, "stride must be greater than zero"),
    ("max_pool1d-dilation-0", "max_pool1d", (P3, 2), {"dilation": 0}, ValueError, "dilation must be greater"),
    ("max_pool1d-padding-over-half", "max_pool1d", (P3, 2), {"padding": 2}, ValueError, "at most half"),
    ("max_pool1d-padding-negative", "max_pool1d", (P3, 2), {"padding": -1}, ValueError, "non-negative"),
    ("max_pool1d-output-too-small", "max_pool1d", (P3, 10), {}, ValueError, "too small"),
    ("max_pool1d-input-4d", "max_pool1d", (P4, 2), {}, ValueError, "2-D .*or 3-D .*input"),
    # avg_pool2d
    ("avg_pool2d-kernel-0", "avg_pool2d", (P4, 0), {}, ValueError, "kernel_size must be greater than zero"),
    ("avg_pool2d-kernel-3-tuple", "avg_pool2d", (P4, (2, 2, 2)), {}, ValueError, "kernel_size must be"),
    ("avg_pool2d-stride-negative", "avg_pool2d", (P4, 2, -1), {}, ValueError, "stride must be greater than zero"),
    ("avg_pool2d-padding-over-half", "avg_pool2d", (P4, 3), {"padding": 2}, ValueError, "at most half"),
    ("avg_pool2d-padding-negative", "avg_pool2d", (P4, 2), {"padding": -1}, ValueError, "non-negative"),
    ("avg_pool2d-divisor-0", "avg_pool2d", (P4, 2), {"divisor_override": 0}, ValueError,
     "divisor_override must not be zero"),
    ("avg_pool2d-divisor-float", "avg_pool2d", (P4, 2), {"divisor_override": 2.5}, TypeError,
     "divisor_override must be an int"),
    ("avg_pool2d-divisor-bool", "avg_pool2d", (P4, 2), {"divisor_override": True}, TypeError,
     "divisor_override must be an int"),
    ("avg_pool2d-output-too-small", "avg_pool2d", (P4, 8), {}, ValueError, "too small"),
    ("avg_pool2d-input-2d", "avg_pool2d", (a(7, 8), 2), {}, ValueError, "3-D .*or 4-D .*input"),
    ("avg_pool2d-no-channels", "avg_pool2d", (a(2, 0, 7, 8), 2), {}, ValueError, "must be non-zero"),
    # avg_pool1d
    ("avg_pool1d-kernel-2-tuple", "avg_pool1d", (P3, (2, 2)), {}, ValueError, "kernel_size must be .* tuple of 1"),
    ("avg_pool1d-stride-0", "avg_pool1d", (P3, 2, 0), {}, ValueError, "stride must be greater than zero"),
    ("avg_pool1d-padding-over-half", "avg_pool1d", (P3, 2), {"padding": 2}, ValueError, "at most half"),
    ("avg_pool1d-input-1d", "avg_pool1d", (a(9), 2), {}, ValueError, "2-D .*or 3-D .*input"),
    ("avg_pool1d-input-4d", "avg_pool1d", (P4, 2), {}, ValueError, "2-D .*or 3-D .*input"),
    # linear
    ("linear-weight-0d", "linear", (a(5, 3), a()), {}, ValueError, "weight 1-D or 2-D"),
    ("linear-weight-3d", "linear", (a(5, 3), a(2, 4, 3)), {}, ValueError, "weight must be 2-D"),
    ("linear-features", "linear", (a(5, 3), a(4, 2)), {}, ValueError, "has 3 features but .* expects 2"),
    ("linear-bias-size", "linear", (a(5, 3), a(4, 3), a(3)), {}, ValueError, "bias of shape .* does not broadcast"),
    ("linear-bias-too-big", "linear", (a(5, 3), a(4, 3), a(2, 5, 4)), {}, ValueError, "does not broadcast"),
    ("linear-input-scalar", "linear", (a(), a(4, 3)), {}, ValueError, "input must be at least 1-D"),
    ("linear-dtype-mismatch", "linear", (a(5, 3, dtype=np.float64), a(4, 3)), {}, TypeError,
     "input is float64 but weight is float32"),
    # mse_loss
    ("mse_loss-reduction", "mse_loss", (a(5, 3), a(5, 3)), {"reduction": "avg"}, ValueError,
     "'avg' is not a valid value for reduction"),
    ("mse_loss-broadcast", "mse_loss", (a(5, 3), a(4)), {}, ValueError, "do not broadcast"),
    ("mse_loss-weight-shape", "mse_loss", (a(5, 3), a(5, 3)), {"weight": a(2)}, ValueError,
     "weight must have the input's shape"),
    ("mse_loss-weight-broadcastable", "mse_loss", (a(5, 3), a(5, 3)), {"weight": a(3)}, ValueError,
     "weight must have the input's shape"),
    ("mse_loss-complex", "mse_loss", (a(5, 3, dtype=np.complex64), a(5, 3)), {}, TypeError,
     "input must be a real-valued tensor, got complex64"),
    # wrong types: None for a tensor, a str or an int for a bool flag, None for an int
    ("conv2d-input-none", "conv2d", (None, W4), {}, TypeError, "conv2d: input must be a tensor, not NoneType"),
    ("conv2d-stride-none", "conv2d", (X4, W4), {"stride": None}, TypeError, "stride must be an int or a tuple"),
    ("conv1d-groups-none", "conv1d", (X3, W3), {"groups": None}, TypeError, "groups must be an int"),
    ("max_pool2d-kernel-none", "max_pool2d", (P4, None), {}, TypeError, "kernel_size must be an int or a tuple"),
    ("max_pool2d-ceil-mode-str", "max_pool2d", (P4, 2), {"ceil_mode": "yes"}, TypeError,
     "ceil_mode must be a bool, not str 'yes'"),
    ("max_pool1d-ceil-mode-int", "max_pool1d", (P3, 2), {"ceil_mode": 1}, TypeError, "ceil_mode must be a bool"),
    ("avg_pool2d-count-include-pad-str", "avg_pool2d", (P4, 2), {"count_include_pad": "no"}, TypeError,
     "count_include_pad must be a bool"),
    ("avg_pool1d-ceil-mode-str", "avg_pool1d", (P3, 2), {"ceil_mode": "no"}, TypeError, "ceil_mode must be a bool"),
    ("linear-input-none", "linear", (None, a(4, 3)), {}, TypeError, "linear: input must be a tensor"),
    ("relu-input-none", "relu", (None,), {}, TypeError, "relu: input must be a tensor"),
    ("relu-bool", "relu", (np.array([True, False]),), {}, TypeError, "relu: input must be a real-valued tensor"),
]


def _convert(value, make):
    return make(value) if isinstance(value, np.ndarray) else value


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize(("op", "args", "kwargs", "error", "pattern"),
                         [pytest.param(*row[1:], id=row[0]) for row in BAD_CALLS])
def test_bad_call_raises_on_both_sides(op, args, kwargs, error, pattern):
    torch_F = torch().nn.functional
    with pytest.raises(TORCH_ERRORS):
        getattr(torch_F, op)(*[_convert(v, torch().from_numpy) for v in args],
                             **{k: _convert(v, torch().from_numpy) for k, v in kwargs.items()})
    with pytest.raises(error, match=pattern):
        getattr(tf_F, op)(*[_convert(v, tf().constant) for v in args],
                          **{k: _convert(v, tf().constant) for k, v in kwargs.items()})


def test_every_op_has_bad_calls():
    assert {row[1] for row in BAD_CALLS} == set(tf_F.__all__)


# -- a fuzz: arbitrary (mostly wrong) arguments --------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from equivalence.calls import SIGNATURES  # noqa: E402

_TENSORS = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_, np.complex64]),
               hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
               elements=None),
    st.sampled_from([None, "x", 1.5, [1.0, 2.0], [[1.0], [1.0, 2.0]], {"a": 1}]),
)
_INTS = st.one_of(st.integers(-2, 4), st.lists(st.integers(-1, 4), max_size=3), st.tuples(st.integers(0, 3)),
                  st.sampled_from([None, 1.0, True, "1", "same", "valid", "SAME", [], (1, "a")]))
_FLAGS = st.one_of(st.booleans(), st.sampled_from([None, 0, 1, "yes", np.bool_(True)]))
_OTHER = {"reduction": st.sampled_from(["mean", "sum", "none", "avg", None, 1]), "size_average": _FLAGS,
          "reduce": _FLAGS, "inplace": _FLAGS, "ceil_mode": _FLAGS, "count_include_pad": _FLAGS,
          "return_indices": _FLAGS, "divisor_override": st.one_of(st.none(), st.integers(-2, 3), st.just(2.5))}
_FAULTS = (ValueError, TypeError)


@pytest.mark.filterwarnings("ignore")
@given(data=st.data())
def test_functional_fuzz(data):
    """Each op with arbitrary arguments: a result, or a ValueError / TypeError raised by
    tf_impl.functional itself with a message that starts with the op's name, never an error from
    inside TensorFlow."""
    import traceback

    op = data.draw(st.sampled_from(sorted(tf_F.__all__)), label="op")
    args = {}
    required = ("input", "target", "kernel_size") + (("weight",) if op != "mse_loss" else ())
    for name in SIGNATURES[op]:
        if name in required or data.draw(st.booleans(), label=f"pass {name}"):
            if name in ("input", "weight", "bias", "target"):
                args[name] = data.draw(_TENSORS, label=name)
            elif name in _OTHER:
                args[name] = data.draw(_OTHER[name], label=name)
            else:
                args[name] = data.draw(_INTS, label=name)
    try:
        getattr(tf_F, op)(**args)
    except _FAULTS as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        assert frame.filename.endswith("tf_impl/functional.py"), (
            f"{op}({args}) raised {type(exc).__name__} inside {frame.filename}: {exc}")
        assert str(exc).startswith(f"{op}:"), f"{op}: the message does not start with the op's name: {exc}"
