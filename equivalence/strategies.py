"""Hypothesis strategies for ``torch.nn.functional`` calls: every valid configuration, and only valid ones.

Each strategy draws an :class:`equivalence.calls.Call`: the tensor arguments as
float64 arrays whose values are exact in float32 (so rounding to either
precision changes nothing), the other arguments in each form torch accepts (an
int, a 1-tuple or an n-tuple or list; ``stride`` omitted, ``None`` or ``[]``;
``padding`` as ints, ``'valid'`` or ``'same'``; defaults passed or left out),
and how many of them go positionally. Use them to property-test a port::

    from hypothesis import given, strategies as st
    from equivalence import strategies as eqs
    from equivalence.calls import as_case

    @given(data=st.data())
    def test_my_conv2d(data):
        call = data.draw(eqs.conv_calls(nd=2))
        cotangent = data.draw(eqs.cotangents(call))
        case = as_case("mine.conv2d", "my port", call, cotangent=cotangent, tf_module=my_functional)
        ...   # equivalence.runner.evaluate(case, Context(dtype)), then pair_tolerance and compare per quantity
               # (tests/test_functional_properties.py does exactly this)

The constraints are torch's (tests/test_functional_errors.py checks that torch
and the TF port refuse what lies outside them):

* conv: ``C_in = groups * weight.shape[1]``, ``groups`` divides ``C_out``;
  stride, dilation >= 1; padding >= 0; ``'same'`` only with stride 1; the padded
  input at least as large as the dilated kernel ``dilation * (k - 1) + 1``.
* pooling: kernel, stride, dilation >= 1; ``0 <= padding <= kernel // 2``; an
  output size >= 1, i.e. ``size + 2 * padding >= dilation * (k - 1) + 1``.
  One accepted corner is left out of the max-pool draws: a dilated window
  lying entirely in the padding. torch returns -inf there (pytorch #114216)
  and its backward writes that window's gradient outside the window's input
  plane, into the next one; tests/test_functional_api.py checks the forward.
* ``avg_pool2d``: ``divisor_override`` a non-zero int.

Values are 0 or of magnitude in [2**-10, 4]. The tolerance model (Higham's)
assumes no underflow, and TensorFlow's CPU kernels flush subnormal numbers to
zero where torch keeps them (tests/test_functional_api.py shows it), so the
draws keep every product and sum well inside the normal range. Max-pooling and
relu also get NaN and infinities (``special=True``).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .calls import SIGNATURES, Call, output_shape

#: non-zero values are at least this large in magnitude (see the module docstring)
SMALLEST = 2.0**-10
#: and at most this large
LARGEST = 4.0


def elements(special: bool = False) -> st.SearchStrategy[float]:
    """Floats exact in float32: 0 or |v| in [SMALLEST, LARGEST]; with ``special``, NaN and +-inf too."""
    finite = st.floats(-LARGEST, LARGEST, width=32).map(lambda v: 0.0 if abs(v) < SMALLEST else v)
    if special:
        return st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf]))
    return finite


def arrays(shape, special: bool = False) -> st.SearchStrategy[np.ndarray]:
    """A float64 array of ``shape`` with :func:`elements`."""
    return hnp.arrays(np.float64, tuple(shape), elements=elements(special))


def cotangents(call: Call) -> st.SearchStrategy[np.ndarray]:
    """An upstream gradient for ``call``: an array of torch's output shape."""
    return arrays(output_shape(call))


# -- argument forms ---------------------------------------------------------------------------------------

@st.composite
def int_form(draw, values: tuple[int, ...]):
    """One of the forms torch accepts for per-dimension ints: a tuple or a list of them; an int or a
    1-tuple when they are all equal."""
    forms = ["tuple", "list"] + (["int", "one"] if len(set(values)) == 1 else [])
    form = draw(st.sampled_from(forms))
    return {"tuple": tuple(values), "list": list(values), "int": values[0], "one": (values[0],)}[form]


def _dims(nd: int, lo: int, hi: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*[st.integers(lo, hi)] * nd)


@st.composite
def _finish(draw, op: str, args: dict, defaults: dict) -> Call:
    """Leave out some arguments that equal their default, then choose how many go positionally."""
    kept = {k: v for k, v in args.items()
            if not (k in defaults and _same(v, defaults[k]) and draw(st.booleans()))}
    params = SIGNATURES[op]
    prefix = 0
    while prefix < len(params) and params[prefix] in kept:
        prefix += 1
    return Call(op, kept, positional=draw(st.integers(1, prefix)))


def _same(a, b) -> bool:
    return a is b or (not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray) and type(a) is type(b) and a == b)


def _batch(draw, max_batch: int) -> tuple[int, ...]:
    """() for an unbatched input, else (N,)."""
    return () if draw(st.booleans()) else (draw(st.integers(1, max_batch)),)


# -- convolution ------------------------------------------------------------------------------------------

@st.composite
def conv_calls(draw, nd: int = 2, max_batch: int = 2, max_channels: int = 3, max_groups: int = 3,
               max_kernel: int = 3, max_extra: int = 4) -> Call:
    """``conv1d`` (nd=1) or ``conv2d`` (nd=2) calls over stride, padding, dilation, groups, bias, batching."""
    groups = draw(st.integers(1, max_groups))
    c_in, c_out = groups * draw(st.integers(1, max_channels)), groups * draw(st.integers(1, max_channels))
    kernel = draw(_dims(nd, 1, max_kernel))
    dilation = draw(_dims(nd, 1, 3))
    stride = draw(_dims(nd, 1, 3))
    kinds = ["ints", "valid"] + (["same"] if set(stride) == {1} else [])  # torch: 'same' refuses stride > 1
    kind = draw(st.sampled_from(kinds))
    if kind == "ints":
        pads = draw(_dims(nd, 0, 2))
        padding, total = draw(int_form(pads)), [2 * p for p in pads]
    else:
        padding = kind
        total = [d * (k - 1) if kind == "same" else 0 for k, d in zip(kernel, dilation)]
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = [draw(st.integers(max(1, s - t), max(1, s - t) + max_extra)) for s, t in zip(span, total)]
    batch = _batch(draw, max_batch)
    args = {
        "input": draw(arrays((*batch, c_in, *size))),
        "weight": draw(arrays((c_out, c_in // groups, *kernel))),
        "bias": draw(arrays((c_out,))) if draw(st.booleans()) else None,
        "stride": draw(int_form(stride)),
        "padding": padding,
        "dilation": draw(int_form(dilation)),
        "groups": groups,
    }
    return draw(_finish(f"conv{nd}d", args, {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}))


# -- pooling ----------------------------------------------------------------------------------------------

@st.composite
def _pool_geometry(draw, nd: int, dilated: bool, max_kernel: int, max_extra: int):
    kernel = draw(_dims(nd, 1, max_kernel))
    dilation = draw(_dims(nd, 1, 3)) if dilated else (1,) * nd
    pads = tuple(draw(st.integers(0, k // 2)) for k in kernel)  # torch: padding <= kernel_size // 2
    stride = draw(st.none() | st.just([]) | _dims(nd, 1, max_kernel + 1))
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = [draw(st.integers(max(1, s - 2 * p), max(1, s - 2 * p) + max_extra)) for s, p in zip(span, pads)]
    return kernel, stride, pads, dilation, size


def _out_size(size, k, s, p, d, ceil_mode):
    """torch's pooling output size (aten/src/ATen/native/Pool.h, pooling_output_shape)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def _window_in_padding(size, k, s, p, d, ceil_mode) -> bool:
    """Whether some window's taps all fall in the padding (possible with dilation: pytorch #114216)."""
    out = _out_size(size, k, s, p, d, ceil_mode)
    taps = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return bool((((taps < 0) | (taps >= size)).all(axis=1)).any())


@st.composite
def max_pool_calls(draw, nd: int = 2, max_batch: int = 2, max_channels: int = 3, max_kernel: int = 3,
                   max_extra: int = 5) -> Call:
    """``max_pool1d`` / ``max_pool2d`` calls over stride, padding, dilation, ceil_mode, return_indices, batching;
    values include ties (repeated draws), NaN and infinities."""
    kernel, stride, pads, dilation, size = draw(_pool_geometry(nd, True, max_kernel, max_extra))
    ceil_mode = draw(st.booleans())
    # torch returns -inf for a window lying entirely in the padding, and its backward then writes that window's
    # gradient through an index outside the input plane (into the next plane): not a reference to compare with
    steps = kernel if not stride else stride
    assume(not any(_window_in_padding(*g, ceil_mode) for g in zip(size, kernel, steps, pads, dilation)))
    shape = (*_batch(draw, max_batch), draw(st.integers(1, max_channels)), *size)
    args = {
        "input": draw(arrays(shape, special=draw(st.booleans()))),
        "kernel_size": draw(int_form(kernel)),
        "stride": stride if stride is None or stride == [] else draw(int_form(stride)),
        "padding": draw(int_form(pads)),
        "dilation": draw(int_form(dilation)),
        "ceil_mode": ceil_mode,
        "return_indices": draw(st.booleans()),
    }
    defaults = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}
    return draw(_finish(f"max_pool{nd}d", args, defaults))


@st.composite
def avg_pool_calls(draw, nd: int = 2, max_batch: int = 2, max_channels: int = 3, max_kernel: int = 3,
                   max_extra: int = 5) -> Call:
    """``avg_pool1d`` / ``avg_pool2d`` calls over stride, padding, ceil_mode, count_include_pad,
    divisor_override (2-D), batching."""
    kernel, stride, pads, _, size = draw(_pool_geometry(nd, False, max_kernel, max_extra))
    shape = (*_batch(draw, max_batch), draw(st.integers(1, max_channels)), *size)
    args = {
        "input": draw(arrays(shape)),
        "kernel_size": draw(int_form(kernel)),
        "stride": stride if stride is None or stride == [] else draw(int_form(stride)),
        "padding": draw(int_form(pads)),
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
    }
    defaults = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True}
    if nd == 2:
        args["divisor_override"] = draw(st.none() | st.integers(-4, 9).filter(bool))
        defaults["divisor_override"] = None
    return draw(_finish(f"avg_pool{nd}d", args, defaults))


# -- linear, relu, mse_loss -------------------------------------------------------------------------------

@st.composite
def linear_calls(draw, max_features: int = 6, max_lead_dims: int = 2, max_lead: int = 4) -> Call:
    """``linear`` calls: input (*, in_features) with 0 to ``max_lead_dims`` leading dims, weight
    (out_features, in_features) with a bias or none, or a 1-D weight (in_features,) without one."""
    in_f, out_f = draw(st.integers(1, max_features)), draw(st.integers(1, max_features))
    lead = draw(st.lists(st.integers(1, max_lead), max_size=max_lead_dims))
    vector_weight = draw(st.integers(0, 3)) == 0  # torch refuses a 1-D weight with a bias for 2-D inputs
    args = {"input": draw(arrays((*lead, in_f))),
            "weight": draw(arrays((in_f,) if vector_weight else (out_f, in_f))),
            "bias": draw(arrays((out_f,))) if not vector_weight and draw(st.booleans()) else None}
    return draw(_finish("linear", args, {"bias": None}))


@st.composite
def relu_calls(draw, max_dims: int = 3, max_side: int = 5) -> Call:
    """``relu`` calls on any shape (0-d included), with exact zeros, NaN and infinities."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, max_side=max_side))
    args = {"input": draw(arrays(shape, special=True)), "inplace": False}
    return draw(_finish("relu", args, {"inplace": False}))


@st.composite
def mse_loss_calls(draw, max_dims: int = 3, max_side: int = 5) -> Call:
    """``mse_loss`` calls over the reductions (or the deprecated size_average/reduce pair) and a positive weight."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, max_side=max_side))
    args = {"input": draw(arrays(shape)), "target": draw(arrays(shape))}
    if draw(st.booleans()):
        args["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    elif draw(st.booleans()):
        args["size_average"] = draw(st.none() | st.booleans())
        args["reduce"] = draw(st.booleans())
    if draw(st.booleans()):  # torch divides by sum(weight): a positive weight keeps that well conditioned
        args["weight"] = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.25, 2.0, width=32)))
    return draw(_finish("mse_loss", args, {"reduction": "mean"}))


#: every op's strategy, by op name
CALLS = {
    "conv1d": conv_calls(nd=1), "conv2d": conv_calls(nd=2),
    "max_pool1d": max_pool_calls(nd=1), "max_pool2d": max_pool_calls(nd=2),
    "avg_pool1d": avg_pool_calls(nd=1), "avg_pool2d": avg_pool_calls(nd=2),
    "linear": linear_calls(), "relu": relu_calls(), "mse_loss": mse_loss_calls(),
}


def functional_calls() -> st.SearchStrategy[Call]:
    """A call of any of the ops."""
    return st.one_of(*CALLS.values())
