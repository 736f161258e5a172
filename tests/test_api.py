"""The public API: transfer, compare, assert_equivalent, their results and errors, the
adapter's newer layers, the pytest plugin."""

import copy
import math
import pathlib
import re

import numpy as np
import pytest
import torch
from torch import nn

import equivalence
from equivalence import AdapterError, EquivalenceError, assert_equivalent, compare, transfer
from equivalence.frameworks import keras as _keras
from tf_impl import modules as K
from torch_impl import modules as T

keras = _keras()
L = keras.layers
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- correct ports pass ----------------------------------------------------------------


def test_the_seed_net_passes_with_a_table():
    torch.manual_seed(0)
    r = compare(T.Net(), K.Net(), _x(2, 1, 28, 28))
    assert r.passed and bool(r) and r.forward is None and r.backward is None
    names = [row.name for row in r.rows]
    assert names == ["output", "grad:input", "grad:conv1.weight", "grad:conv1.bias", "grad:conv2.weight",
                     "grad:conv2.bias", "grad:fc1.weight", "grad:fc1.bias", "grad:fc2.weight", "grad:fc2.bias"]
    assert all(row.n > 0 and 0 < row.tolerance < math.inf for row in r.rows if row.max_abs_err > 0)
    text = str(r)
    assert text.startswith("PASSED: 10 of 10 tensors within tolerance (tolerance model, float32)")
    assert re.search(r"tensor\s+shape\s+max abs err\s+max rel err\s+ULP\s+tolerance\s+err/tol", text)
    # the localisation ran: each paired layer alone (forward and backward) and along the run
    assert {row.name for row in r.layers} >= {"conv1 (layer)", "fc2 (layer) grad:in", "fc1:in (run)"}


class _Seq(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.emb = nn.Embedding(11, 3)
        self.rnn = rnn
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, i):
        out, _ = self.rnn(self.emb(i))
        return self.fc(self.norm(out))


class _KSeq(keras.Model):
    def __init__(self, rnn):
        super().__init__()
        self.emb = L.Embedding(11, 3)
        self.rnn = rnn
        self.norm = L.LayerNormalization(epsilon=1e-5)
        self.fc = L.Dense(2)

    def call(self, i):
        return self.fc(self.norm(self.rnn(self.emb(i))))


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_embedding_rnn_layernorm_ports_pass(kind):
    torch.manual_seed(1)
    t = _Seq(getattr(nn, kind)(3, 4, batch_first=True))
    k = _KSeq(getattr(L, kind)(4, return_sequences=True))
    ids = np.random.default_rng(1).integers(0, 11, (3, 5))
    r = compare(t, k, ids)
    assert r.passed, str(r)
    assert "grad:input" not in [row.name for row in r.rows]  # integer inputs have no gradient
    assert "grad:emb.weight" in [row.name for row in r.rows]


def test_conv_family_ports_pass():
    """Grouped, depthwise and transposed convolutions, BatchNorm2d, in a channels_last Sequential."""
    torch.manual_seed(2)
    t = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.Conv2d(4, 8, 3, groups=4), nn.Conv2d(8, 4, 1, groups=2), nn.ConvTranspose2d(4, 3, 2, stride=2))
    with torch.no_grad():
        t[1].running_mean.uniform_(-1, 1)
        t[1].running_var.uniform_(0.5, 2)
    k = keras.Sequential([K.Conv2d(2, 4, 3, stride=2, padding=1), L.BatchNormalization(epsilon=1e-5, momentum=0.9),
                          L.ReLU(), L.DepthwiseConv2D(3, depth_multiplier=2), L.Conv2D(4, 1, groups=2),
                          L.Conv2DTranspose(3, 2, strides=2)])
    r = compare(t, k, _x(2, 2, 8, 8, seed=2))
    assert r.passed, str(r)
    assert r.rows[0].shape == (2, 3, 4, 4)  # the output compared in torch's layout


def test_conv_maps_with_as_many_channels_as_pixels_are_moved():
    """(N, 4, 4, 4): the layout cannot be told from the shape; it is moved all the same."""
    torch.manual_seed(3)
    t = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1))
    assert compare(t, keras.Sequential([K.Conv2d(4, 4, 3, padding=1)]), _x(2, 4, 4, 4)).passed


# -- transfer --------------------------------------------------------------------------


def test_transfer_report_and_both_directions():
    torch.manual_seed(4)
    t = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    k = keras.Sequential([L.Dense(4), L.BatchNormalization(epsilon=1e-5, momentum=0.9), L.Dense(2)])
    report = transfer(t, k)  # not built: built from the first Linear, (1, 3)
    assert report.direction == "torch -> keras"
    assert report.notes[0] == "built the Keras model on an input of shape (1, 3) (torch (1, 3))"
    assert len(report.notes) == 2 and "layer path '1'" in report.notes[1] and "biased" in report.notes[1]
    by_name = {e.torch_names: e for e in report.entries}
    assert by_name[("0.weight",)].torch_shapes == ((4, 3),)
    assert by_name[("0.weight",)].keras_shape == (3, 4)
    assert by_name[("0.weight",)].how == "transposed (out, in) -> (in, out)"
    assert by_name[("1.running_var",)].buffer and by_name[("1.running_var",)].keras_path.endswith("moving_variance")
    np.testing.assert_array_equal(k.layers[0].kernel.numpy(), t[0].weight.detach().numpy().T)
    assert "0.weight" in str(report) and "-> " in str(report)
    # back: Keras -> torch, parameters and running statistics
    for v in k.weights:
        v.assign(np.random.default_rng(0).standard_normal(tuple(v.shape)).astype(np.float32) ** 2)
    back = transfer(k, t)
    assert back.direction == "keras -> torch"
    np.testing.assert_array_equal(t[1].running_var.numpy(), k.layers[1].moving_variance.numpy())
    np.testing.assert_array_equal(t[2].weight.detach().numpy(), k.layers[2].kernel.numpy().T)


def test_transfer_needs_a_shape_for_an_unbuilt_conv_model():
    t = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(AdapterError, match=r"not built .* first layer \(Conv2d\) does not fix the input shape: "
                                           r"pass input_shape="):
        transfer(t, keras.Sequential([L.Conv2D(2, 3)]))
    k = keras.Sequential([L.Conv2D(2, 3)])
    report = transfer(t, k, input_shape=(1, 1, 5, 5))
    assert "(1, 5, 5, 1)" in report.notes[0]


def test_lstm_biases_are_summed_and_split():
    torch.manual_seed(5)
    t = nn.LSTM(3, 2, batch_first=True)
    k = L.LSTM(2, return_sequences=True)
    k.build((None, 4, 3))
    transfer(t, k)
    np.testing.assert_allclose(k.cell.bias.numpy(), (t.bias_ih_l0 + t.bias_hh_l0).detach().numpy(), rtol=0, atol=0)
    t2 = nn.LSTM(3, 2, batch_first=True)
    transfer(k, t2)  # the sum goes to bias_ih, bias_hh is zero: the same function
    np.testing.assert_array_equal(t2.bias_hh_l0.detach().numpy(), 0)
    x = torch.from_numpy(_x(2, 4, 3))
    torch.testing.assert_close(t2(x)[0], t(x)[0], rtol=1e-6, atol=1e-6)


def test_unsupported_and_multilayer():
    with pytest.raises(AdapterError, match="num_layers=2"):
        transfer(nn.GRU(3, 4, num_layers=2, batch_first=True), L.GRU(4))
    with pytest.raises(AdapterError, match=r"torch Bilinear .* is not supported"):
        transfer(nn.Sequential(nn.Bilinear(2, 2, 3)), keras.Sequential([L.Dense(3)]))


# -- explicit tolerances ---------------------------------------------------------------


def test_explicit_tolerances_override_the_model():
    torch.manual_seed(6)
    t = nn.Sequential(nn.Linear(5, 3))
    k = keras.Sequential([L.Dense(3)])
    r = compare(t, k, _x(4, 5), atol=1e-3)
    assert r.passed and r.tolerance.startswith("explicit rtol=None, atol=0.001")
    assert all(row.tolerance == 1e-3 and row.n == 0 for row in r.rows)
    transfer(t, k)
    k.layers[0].bias.assign(k.layers[0].bias.numpy() + 1e-4)  # off by 1e-4: inside atol=1e-3, outside the model
    assert compare(t, k, _x(4, 5), transfer=False, atol=1e-3).passed
    assert not compare(t, k, _x(4, 5), transfer=False).passed
    r = compare(t, k, _x(4, 5), transfer=False, rtol=0, atol=0)
    assert not r.passed and r.forward.layer == "0"


# -- assert_equivalent and errors ------------------------------------------------------


def test_assert_equivalent_raises_with_the_table():
    torch.manual_seed(7)
    t = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    k = keras.Sequential([L.Dense(4), L.Activation(lambda v: keras.activations.gelu(v, approximate=True))])
    assert assert_equivalent(t, keras.Sequential([L.Dense(4), L.Activation(
        lambda v: keras.activations.gelu(v, approximate=False))]), _x(3, 4) * 3).passed
    with pytest.raises(EquivalenceError) as info:
        assert_equivalent(t, k, _x(3, 4) * 3)
    assert isinstance(info.value, AssertionError)
    message = str(info.value)
    assert message.startswith("FAILED:") and "max abs err" in message
    assert "forward: first diverging layer '1' (torch GELU / Keras Activation)" in message
    assert info.value.result.forward.layer == "1"


def test_misuse_is_a_type_or_value_error():
    t = nn.Sequential(nn.Linear(2, 2))
    k = keras.Sequential([L.Dense(2)])
    with pytest.raises(TypeError, match=r"torch_model must be a torch.nn.Module, got the path or string 'model.pt' \(load the model"):
        compare("model.pt", k, _x(1, 2))
    with pytest.raises(TypeError, match="keras_model must be a Keras model or layer, got the path or string 'model.keras'"):
        compare(t, "model.keras", _x(1, 2))
    with pytest.raises(TypeError, match="inputs must be NumPy arrays in torch's layout .* got the path or string 'x.npy' \\(load the arrays"):
        compare(t, k, "x.npy")
    with pytest.raises(TypeError, match="got a dict"):
        compare(t, k, {"x": _x(1, 2)})
    with pytest.raises(ValueError, match="inputs is empty"):
        compare(t, k, ())
    with pytest.raises(ValueError, match=r"inputs\[0\] must hold numbers .* dtype <U1"):
        compare(t, k, np.array(["a"]))
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0, got -1"):
        compare(t, k, _x(1, 2), rtol=-1)
    with pytest.raises(TypeError, match="src must be a torch.nn.Module or a Keras model, got the path or string"):
        transfer("weights.pt", k)


def test_a_model_that_fails_on_the_inputs_is_an_adapter_error():
    t = nn.Sequential(nn.Linear(3, 2))
    k = keras.Sequential([L.Dense(2)])
    with pytest.raises(AdapterError, match=r"the torch Sequential fails on the given inputs \(shapes \[\(4, 5\)\]\)") \
            as info:
        compare(t, k, _x(4, 5))
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(AdapterError, match="the Keras Sequential fails on the given inputs") as info:
        compare(nn.Sequential(nn.Linear(3, 2)), keras.Sequential([L.Reshape((7,)), L.Dense(2)]), _x(4, 3))
    assert info.value.__cause__ is not None


def test_architectures_that_do_not_match():
    with pytest.raises(AdapterError, match="has no Keras counterpart"):
        compare(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2)), keras.Sequential([L.Dense(2)]), _x(2, 3))


def test_the_array_compare_is_still_there():
    c = equivalence.compare(np.ones(3), np.ones(3) + 1e-9, 1e-8)
    assert isinstance(c, equivalence.Comparison) and c.passed


# -- the pytest plugin ------------------------------------------------------------------


pytest_plugins = ["pytester"]


def test_plugin_fixtures_and_failure_output(pytester):
    pytester.makepyfile(test_port="""
        import numpy as np
        import torch
        from torch import nn
        from equivalence.frameworks import keras
        L = keras().layers

        def test_ok(assert_equivalent, equivalence_rng):
            torch.manual_seed(0)
            x = equivalence_rng.standard_normal((3, 4)).astype(np.float32)
            assert_equivalent(nn.Sequential(nn.Linear(4, 2)), keras().Sequential([L.Dense(2)]), x)

        def test_rng_is_seeded(equivalence_rng, request):
            import zlib
            want = np.random.default_rng(zlib.crc32(request.node.nodeid.encode())).random()
            assert equivalence_rng.random() == want

        def test_wrong(compare_models):
            torch.manual_seed(0)
            t = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
            k = keras().Sequential([L.Dense(4), L.Activation("sigmoid")])
            result = compare_models(t, k, np.ones((2, 4), np.float32))
            assert not result.passed
            assert result.passed, result  # the message is the table

        def test_wrong_fixture(assert_equivalent):
            torch.manual_seed(0)
            t = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
            assert_equivalent(t, keras().Sequential([L.Dense(4), L.Activation("sigmoid")]), np.ones((2, 4), np.float32))
    """)
    # installed (pip install -e .), the plugin loads through its pytest11 entry point;
    # from a bare checkout it has to be named
    from importlib.metadata import entry_points

    installed = any(ep.name == "equivalence" for ep in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "equivalence.pytest_plugin"]
    result = pytester.runpytest_inprocess(*load, "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    for test in ("test_wrong", "test_wrong_fixture"):
        section = result.stdout.str().split(f"_ {test} _")[1]
        assert re.search(r"FAILED: 0 of \d+ tensors within tolerance", section)
        assert re.search(r"tensor\s+shape\s+max abs err", section)
        assert "forward: first diverging layer '1' (torch Tanh / Keras Activation)" in section


def test_the_entry_point_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nequivalence = "equivalence.pytest_plugin"' in text


# -- the walk-through runs as written --------------------------------------------------


def test_porting_walkthrough_runs():
    """Every ```python block of docs/porting.md, in order, in one namespace; the output it
    shows is what the blocks assert."""
    text = (ROOT / "docs" / "porting.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace = {"__name__": "porting_walkthrough"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/porting.md block {i}", "exec"), namespace)


# -- the adapter's newer layers: exact round trips ----------------------------------------


def _round_trip_pairs():
    yield "batchnorm2d", nn.BatchNorm2d(3), L.BatchNormalization(epsilon=1e-5, momentum=0.9), (None, 4, 4, 3)
    yield "layernorm", nn.LayerNorm(5), L.LayerNormalization(epsilon=1e-5), (None, 5)
    yield "embedding", nn.Embedding(7, 3), L.Embedding(7, 3), (None, 2)
    yield "gru", nn.GRU(3, 4, batch_first=True), L.GRU(4), (None, 2, 3)
    yield "depthwise", nn.Conv2d(3, 6, 3, groups=3), L.DepthwiseConv2D(3, depth_multiplier=2), (None, 5, 5, 3)
    yield "transpose", nn.ConvTranspose2d(3, 2, 3, stride=2), L.Conv2DTranspose(2, 3, strides=2), (None, 4, 4, 3)


@pytest.mark.parametrize("name,t,k,shape", list(_round_trip_pairs()), ids=[p[0] for p in _round_trip_pairs()])
def test_round_trips_are_bit_exact(name, t, k, shape):
    with torch.no_grad():
        for p in list(t.parameters()) + [b for b in t.buffers() if b.dtype.is_floating_point]:
            p.copy_(torch.rand_like(p) + 0.5)
    k.build(shape)
    transfer(t, k)
    fresh = copy.deepcopy(t)
    with torch.no_grad():
        for p in list(fresh.parameters()) + [b for b in fresh.buffers() if b.dtype.is_floating_point]:
            p.zero_()
    transfer(k, fresh)
    for (n, a), (_, b) in zip(t.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), n


# -- properties ----------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=6)  # each example builds and compares two models: a few suffice
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(0, 2), st.integers(0, 2**16))
def test_a_corrupted_weight_is_found_in_its_layer(widths, which, seed):
    """Random MLPs: the correct port passes; one Keras kernel entry moved by a relative 1e-3
    fails, at that layer, forward and backward."""
    torch.manual_seed(seed)
    sizes = [3] + widths + [2]
    tl, kl = [], []
    for a, b in zip(sizes, sizes[1:]):
        tl += [nn.Linear(a, b), nn.Tanh()]
        kl += [L.Dense(b), L.Activation("tanh")]
    t, k = nn.Sequential(*tl), keras.Sequential(kl)
    x = _x(4, 3, seed=seed)
    assert compare(t, k, x).passed
    layer = which % (len(sizes) - 1)
    kernel = k.layers[2 * layer].kernel
    value = kernel.numpy()
    value[0, 0] += 1e-3 * max(abs(value[0, 0]), 0.1)
    kernel.assign(value)
    r = compare(t, k, x, transfer=False)
    assert not r.passed
    assert (r.forward.where, r.forward.layer) == ("layer", str(2 * layer)), str(r)
    assert (r.backward.where, r.backward.layer) == ("layer", str(2 * layer)), str(r)


def test_batchnorm_training_caveat_is_noted_and_real():
    """Keras's moving_variance takes the biased batch variance, torch's running_var the unbiased one:
    the transfer says so, and one training step shows it."""
    torch.manual_seed(5)
    t = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.5))
    k = keras.Sequential([L.Dense(4), L.BatchNormalization(epsilon=1e-5, momentum=0.5)])
    notes = transfer(t, k).notes
    assert any("moving_variance" in n and "unbiased" in n for n in notes)
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    t.train()
    h = t[0](torch.from_numpy(x)).detach().numpy().astype(np.float64)
    t(torch.from_numpy(x))
    k(x, training=True)
    biased, unbiased = h.var(axis=0), h.var(axis=0, ddof=1)
    formulas = {"biased": 0.5 + 0.5 * biased, "unbiased": 0.5 + 0.5 * unbiased}  # from 1, momentum 0.5

    def closer(got):  # which update a framework made: the other is n/(n-1) away, far beyond rounding
        err = {name: np.max(np.abs(np.asarray(got, np.float64) - f)) for name, f in formulas.items()}
        return min(err, key=err.get), err

    assert closer(t[1].running_var.numpy())[0] == "unbiased"
    which, err = closer(k.layers[1].moving_variance.numpy())
    assert which == "biased" and err["biased"] < err["unbiased"] / 100, err
    plain = transfer(nn.Sequential(nn.Linear(3, 2)), keras.Sequential([L.Dense(2)])).notes
    assert not any("moving_variance" in note for note in plain)


# -- models nested two levels deep (subclassed on both sides) ---------------------------------
class _TBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        return self.out(torch.relu(self.fc(x)))


class _TNested(nn.Module):
    def __init__(self):
        super().__init__()
        self.block, self.head = _TBlock(), nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.block(x))


class _KBlock(L.Layer):
    def __init__(self, out_activation=None, **kw):
        super().__init__(**kw)
        self.fc, self.out = L.Dense(4), L.Dense(3, activation=out_activation)

    def call(self, x):
        return self.out(keras.ops.relu(self.fc(x)))


class _KNested(keras.Model):
    def __init__(self, scale_between=1.0, out_activation=None):
        super().__init__()
        self.block, self.head, self.scale = _KBlock(out_activation), L.Dense(2), scale_between

    def call(self, x):
        h = self.block(x)
        return self.head(h * self.scale if self.scale != 1.0 else h)


def _nested(**kw):
    torch.manual_seed(0)
    t, k = _TNested(), _KNested(**kw)
    report = transfer(t, k, input_shape=(5, 4))
    return t, k, report


def test_a_model_nested_two_levels_deep_transfers_by_path_and_passes():
    t, k, report = _nested()
    names = ("block.fc.weight", "block.fc.bias", "block.out.weight", "block.out.bias", "head.weight", "head.bias")
    assert [e.torch_names for e in report.entries] == [(n,) for n in names]
    np.testing.assert_array_equal(k.block.out.kernel.numpy(), t.block.out.weight.detach().numpy().T)
    r = compare(t, k, _x(5, 4))
    assert r.passed, str(r)
    assert {row.name for row in r.rows} >= {"grad:block.fc.weight", "grad:block.out.bias", "grad:head.weight"}
    assert any(lr.name.startswith("block.out") for lr in r.layers), [lr.name for lr in r.layers]


def test_a_wrong_layer_inside_a_nested_block_is_named_by_its_full_path():
    t, k, _ = _nested(out_activation="relu")  # torch's block.out has no activation
    r = compare(t, k, _x(5, 4))
    assert not r.passed
    assert (r.forward.where, r.forward.layer, r.forward.previous) == ("layer", "block.out", "block.fc"), str(r)
    assert (r.forward.keras_path, r.forward.keras_type) == ("block.out", "Dense"), str(r)
    assert "block.out" in str(r.forward), str(r)


def test_code_between_nested_layers_is_located_and_the_backward_points_at_the_forward():
    t, k, _ = _nested(scale_between=1.01)
    r = compare(t, k, _x(5, 4))
    assert not r.passed
    assert (r.forward.where, r.forward.previous, r.forward.layer) == ("between", "block.out", "head"), str(r)
    # every layer's backward agrees on the same output gradient: the gradients differ only
    # because the forward pass does, which the backward summary says instead of blaming the input
    assert r.backward.where == "forward", str(r)
    assert "because the forward pass does" in str(r.backward), str(r)
