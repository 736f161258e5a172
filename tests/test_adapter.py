"""The weight adapter: layouts, bit-exact round trips, strict errors, the flatten-order trap."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from equivalence import AdapterError, adapter, keras_to_torch, torch_to_keras, torch_values
from equivalence.frameworks import keras as _keras
from equivalence.frameworks import tf as _tf
from equivalence.frameworks import torch as _torch

torch = _torch()
tf = _tf()
keras = _keras()

from tf_impl import modules as K  # noqa: E402  (after the frameworks are configured)
from torch_impl import modules as T  # noqa: E402


def _randomize(module, seed):
    """Distinct, seeded values in every torch parameter (so a swapped axis shows)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _nchw_to_nhwc(x):
    return np.moveaxis(x, 1, -1)


# -- layouts: what the Keras weights must be --------------------------------------------------


def test_linear_layout_is_the_transpose():
    t = _randomize(T.Linear(10, 4, dtype=torch.float64), 0)
    k = K.Linear(10, 4, dtype="float64")
    torch_to_keras(t, k)
    assert np.array_equal(k.kernel.numpy(), t.weight.detach().numpy().T)
    assert np.array_equal(k.bias.numpy(), t.bias.detach().numpy())


def test_grouped_conv2d_layout():
    # torch (out, in/groups, kh, kw) -> Keras (kh, kw, in/groups, out)
    t = _randomize(T.Conv2d(4, 6, (3, 2), groups=2, dtype=torch.float64), 1)
    k = K.Conv2d(4, 6, (3, 2), groups=2, dtype="float64")
    torch_to_keras(t, k)
    assert k.kernel.shape == (3, 2, 2, 6)
    assert np.array_equal(k.kernel.numpy(), np.transpose(t.weight.detach().numpy(), (2, 3, 1, 0)))


def test_conv1d_layout():
    t = _randomize(T.Conv1d(3, 5, 4, dtype=torch.float64), 2)
    k = K.Conv1d(3, 5, 4, dtype="float64")
    torch_to_keras(t, k)
    assert np.array_equal(k.kernel.numpy(), np.transpose(t.weight.detach().numpy(), (2, 1, 0)))


# -- round trips: torch -> Keras -> torch is bit-exact, and the mapping computes the same ------


@st.composite
def conv_layers(draw):
    rank = draw(st.sampled_from([1, 2]))
    groups = draw(st.integers(1, 3))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    bias = draw(st.booleans())
    return rank, cin, cout, kernel, stride, padding, dilation, groups, bias


@given(conv_layers(), st.sampled_from(["float32", "float64"]), st.integers(0, 2**16))
def test_conv_round_trip_is_bit_exact_and_computes_the_same(layer, dtype, seed):
    rank, cin, cout, kernel, stride, padding, dilation, groups, bias = layer
    tcls, kcls = (T.Conv1d, K.Conv1d) if rank == 1 else (T.Conv2d, K.Conv2d)
    tdt = getattr(torch, dtype)
    args = (cin, cout, kernel)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    t = _randomize(tcls(*args, **kw, dtype=tdt), seed)
    k = kcls(*args, **kw, dtype=dtype)
    torch_to_keras(t, k)
    back = _randomize(tcls(*args, **kw, dtype=tdt), seed + 1)
    keras_to_torch(k, back)
    for name, p in _params(t).items():
        assert torch.equal(dict(back.named_parameters())[name], p), name
    # and the mapping is the right one, not merely invertible: both compute the same
    size = (9,) * rank
    x = np.random.default_rng(seed).standard_normal((2, cin) + size).astype(dtype)
    want = t(torch.from_numpy(x)).detach().numpy()
    got = np.moveaxis(k(np.moveaxis(x, 1, -1)).numpy(), -1, 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 if dtype == "float32" else 1e-12)


@given(st.integers(1, 12), st.integers(1, 12), st.booleans(), st.sampled_from(["float32", "float64"]),
       st.integers(0, 2**16))
def test_linear_round_trip_is_bit_exact(n_in, n_out, bias, dtype, seed):
    t = _randomize(T.Linear(n_in, n_out, bias=bias, dtype=getattr(torch, dtype)), seed)
    k = K.Linear(n_in, n_out, bias=bias, dtype=dtype)
    torch_to_keras(t, k)
    back = _randomize(T.Linear(n_in, n_out, bias=bias, dtype=getattr(torch, dtype)), seed + 1)
    keras_to_torch(k, back)
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), t.parameters()))
    assert k.use_bias == bias and len(k.weights) == 1 + bias


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_net_round_trip_is_bit_exact(dtype):
    t = _randomize(T.Net(getattr(torch, dtype)), 3)
    k = K.Net(dtype)
    torch_to_keras(t, k)
    back = _randomize(T.Net(getattr(torch, dtype)), 4)
    keras_to_torch(k, back)
    for (n, a), (_, b) in zip(t.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b), n


def test_gradients_map_back_like_weights():
    """torch_values takes any arrays shaped like the Keras weights, e.g. gradients."""
    t = _randomize(T.mlp(torch.float64), 5)
    k = K.mlp("float64")
    torch_to_keras(t, k)
    assert set(torch_values(k, t, [w.numpy() for w in k.weights])) == {n for n, _ in t.named_parameters()}
    for n, v in torch_values(k, t, [w.numpy() for w in k.weights]).items():
        assert np.array_equal(v, dict(t.named_parameters())[n].detach().numpy()), n


# -- the flatten-order trap ------------------------------------------------------------------------


def _torch_cnn(c=2, h=6, w=6, filters=4):
    return T.Sequential(T.Conv2d(c, filters, 3, padding=1, dtype=torch.float64), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                        T.Linear(filters * (h // 2) * (w // 2), 5, dtype=torch.float64))


def _keras_cnn(c=2, h=6, w=6, filters=4, permute=False):
    layers = [K.Conv2d(c, filters, 3, padding=1, dtype="float64"), K.ReLU(dtype="float64"),
              K.MaxPool2d(2, dtype="float64")]
    if permute:
        layers.append(keras.layers.Permute((3, 1, 2), dtype="float64"))
    model = K.Sequential(*layers, K.Flatten(dtype="float64"), K.Linear(filters * (h // 2) * (w // 2), 5, dtype="float64"))
    model.build((None, h, w, c))
    return model


@given(st.integers(1, 3), st.integers(2, 8), st.integers(2, 8), st.integers(1, 4), st.booleans(), st.integers(0, 2**16))
def test_flatten_trap_in_a_sequential(c, h, w, filters, permute, seed):
    """Without Permute the adapter permutes the Dense rows; with it, it does not; both match torch."""
    t = _randomize(_torch_cnn(c, h, w, filters), seed)
    k = _keras_cnn(c, h, w, filters, permute)
    torch_to_keras(t, k)
    dense = adapter.plan(t, k)[-1]
    identity = filters == 1 or (h // 2) * (w // 2) == 1  # one channel or one position: both orders agree
    assert (dense.rows is None) == (permute or identity)
    x = np.random.default_rng(seed).standard_normal((3, c, h, w))
    want = t(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(k(_nchw_to_nhwc(x)).numpy(), want, rtol=0, atol=1e-12)
    back = _randomize(_torch_cnn(c, h, w, filters), seed + 1)
    keras_to_torch(k, back)
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), t.parameters()))


def test_the_trap_is_real():
    """Transposes alone (no row permutation) give a wrong Keras model: the control for the test above."""
    t = _randomize(_torch_cnn(), 6)
    k = _keras_cnn()
    links = adapter.plan(t, k)
    naive = [
        np.transpose(t[0].weight.detach().numpy(), (2, 3, 1, 0)), t[0].bias.detach().numpy(),
        t[4].weight.detach().numpy().T, t[4].bias.detach().numpy(),
    ]
    for var, value in zip(k.weights, naive):
        var.assign(value)
    x = np.random.default_rng(6).standard_normal((3, 2, 6, 6))
    want = t(torch.from_numpy(x)).detach().numpy()
    assert np.abs(k(_nchw_to_nhwc(x)).numpy() - want).max() > 1e-2
    assert links[-1].rows is not None


def test_subclassed_net_declares_its_flatten():
    t = _randomize(T.Net(torch.float64), 7)
    k = K.Net("float64")
    torch_to_keras(t, k)
    x = np.random.default_rng(7).standard_normal((4, 1, 28, 28))
    want = t(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(k(_nchw_to_nhwc(x)).numpy(), want, rtol=0, atol=1e-10)
    wrong = K.Net("float64")
    wrong.flatten_layout = {"fc1": None}  # claims torch's order: no row permutation
    torch_to_keras(t, wrong)
    assert np.abs(wrong(_nchw_to_nhwc(x)).numpy() - want).max() > 1e-3


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))
def test_flatten_rows_property(c, h, w):
    """Keras's flatten of the channels_last map is torch's flatten taken at ``rows``."""
    x = np.arange(2 * c * h * w).reshape(2, c, h, w)
    rows = adapter.flatten_rows((h, w, c), (1, 2, 0))
    keras_flat = _nchw_to_nhwc(x).reshape(2, -1)
    torch_flat = x.reshape(2, -1)
    assert np.array_equal(keras_flat, torch_flat if rows is None else torch_flat[:, rows])


# -- strict: every weight used, every weight filled, or an error that says where ---------------------


def test_adapter_error_is_a_value_error_exported_from_the_package():
    import equivalence

    assert equivalence.AdapterError is AdapterError
    assert issubclass(AdapterError, ValueError)


def test_dropped_bias():
    with pytest.raises(AdapterError, match=re.escape("torch Linear has a bias (4,), Keras Dense at <root> has no bias")):
        torch_to_keras(T.Linear(10, 4), K.Linear(10, 4, bias=False))
    with pytest.raises(AdapterError, match=re.escape("torch Linear has no bias, Keras Dense at <root> has a bias (4,)")):
        keras_to_torch(K.Linear(10, 4), T.Linear(10, 4, bias=False))


def test_shape_mismatch_names_the_path_and_both_shapes():
    t = T.Sequential(T.Linear(10, 4), T.ReLU(), T.Linear(4, 2))
    k = K.Sequential(K.Linear(10, 4), K.ReLU(), K.Linear(4, 3))
    with pytest.raises(AdapterError, match=re.escape("layer path '2': torch 2.weight (2, 4) maps to Keras shape (4, 2), "
                                                     "but Dense at '2' has kernel (4, 3)")):
        torch_to_keras(t, k)


def test_extra_keras_layer():
    t = T.Sequential(T.Linear(10, 4), T.ReLU(), T.Linear(4, 2))
    k = K.Sequential(K.Linear(10, 4), K.ReLU(), K.Linear(4, 2), K.Linear(2, 2))
    with pytest.raises(AdapterError, match=re.escape("Keras Dense at '3' (kernel (2, 2), bias (2,)) has no torch "
                                                     "counterpart")):
        torch_to_keras(t, k)


def test_extra_torch_layer():
    t = T.Sequential(T.Linear(10, 4), T.ReLU(), T.Linear(4, 2), T.Linear(2, 2, bias=False))
    k = K.Sequential(K.Linear(10, 4), K.ReLU(), K.Linear(4, 2))
    with pytest.raises(AdapterError, match=re.escape("layer path '3': torch Linear (weight (2, 2)) has no Keras "
                                                     "counterpart")):
        keras_to_torch(k, t)


def test_missing_and_extra_attributes_in_subclassed_models():
    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = T.Linear(3, 4)
            self.fc2 = T.Linear(4, 2)

    class KerasSmall(keras.Model):
        def __init__(self, second="fc2"):
            super().__init__()
            self.fc1 = K.Linear(3, 4)
            setattr(self, second, K.Linear(4, 2))

    with pytest.raises(AdapterError, match=re.escape("layer path 'fc2': torch Linear (weight (2, 4), bias (2,)) has no "
                                                     "Keras counterpart: KerasSmall has no attribute 'fc2'")):
        torch_to_keras(Small(), KerasSmall(second="out"))
    torch_to_keras(Small(), KerasSmall())  # the same names pair


def test_unsupported_layers_are_named():
    t = T.Sequential(T.Linear(3, 4), torch.nn.PReLU(4))
    with pytest.raises(AdapterError, match=r"layer path '1': torch PReLU \(weight \(4,\)\) is not supported"):
        torch_to_keras(t, K.Sequential(K.Linear(3, 4)))
    with pytest.raises(AdapterError, match="torch ConvTranspose2d .* is paired with Keras Conv2D .* it needs a Conv2DTranspose"):
        torch_to_keras(torch.nn.ConvTranspose2d(2, 3, 3), K.Conv2d(2, 3, 3))
    prelu = keras.layers.PReLU()
    prelu.build((None, 4))
    with pytest.raises(AdapterError, match=r"Keras PReLU at '1' \(alpha \(4,\)\) is not supported"):
        torch_to_keras(T.Sequential(T.Linear(3, 4)), K.Sequential(K.Linear(3, 4), prelu))
    with pytest.raises(AdapterError, match="padding_mode='reflect'"):
        torch_to_keras(T.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), K.Conv2d(1, 1, 3, padding=1))


def test_mismatched_hyperparameters():
    with pytest.raises(AdapterError, match=re.escape("torch Conv2d has dilation (2, 2), Keras Conv2D at <root> has (1, 1)")):
        torch_to_keras(T.Conv2d(2, 2, 3, dilation=2), K.Conv2d(2, 2, 3))
    with pytest.raises(AdapterError, match="torch Linear .* is paired with Keras Conv2D"):
        torch_to_keras(T.Linear(2, 2), K.Conv2d(2, 2, 1))


def test_subclassed_model_without_flatten_layout():
    class Plain(keras.Model):  # the Net's layers, but no word on how fc1 reads the map
        def __init__(self):
            super().__init__()
            self.conv1 = K.Conv2d(1, 32, kernel_size=5)
            self.conv2 = K.Conv2d(32, 64, kernel_size=5)
            self.fc1 = K.Linear(256, 200)
            self.fc2 = K.Linear(200, 10)

    with pytest.raises(AdapterError, match="Plain at <root> has convolutions and Dense layers but no flatten_layout"):
        torch_to_keras(T.Net(), Plain())
    wrong = K.Net()
    wrong.flatten_layout = {"fc1": (4, 4, 64)}
    with pytest.raises(AdapterError, match=re.escape("layer path 'fc1': flatten_layout (declared channels_last "
                                                     "(4, 4, 64)) has 1024 features, but Keras Dense at 'fc1' reads 256")):
        torch_to_keras(T.Net(), wrong)


def test_dense_on_a_channels_last_map_without_flatten():
    t = T.Sequential(T.Conv2d(2, 3, 1), T.Linear(4, 5))  # torch's Linear acts on W
    k = K.Sequential(K.Conv2d(2, 3, 1), K.Linear(3, 5))
    k.build((None, 4, 4, 2))
    with pytest.raises(AdapterError, match="Keras Dense at '1' acts on the last axis of a channels_last map"):
        torch_to_keras(t, k)


def test_state_and_dtypes_are_checked():
    t = T.Linear(3, 2)
    with pytest.raises(AdapterError, match=re.escape("missing ['bias'], not parameters ['b']")):
        torch_to_keras(t, K.Linear(3, 2), state={"weight": np.zeros((2, 3), np.float32), "b": np.zeros(2, np.float32)})
    with pytest.raises(AdapterError, match="weight is float64, Keras .*kernel is float32: copying would round"):
        torch_to_keras(T.Linear(3, 2, dtype=torch.float64), K.Linear(3, 2))
    with pytest.raises(AdapterError, match=re.escape("layer path <root>: weight is (3, 2), torch Linear has (2, 3)")):
        torch_to_keras(t, K.Linear(3, 2), state={"weight": np.zeros((3, 2), np.float32), "bias": np.zeros(2, np.float32)})


def test_unbuilt_keras_layer():
    with pytest.raises(AdapterError, match="Keras Dense at <root> is not built"):
        torch_to_keras(T.Linear(3, 2), keras.layers.Dense(2))


def test_a_none_gradient_is_an_error():
    t, k = T.Linear(3, 2), K.Linear(3, 2)
    with pytest.raises(AdapterError, match="no value for Keras .*bias"):
        torch_values(k, t, [np.zeros((3, 2), np.float32), None])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64", "bool"])
@pytest.mark.parametrize("shape, axes", [((3, 5), (1, 0)), ((300, 70), (1, 0)), ((64, 32, 3, 3), (2, 3, 1, 0)),
                                         ((16, 8, 5), (2, 1, 0)),
                                         # copied in tiles (both sides > adapter._TILE), partial ones included
                                         ((513, 300), (1, 0)), ((257, 1030), (1, 0))])
def test_layout_copies_equal_numpy(shape, axes, dtype):
    """The layout change (through torch's copy kernels on large arrays) is NumPy's transpose and
    row gather, bit for bit, C-contiguous, and never a view of the source."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(shape) * 100).astype(dtype)
    out = adapter._permute(w, axes)
    np.testing.assert_array_equal(out, np.transpose(w, axes))
    assert out.flags.c_contiguous and out.dtype == w.dtype and not np.shares_memory(out, w)
    rows = rng.permutation(out.shape[0])
    gathered = adapter._take_rows(out, rows)
    np.testing.assert_array_equal(gathered, out[rows])
    assert not np.shares_memory(gathered, out)
    frozen = w.copy()
    frozen.flags.writeable = False  # torch cannot wrap a read-only array: the NumPy path
    np.testing.assert_array_equal(adapter._permute(frozen, axes), np.transpose(w, axes))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_dense_copied_in_tiles_round_trips_bit_for_bit(dtype):
    """Linear(700, 300): both ways go through the tiled transposing copy (adapter._copy_tiled)."""
    assert min(700, 300) > adapter._TILE
    t = _randomize(T.Linear(700, 300, dtype=getattr(torch, dtype)), 5)
    k = K.Linear(700, 300, dtype=dtype)
    torch_to_keras(t, k)
    np.testing.assert_array_equal(np.asarray(k.kernel), t.weight.detach().numpy().T)
    back = _randomize(T.Linear(700, 300, dtype=getattr(torch, dtype)), 6)
    keras_to_torch(k, back)
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), t.parameters()))
    assert back.weight.requires_grad  # copied in place under no_grad: still a trainable leaf


def test_large_flattened_dense_is_permuted_like_numpy():
    """A Dense after a flatten, large enough for the torch copy path: rows as NumPy would pick them."""
    torch = _torch()
    torch.manual_seed(0)
    t = T.Sequential(T.Conv2d(2, 16, 3, padding=1), T.Flatten(), T.Linear(16 * 8 * 8, 40))
    k = K.Sequential(K.Conv2d(2, 16, 3, padding=1), K.Flatten(), K.Linear(16 * 8 * 8, 40))
    k.build((None, 8, 8, 2))
    torch_to_keras(t, k)
    w = t[2].weight.detach().numpy()
    rows = adapter.flatten_rows((8, 8, 16), (1, 2, 0))
    np.testing.assert_array_equal(np.asarray(k.layers[-1].kernel), w.T[rows])


def test_transferred_weights_never_alias_torch_memory(monkeypatch):
    """torch_to_keras hands TensorFlow the buffers its layout copies made (no second copy) and
    copies everything else: afterwards torch and Keras own separate memory both ways, and
    only 64-byte aligned buffers were handed over (TensorFlow aborts on others)."""
    handed = []
    real = tf.experimental.dlpack.from_dlpack
    monkeypatch.setattr(tf.experimental.dlpack, "from_dlpack", lambda capsule: handed.append(1) or real(capsule))
    torch.manual_seed(0)
    # conv 2 and the Dense after the flatten are large (torch-made, aligned copies); conv 1 and
    # the last Dense are small (NumPy's copies, maybe misaligned); biases are views of torch
    t = T.Sequential(T.Conv2d(3, 8, 3, padding=1), T.ReLU(), T.Conv2d(8, 256, 3, padding=1), T.Flatten(),
                     T.Linear(256 * 4 * 4, 64), T.ReLU(), T.Linear(64, 10))
    k = K.Sequential(K.Conv2d(3, 8, 3, padding=1), K.ReLU(), K.Conv2d(8, 256, 3, padding=1), K.Flatten(),
                     K.Linear(256 * 4 * 4, 64), K.ReLU(), K.Linear(64, 10))
    k.build((None, 4, 4, 3))
    torch_to_keras(t, k)
    assert len(handed) >= 2  # the large conv kernel and the permuted Dense kernel at least
    before = [v.numpy().copy() for v in k.weights]
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    with torch.no_grad():
        expected = t(torch.from_numpy(x)).numpy()
        for p in t.parameters():
            p.mul_(2.0)  # torch changes its weights in place: Keras must not see it
    for v, b in zip(k.weights, before):
        np.testing.assert_array_equal(np.asarray(v), b)
    np.testing.assert_allclose(np.asarray(k(_nchw_to_nhwc(x))), expected, rtol=1e-5, atol=1e-5)
    doubled = _params(t)
    for v in k.weights:
        v.assign_add(np.ones(v.shape, np.float32))  # and Keras updates in place: torch must not see it
    for n, p in t.named_parameters():
        torch.testing.assert_close(p.detach(), doubled[n], rtol=0, atol=0)
    for v, b in zip(k.weights, before):
        np.testing.assert_array_equal(np.asarray(v), b + 1)


def test_only_fresh_aligned_buffers_are_handed_over(monkeypatch):
    handed = []
    real = tf.experimental.dlpack.from_dlpack
    monkeypatch.setattr(tf.experimental.dlpack, "from_dlpack", lambda capsule: handed.append(1) or real(capsule))
    var = keras.Variable(np.zeros((64, 64), np.float32))
    source = torch.randn(64, 64).numpy()
    adapter._assign(var, source, [source])  # the torch tensor itself: copied
    adapter._assign(var, source.T, [source])  # a view: copied
    fresh = torch.empty(64, 64).numpy()
    fresh[...] = source.T
    misaligned = np.frombuffer(bytearray(64 * 64 * 4 + 16), np.float32, count=64 * 64, offset=4).reshape(64, 64)
    assert misaligned.ctypes.data % adapter._ALIGN
    misaligned[...] = source
    adapter._assign(var, misaligned, [source])  # a fresh copy, but not aligned: copied
    assert handed == []
    np.testing.assert_array_equal(np.asarray(var), source)
    adapter._assign(var, fresh, [source])
    assert handed == [1]
    np.testing.assert_array_equal(np.asarray(var), source.T)


def test_torch_view_reads_any_layout_in_place():
    """keras_to_torch's source view: a transposed, a read-only and a reversed array all copy in exactly."""
    w = np.arange(24, dtype=np.float32).reshape(4, 6)
    frozen = w.copy()
    frozen.flags.writeable = False
    for a in (w.T, np.transpose(w.reshape(2, 2, 3, 2), (2, 3, 1, 0)), frozen, w[::-1], w.astype(">f4")):
        out = torch.empty(a.shape, dtype=torch.float32)
        out.copy_(adapter._torch_view(a))
        np.testing.assert_array_equal(out.numpy(), a)
    assert np.shares_memory(adapter._torch_view(w.T).numpy(), w)  # read in place, no NumPy copy first
