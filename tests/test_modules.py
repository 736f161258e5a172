"""The Keras ports of torch modules: which Keras layers they are, torch's argument checks,
and pooling geometry (padding, dilation, ceil_mode, divisors) against torch itself."""

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from equivalence.frameworks import keras as _keras
from equivalence.frameworks import tf as _tf
from equivalence.frameworks import torch as _torch

torch = _torch()
tf = _tf()
keras = _keras()

from tf_impl import modules as K  # noqa: E402
from torch_impl import modules as T  # noqa: E402


# -- which Keras layer each port is ------------------------------------------------------


def test_ports_are_stock_keras_layers_where_possible():
    assert type(K.Linear(3, 2)) is keras.layers.Dense
    assert type(K.Conv2d(2, 3, 3)) is keras.layers.Conv2D
    assert type(K.Conv1d(2, 3, 3)) is keras.layers.Conv1D
    assert type(K.Conv2d(2, 3, 3, padding="same")) is keras.layers.Conv2D
    # stock pooling, checking the input size first (Keras returns an empty tensor where torch raises)
    assert type(K.MaxPool2d(2)) is K.MaxPooling2D and isinstance(K.MaxPool2d(2), keras.layers.MaxPooling2D)
    assert isinstance(K.AvgPool2d(3, stride=1), keras.layers.AveragePooling2D)
    assert type(K.ReLU()) is keras.layers.ReLU
    assert type(K.Sequential(K.Linear(3, 2))) is keras.Sequential


def test_integer_padding_is_a_zero_padding_layer():
    conv = K.Conv2d(2, 3, 3, padding=(1, 2))
    assert isinstance(conv, K.PaddedConv) and isinstance(conv, keras.Sequential)
    assert [type(l) for l in conv.layers] == [keras.layers.ZeroPadding2D, keras.layers.Conv2D]
    assert conv.layers[0].padding == ((1, 1), (2, 2))  # symmetric, as torch pads
    assert conv.conv.padding == "valid"
    assert [type(l) for l in K.Conv1d(2, 3, 3, padding=2).layers] == [keras.layers.ZeroPadding1D, keras.layers.Conv1D]


def test_stride_with_dilation_subsamples():
    conv = K.Conv2d(2, 3, 3, stride=2, dilation=2)
    assert isinstance(conv, K.SubsampledConv2D) and isinstance(conv, keras.layers.Conv2D)
    assert conv.torch_strides == (2, 2) and tuple(conv.strides) == (1, 1)


def test_pooling_needing_torch_rules_is_a_torch_pooling_layer():
    for layer in (K.MaxPool2d(3, 2, padding=1), K.MaxPool2d(2, ceil_mode=True), K.MaxPool2d(2, dilation=2),
                  K.AvgPool2d(2, padding=1), K.AvgPool2d(2, divisor_override=3)):
        assert isinstance(layer, K.TorchPooling2D)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_of_the_net_has_the_dtype(dtype):
    model = K.Net(dtype)
    assert {w.dtype for w in model.weights} == {dtype}
    out = model(np.zeros((2, 28, 28, 1), dtype))
    assert out.dtype == dtype  # no layer cast the activations down on the way


def test_conv_weights_exist_from_construction():
    conv = K.Conv2d(4, 6, (3, 2), groups=2, bias=False)
    assert [tuple(w.shape) for w in conv.weights] == [(3, 2, 2, 6)]
    with pytest.raises(ValueError):  # built for 4 input channels, as torch's in_channels says
        conv(np.zeros((1, 5, 5, 3), "float32"))


# -- torch's argument checks, kept ------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=3, out_channels=2, kernel_size=3, groups=2), "in_channels must be divisible by groups"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, groups=2), "out_channels must be divisible by groups"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding="same"),
     "padding='same' is not supported for strided convolutions"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding="foo"), "Invalid padding string 'foo'"),
])
def test_conv_arguments_fail_where_torch_fails(kwargs, message):
    with pytest.raises(ValueError, match=message):
        T.Conv2d(**kwargs)
    with pytest.raises(ValueError, match=message):
        K.Conv2d(**kwargs)


def test_conv_padding_modes_other_than_zeros_are_refused():
    with pytest.raises(ValueError, match="padding_mode='reflect' has no Keras layer here"):
        K.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")


def test_pooling_argument_errors():
    with pytest.raises(ValueError, match="pad should be smaller than or equal to half of kernel size, but got pad=2"):
        K.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match="but got pad=2, kernel_size=3"):  # dilation does not widen the limit
        K.MaxPool2d(3, padding=2, dilation=3)
    with pytest.raises(ValueError, match="stride should not be zero"):
        K.MaxPool2d(2, stride=0)
    with pytest.raises(ValueError, match="return_indices has no Keras pooling layer"):
        K.MaxPool2d(2, return_indices=True)
    with pytest.raises(ValueError, match="only 'mean' matches torch"):
        K.MSELoss(reduction="sum")
    with pytest.raises(ValueError, match="output size is too small"):
        K.MaxPool2d(3, padding=1, dilation=2)(np.zeros((1, 2, 2, 1), "float32"))
    with pytest.raises(ValueError, match="output size is too small"):  # stock Keras: an empty (1, 0, 0, 1)
        K.MaxPool2d(3)(np.zeros((1, 2, 2, 1), "float32"))
    with pytest.raises(ValueError, match="output size is too small"):  # stock Keras: an empty (1, 1, 0, 3)
        K.AvgPool2d((1, 2), stride=1)(np.zeros((1, 1, 1, 3), "float32"))


# -- pooling against torch over the argument space ----------------------------------------------


@st.composite
def pool_args(draw, avg=False):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (1, 1) if avg else (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)  # torch's limit (beyond it: test_pooling_argument_errors)
    size = (draw(st.integers(1, 11)), draw(st.integers(1, 11)))  # small ones: no window fits, torch refuses
    return k, s, p, d, draw(st.booleans()), size


def _torch_outcome(fn):
    try:
        return fn()
    except RuntimeError:
        return None


@given(pool_args(), st.sampled_from(["float32", "float64"]), st.integers(0, 2**16))
def test_max_pool2d_matches_torch(args, dtype, seed):
    k, s, p, d, ceil_mode, (h, w) = args
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(dtype) - 1  # mostly negative: -inf matters
    want = _torch_outcome(lambda: T.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode)(torch.from_numpy(x)).numpy())
    event("torch refuses" if want is None else "compared")
    if want is None:  # torch refuses (pad too large, output too small): so does the port
        with pytest.raises(ValueError):
            K.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode, dtype=dtype)(np.moveaxis(x, 1, -1))
        return
    got = np.moveaxis(K.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode, dtype=dtype)(np.moveaxis(x, 1, -1)).numpy(), -1, 1)
    assert np.array_equal(got, want)  # a max picks an input: bit-exact


@given(pool_args(avg=True), st.booleans(), st.one_of(st.none(), st.integers(1, 7)), st.integers(0, 2**16))
def test_avg_pool2d_matches_torch(args, count_include_pad, divisor_override, seed):
    k, s, p, _, ceil_mode, (h, w) = args
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    kw = dict(ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override)
    want = _torch_outcome(lambda: T.AvgPool2d(k, s, p, **kw)(torch.from_numpy(x)).numpy())
    event("torch refuses" if want is None else "compared")
    if want is None:
        with pytest.raises(ValueError):
            K.AvgPool2d(k, s, p, **kw, dtype="float64")(np.moveaxis(x, 1, -1))
        return
    got = np.moveaxis(K.AvgPool2d(k, s, p, **kw, dtype="float64")(np.moveaxis(x, 1, -1)).numpy(), -1, 1)
    assert got.shape == want.shape
    # float64: a sum of at most 16 terms and 3 more roundings (modules.avg_pool2d derives the count)
    np.testing.assert_allclose(got, want, rtol=0, atol=20 * 2.0**-53 * np.abs(x).max() * 16)


@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3), st.booleans())
def test_pool_geometry_is_torchs(size, k, s, p, d, ceil_mode):
    """Output sizes: torch's formula as torch computes it, including the dropped ceil window."""
    if p > k // 2:  # refused before any geometry (test_pooling_argument_errors)
        return
    x = torch.zeros(1, 1, size, 1)
    want = _torch_outcome(lambda: T.MaxPool2d((k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=ceil_mode)(x).shape[2])
    if want is None:
        with pytest.raises(ValueError):
            K.pool_geometry(size, k, s, p, d, ceil_mode)
        return
    out, (left, right) = K.pool_geometry(size, k, s, p, d, ceil_mode)
    assert out == want and left == p
    assert (size + left + right - (d * (k - 1) + 1)) // s + 1 == out  # 'valid' pooling of the padded input
