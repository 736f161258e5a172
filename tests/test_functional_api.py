"""tf_impl.functional's interface and behaviours beyond the numbers: signatures, in-place relu, warnings,
accepted argument forms, empty batches, integer inputs, tf.function, and the corners the property tests leave out."""

import ast
import inspect
import re
import warnings

import numpy as np
import pytest

from equivalence.calls import SIGNATURES
from equivalence.compare import compare
from equivalence.frameworks import tf, torch
from equivalence.tolerance import pair_tolerance
from tf_impl import functional as tf_F
from torch_impl import functional as torch_mirror


def torch_signature(op: str) -> list[tuple[str, object]]:
    """(name, default) pairs of torch's documented signature; builtins document theirs in the first doc line."""
    F = torch().nn.functional
    fn = getattr(F, f"{op}_with_indices", None) or getattr(F, op)  # max_poolNd dispatch on return_indices
    try:
        params = inspect.signature(fn).parameters.values()
        return [(p.name, p.default) for p in params]
    except ValueError:  # a C builtin: "conv2d(input, weight, bias=None, stride=1, ...) -> Tensor"
        head = re.match(rf"\s*{op}\((.*?)\)", fn.__doc__).group(1)
        pairs = [part.split("=") for part in head.split(", ")]
        return [(p[0].strip(), ast.literal_eval(p[1]) if len(p) == 2 else inspect.Parameter.empty) for p in pairs]


@pytest.mark.parametrize("op", tf_F.__all__)
def test_signature_matches_torch(op):
    ours = [(p.name, p.default) for p in inspect.signature(getattr(tf_F, op)).parameters.values()]
    assert ours == torch_signature(op)
    assert tuple(name for name, _ in ours) == SIGNATURES[op]
    assert getattr(torch_mirror, op) is getattr(torch().nn.functional, op)  # the mirror re-exports torch's own


def test_relu_inplace_assigns_a_variable_and_refuses_a_tensor():
    t = torch().tensor([-1.0, 0.0, 2.0])
    assert torch().nn.functional.relu(t, inplace=True) is t
    v = tf().Variable([-1.0, 0.0, 2.0])
    assert tf_F.relu(v, inplace=True) is v
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    with pytest.raises(TypeError, match="inplace=True needs a tf.Variable"):
        tf_F.relu(tf().constant([-1.0, 2.0]), inplace=True)


def _warned(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn()
    return value, [str(w.message) for w in caught]


def test_mse_loss_broadcasts_with_torch_warning():
    x, y = np.arange(6.0, dtype=np.float32).reshape(2, 3), np.float32([1.0, 0.0, -1.0])
    t_value, t_warnings = _warned(lambda: torch().nn.functional.mse_loss(torch().tensor(x), torch().tensor(y)))
    f_value, f_warnings = _warned(lambda: tf_F.mse_loss(tf().constant(x), tf().constant(y)))
    assert float(f_value) == float(t_value)
    assert any("different to the input size" in w for w in t_warnings)
    assert any("different to the input size" in w for w in f_warnings)


@pytest.mark.parametrize(("legacy", "reduction"), [({"size_average": False}, "sum"), ({"reduce": False}, "none"),
                                                   ({"size_average": True, "reduce": True}, "mean")])
def test_mse_loss_reads_the_deprecated_pair_like_torch(legacy, reduction):
    x, y = np.float32([[1.0, 2.0], [3.0, 5.0]]), np.float32([[0.0, 2.0], [1.0, 1.0]])
    t_F = torch().nn.functional
    t_value, t_warnings = _warned(lambda: t_F.mse_loss(torch().tensor(x), torch().tensor(y), **legacy))
    f_value, f_warnings = _warned(lambda: tf_F.mse_loss(tf().constant(x), tf().constant(y), **legacy))
    np.testing.assert_array_equal(f_value.numpy(), t_value.numpy())
    assert f"reduction='{reduction}'" in " ".join(t_warnings) and f"reduction='{reduction}'" in " ".join(f_warnings)


@pytest.mark.parametrize(("x", "w", "b"), [((5, 3), (4, 3), (1,)), ((5, 3), (4, 3), ()), ((5, 3), (4, 3), (5, 4)),
                                           ((3,), (4, 3), (1, 4)), ((2, 5, 3), (4, 3), (2, 1, 4)),
                                           ((2, 5, 3), (3,), ()), ((3,), (3,), ())])
def test_linear_accepts_torch_bias_and_weight_forms(x, w, b):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (x, w, b))
    expected = torch().nn.functional.linear(*(torch().tensor(v) for v in (x, w, b))).numpy()
    got = tf_F.linear(*(tf().constant(v) for v in (x, w, b))).numpy()
    assert got.shape == expected.shape
    # the tolerance model: a dot product of in_features terms plus the bias, magnitude |x| |w|^T + |b|
    m = torch().nn.functional.linear(*(torch().tensor(np.abs(v).astype(np.float64)) for v in (x, w, b))).numpy()
    result = compare(got, expected, pair_tolerance(x.shape[-1] + 1, "float32", "float32", m), ulp_dtype="float32")
    assert result.passed, result


@pytest.mark.parametrize(("op", "args"), [
    ("conv2d", ((0, 3, 6, 6), (4, 3, 3, 3))), ("conv1d", ((0, 3, 6), (4, 3, 3))),
    ("max_pool2d", ((0, 3, 6, 6), 2)), ("avg_pool2d", ((0, 3, 6, 6), 2)), ("max_pool1d", ((0, 3, 6), 2)),
    ("linear", ((0, 3), (4, 3))),
])
def test_empty_batch_keeps_torch_shape(op, args):
    def make(v, convert):
        return convert(np.zeros(v, np.float32)) if isinstance(v, tuple) else v

    expected = getattr(torch().nn.functional, op)(*(make(v, torch().tensor) for v in args))
    got = getattr(tf_F, op)(*(make(v, tf().constant) for v in args))
    assert tuple(got.shape) == tuple(expected.shape)


@pytest.mark.parametrize("op", ["conv2d", "conv1d"])
def test_an_empty_batch_in_a_graph_traced_for_any_batch_keeps_torch_shape(op):
    """TF's oneDNN Conv2D returns its input for an empty batch (tf_impl.functional._conv2d_nhwc):
    the port's workaround also holds where the batch size is known only at run time, and the
    gradients of an empty batch are empty."""
    x_shape, w_shape = ((0, 3, 6, 6), (4, 3, 3, 3)) if op == "conv2d" else ((0, 3, 6), (4, 3, 3))
    T, tf_ = torch(), tf()
    expected = getattr(T.nn.functional, op)(T.zeros(x_shape), T.zeros(w_shape), stride=2, padding=1)
    fn = tf_.function(lambda x, w: getattr(tf_F, op)(x, w, stride=2, padding=1),
                      input_signature=[tf_.TensorSpec([None, *x_shape[1:]]), tf_.TensorSpec(w_shape)])
    assert tuple(fn(tf_.zeros(x_shape), tf_.ones(w_shape)).shape) == tuple(expected.shape)
    assert fn(tf_.ones((2, *x_shape[1:])), tf_.ones(w_shape)).shape[0] == 2  # the other branch
    x, w = tf_.zeros(x_shape), tf_.ones(w_shape)
    with tf_.GradientTape() as tape:
        tape.watch([x, w])
        y = tf_.reduce_sum(getattr(tf_F, op)(x, w, stride=2, padding=1))
    gx, gw = tape.gradient(y, [x, w])
    assert tuple(gx.shape) == x_shape and tuple(gw.shape) == w_shape and not np.any(gw.numpy())


def test_max_pool_window_in_the_padding_is_minus_inf_with_torch_index():
    # pytorch #114216: with dilation a window may lie entirely in the padding. torch accepts the call and returns
    # -inf with an index outside the plane; its backward then writes that gradient into the next plane
    # (equivalence.strategies leaves this corner out). The port returns the same values and indices, and sends
    # no gradient anywhere from such a window.
    x = np.float32([[[[1.0], [2.0]], [[3.0], [4.0]]]])  # (1, 2, 2, 1)
    args = dict(kernel_size=(2, 1), padding=(1, 0), dilation=(3, 1), return_indices=True)
    t_out, t_idx = torch().nn.functional.max_pool2d(torch().tensor(x), **args)
    xt = tf().constant(x)
    with tf().GradientTape() as tape:
        tape.watch(xt)
        f_out, f_idx = tf_F.max_pool2d(xt, **args)
    np.testing.assert_array_equal(f_out.numpy(), t_out.numpy())
    assert np.all(np.isneginf(f_out.numpy()))
    np.testing.assert_array_equal(f_idx.numpy(), t_idx.numpy())
    np.testing.assert_array_equal(tape.gradient(f_out, xt, output_gradients=tf().ones_like(f_out)).numpy(), 0.0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_max_pool_and_relu_match_torch(dtype):
    x = np.random.default_rng(0).integers(-5, 5, (2, 3, 6, 7)).astype(dtype)
    for fn, kw in (("max_pool2d", dict(kernel_size=3, stride=2, padding=1, return_indices=True)), ("relu", {})):
        expected = getattr(torch().nn.functional, fn)(torch().tensor(x), **kw)
        got = getattr(tf_F, fn)(tf().constant(x), **kw)
        expected, got = (v if isinstance(v, tuple) else (v,) for v in (expected, got))
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_array_equal(g.numpy(), e.numpy())


@pytest.mark.parametrize("op", ["conv2d", "avg_pool2d", "linear"])
def test_integer_inputs_are_refused_where_torch_computes_in_integers(op):
    # a documented difference: torch runs these on integer tensors on the CPU; the port asks for floats
    x = np.ones((1, 2, 4, 4) if op != "linear" else (3, 2), np.int64)
    second = {"conv2d": np.ones((3, 2, 2, 2), np.int64), "avg_pool2d": 2, "linear": np.ones((3, 2), np.int64)}[op]
    getattr(torch().nn.functional, op)(torch().tensor(x), torch().tensor(second) if op != "avg_pool2d" else second)
    with pytest.raises(TypeError, match="must be a floating-point tensor"):
        getattr(tf_F, op)(tf().constant(x), tf().constant(second) if op != "avg_pool2d" else second)


def test_inside_tf_function_with_an_unknown_batch():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    spec = tf().TensorSpec([None, 3, 7, 8], tf().float32)

    @tf().function(input_signature=[spec])
    def conv(x):
        return tf_F.conv2d(x, tf().constant(w), stride=2, padding=1, dilation=2)

    @tf().function(input_signature=[spec])
    def pools(x):
        y, i = tf_F.max_pool2d(x, 2, ceil_mode=True, return_indices=True)
        return y, i, tf_F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)

    eager = tf_F.conv2d(tf().constant(x), tf().constant(w), stride=2, padding=1, dilation=2).numpy()
    # graph and eager may pick different conv kernels: the tolerance model, 27-term dot products, |x| |w| magnitudes
    m = torch().nn.functional.conv2d(torch().tensor(np.abs(x)).double(), torch().tensor(np.abs(w)).double(),
                                     stride=2, padding=1, dilation=2).numpy()
    result = compare(conv(tf().constant(x)).numpy(), eager, pair_tolerance(27, "float32", "float32", m))
    assert result.passed, result
    graph_y, graph_i, graph_avg = pools(tf().constant(x))
    eager_y, eager_i = tf_F.max_pool2d(tf().constant(x), 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(graph_y.numpy(), eager_y.numpy())  # a selection: exact
    np.testing.assert_array_equal(graph_i.numpy(), eager_i.numpy())
    eager_avg = tf_F.avg_pool2d(tf().constant(x), 3, 1, 1, count_include_pad=False).numpy()
    m = torch().nn.functional.avg_pool2d(torch().tensor(np.abs(x)).double(), 3, 1, 1, count_include_pad=False).numpy()
    # a sum of 9 terms and a division
    result = compare(graph_avg.numpy(), eager_avg, pair_tolerance(9 + 1, "float32", "float32", m))
    assert result.passed, result

    @tf().function(input_signature=[tf().TensorSpec([2, None, 7, 8], tf().float32)])
    def unknown_channels(x):
        return tf_F.conv2d(x, tf().constant(w))

    with pytest.raises(ValueError, match="must be known statically"):
        unknown_channels(tf().constant(x))


def test_tensorflow_flushes_subnormals_torch_keeps_them():
    # why equivalence.strategies draws no values below 2**-10 in magnitude: TF's CPU kernels run with
    # flush-to-zero / denormals-are-zero, torch does not, so subnormal results differ by design
    tiny = np.float32(1e-40)
    assert torch().nn.functional.relu(torch().tensor([tiny])).item() == pytest.approx(1e-40, rel=1e-3)
    assert tf_F.relu(tf().constant([tiny])).numpy()[0] == 0.0
