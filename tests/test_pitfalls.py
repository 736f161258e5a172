"""Every pitfall of ../shared/docs/pitfalls.md that a model can carry is flagged by
``equivalence.compare``, with the right first diverging layer (forward and backward).

Each test builds a correct port first (it passes: the control), then the port with the one
mistake, and checks where the comparison puts it.
"""

import numpy as np
import pytest
import torch
from torch import nn

from equivalence import AdapterError, compare, transfer
from equivalence.frameworks import keras as _keras

keras = _keras()
L = keras.layers


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _assert_flagged(result, layer, *, backward=True, where="layer"):
    assert not result.passed
    assert result.forward is not None, str(result)
    assert (result.forward.where, result.forward.layer) == (where, layer), str(result)
    if backward:
        assert result.backward is not None, str(result)
        assert (result.backward.where, result.backward.layer) == ("layer", layer), str(result)


def test_transposed_dense_kernel():
    torch.manual_seed(0)
    t = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    k = keras.Sequential([L.Dense(4), L.ReLU(), L.Dense(3)])
    x = _x(5, 4)
    assert compare(t, k, x).passed
    k.layers[0].kernel.assign(t[0].weight.detach().numpy())  # (out, in) as (in, out): square, so it fits
    _assert_flagged(compare(t, k, x, transfer=False), "0")


def _cnn():
    torch.manual_seed(1)
    t = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    k = keras.Sequential([L.Conv2D(3, 3), L.ReLU(), L.Flatten(), L.Dense(5)])
    return t, k, _x(2, 2, 6, 6, seed=1)


def test_unpermuted_flatten_in_a_sequential():
    t, k, x = _cnn()
    assert compare(t, k, x).passed
    w = t[3].weight.detach().numpy()
    k.layers[3].kernel.assign(w.T)  # transposed, rows left in torch's C, H, W order
    _assert_flagged(compare(t, k, x, transfer=False), "3")


def test_unpermuted_flatten_in_a_subclassed_model():
    """The seed's Net, with a Keras port that flattens H, W, C but declares C, H, W: the code
    between conv2 and fc1 (the reshape in call) is where it breaks."""
    from tf_impl import modules as K
    from torch_impl import modules as T

    class Undeclared(K.Net):
        flatten_layout = {"fc1": None}

    torch.manual_seed(2)
    t, x = T.Net(), _x(2, 1, 28, 28, seed=2)
    assert compare(t, K.Net(), x).passed
    r = compare(t, Undeclared(), x)
    assert not r.passed
    assert (r.forward.where, r.forward.previous, r.forward.layer) == ("between", "conv2", "fc1"), str(r)


def test_oihw_kernel_left_as_is():
    torch.manual_seed(3)
    t = nn.Sequential(nn.Conv2d(3, 3, 3), nn.ReLU())
    k = keras.Sequential([L.Conv2D(3, 3), L.ReLU()])
    x = _x(2, 3, 5, 5, seed=3)
    assert compare(t, k, x).passed
    k.layers[0].kernel.assign(t[0].weight.detach().numpy())  # OIHW where HWIO belongs: (3, 3, 3, 3) fits
    _assert_flagged(compare(t, k, x, transfer=False), "0")


def test_same_padding_with_stride_2():
    torch.manual_seed(4)
    t = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Tanh())
    right = keras.Sequential([keras.Sequential([L.ZeroPadding2D(1), L.Conv2D(3, 3, strides=2)]),
                              L.Activation("tanh")])
    wrong = keras.Sequential([L.Conv2D(3, 3, strides=2, padding="same"), L.Activation("tanh")])
    x = _x(2, 2, 8, 8, seed=4)
    assert compare(t, right, x).passed
    _assert_flagged(compare(t, wrong, x), "0")


def test_zero_padded_max_pool_with_negative_activations():
    torch.manual_seed(5)
    t = nn.Sequential(nn.Conv2d(2, 3, 3), nn.MaxPool2d(2, padding=1))
    wrong = keras.Sequential([L.Conv2D(3, 3), keras.Sequential([L.ZeroPadding2D(1), L.MaxPooling2D(2)])])
    x = _x(2, 2, 7, 7, seed=5)
    with torch.no_grad():
        conv = t[0](torch.from_numpy(x))
    assert (conv[..., 0, 0] < 0).any()  # a corner window holds one element; negative: zero padding wins
    _assert_flagged(compare(t, wrong, x), "1")


def test_max_pool_port_with_minus_infinity_passes():
    from tf_impl import modules as K

    torch.manual_seed(5)
    t = nn.Sequential(nn.Conv2d(2, 3, 3), nn.MaxPool2d(2, padding=1))
    right = keras.Sequential([L.Conv2D(3, 3), K.MaxPool2d(2, padding=1)])
    assert compare(t, right, _x(2, 2, 7, 7, seed=5)).passed


def _bn_mlp(bn=None, ln=None):
    torch.manual_seed(6)
    t = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 5), nn.LayerNorm(5))
    with torch.no_grad():  # running statistics and affine parameters away from their defaults
        t[1].running_mean.uniform_(-1, 1)
        t[1].running_var.uniform_(0.05, 0.2)  # small variances: eps matters
        t[1].weight.uniform_(0.5, 1.5)
        t[1].bias.uniform_(-1, 1)
        t[4].weight.uniform_(0.5, 1.5)
        t[4].bias.uniform_(-1, 1)
    k = keras.Sequential([L.Dense(8), bn or L.BatchNormalization(epsilon=1e-5, momentum=0.9), L.ReLU(), L.Dense(5),
                          ln or L.LayerNormalization(epsilon=1e-5)])
    return t, k, _x(4, 6, seed=6) * 0.3


def test_batchnorm_eps_and_momentum():
    t, k, x = _bn_mlp()
    assert compare(t, k, x).passed
    t, k, x = _bn_mlp(bn=L.BatchNormalization())  # Keras defaults: epsilon 1e-3, momentum 0.99
    with pytest.raises(AdapterError, match=r"(?s)eps=1e-05, Keras BatchNormalization at '1' has epsilon=0.001.*"
                                           r"momentum=0.1, .* momentum=0.99.* must be 0.9"):
        compare(t, k, x)
    report = transfer(t, k, strict=False)
    assert any("epsilon=0.001" in n for n in report.notes) and any("momentum=0.99" in n for n in report.notes)
    _assert_flagged(compare(t, k, x, transfer=False), "1")


def test_batchnorm_momentum_alone_is_refused():
    """Momentum does not change an inference output: only the adapter can flag it."""
    t, k, x = _bn_mlp(bn=L.BatchNormalization(epsilon=1e-5))  # momentum 0.99 where 0.9 belongs
    with pytest.raises(AdapterError, match="momentum must be 0.9"):
        compare(t, k, x)
    assert compare(t, k, x, strict=False).passed  # same numbers at inference; the note stays in the report
    assert any("momentum" in n for n in compare(t, k, x, strict=False).transfer.notes)


def test_layernorm_eps():
    t, k, x = _bn_mlp(ln=L.LayerNormalization())
    with pytest.raises(AdapterError, match="torch LayerNorm has eps=1e-05, Keras LayerNormalization at '4' has "
                                           "epsilon=0.001"):
        compare(t, k, x)
    transfer(t, k, strict=False)
    r = compare(t, k, x, transfer=False)
    assert not r.passed
    assert (r.forward.where, r.forward.layer) == ("layer", "4"), str(r)


class _TorchGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out)


class _KerasGRU(keras.Model):
    def __init__(self, **kwargs):
        super().__init__()
        self.rnn = L.GRU(4, return_sequences=True, **kwargs)
        self.fc = L.Dense(2)

    def call(self, x):
        return self.fc(self.rnn(x))


def test_gru_gate_order():
    torch.manual_seed(7)
    t, k, x = _TorchGRU(), _KerasGRU(), _x(2, 5, 3, seed=7)
    assert compare(t, k, x).passed
    rnn = t.rnn
    k.rnn.cell.kernel.assign(rnn.weight_ih_l0.detach().numpy().T)  # torch's [r, z, n] where Keras wants [z, r, h]
    k.rnn.cell.recurrent_kernel.assign(rnn.weight_hh_l0.detach().numpy().T)
    k.rnn.cell.bias.assign(np.stack([rnn.bias_ih_l0.detach().numpy(), rnn.bias_hh_l0.detach().numpy()]))
    _assert_flagged(compare(t, k, x, transfer=False), "rnn")


def test_gru_without_reset_after():
    torch.manual_seed(7)
    t, x = _TorchGRU(), _x(2, 5, 3, seed=7)
    k = _KerasGRU(reset_after=False)
    with pytest.raises(AdapterError, match="reset_after=False"):
        compare(t, k, x)


def test_tanh_gelu_for_exact_gelu():
    torch.manual_seed(8)
    t = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 3))

    def keras_model(approximate):
        return keras.Sequential([L.Dense(8), L.Activation(lambda v: keras.activations.gelu(v, approximate=approximate)),
                                 L.Dense(3)])

    x = _x(4, 6, seed=8) * 3  # GELU's two forms differ most around |x| ~ 2
    assert compare(t, keras_model(False), x).passed
    _assert_flagged(compare(t, keras_model(True), x), "1")


def test_dropout_in_training_mode():
    class TorchDrop(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.drop, self.fc2 = nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(self.drop(self.fc1(x)))

    class KerasDrop(keras.Model):
        def __init__(self, training):
            super().__init__()
            self.fc1, self.drop, self.fc2 = L.Dense(8), L.Dropout(0.5), L.Dense(2)
            self.dropout_training = training

        def call(self, x, training=False):
            return self.fc2(self.drop(self.fc1(x), training=self.dropout_training or training))

    torch.manual_seed(9)
    t = TorchDrop()
    t.train()  # compare puts it in eval() and back
    assert compare(t, KerasDrop(False), _x(4, 6)).passed
    assert t.training
    r = compare(t, KerasDrop(True), _x(4, 6))
    assert not r.passed and (r.forward.where, r.forward.layer) == ("layer", "drop"), str(r)
    assert "training=True" in str(r.forward)


def test_avg_pool_count_include_pad():
    """ZeroPadding2D + AveragePooling2D divides by the whole window: torch's default
    count_include_pad=True; with count_include_pad=False the border windows differ."""
    torch.manual_seed(10)
    x = _x(2, 2, 6, 6, seed=10)
    keras_pool = keras.Sequential([L.Conv2D(3, 3), keras.Sequential([L.ZeroPadding2D(1), L.AveragePooling2D(2)])])
    right = nn.Sequential(nn.Conv2d(2, 3, 3), nn.AvgPool2d(2, padding=1))
    assert compare(right, keras_pool, x).passed
    wrong = nn.Sequential(nn.Conv2d(2, 3, 3), nn.AvgPool2d(2, padding=1, count_include_pad=False))
    _assert_flagged(compare(wrong, keras_pool, x), "1")


class _MyReLU(torch.autograd.Function):
    """The seed's MyReLU: the gradient passes where input == 0."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


class _MyReLUModule(nn.Module):
    def forward(self, x):
        return _MyReLU.apply(x)


def test_my_relu_gradient_at_zero():
    """Keras's ReLU gives 0 where the input is exactly 0; MyReLU passes the gradient: only the
    backward pass differs, and only with exact zeros in the input."""
    t = nn.Sequential(_MyReLUModule(), nn.Linear(4, 2))
    k = keras.Sequential([L.ReLU(), L.Dense(2)])
    x = _x(3, 4, seed=11)
    assert compare(t, k, x).passed  # no exact zeros: the two agree
    x[:, 1] = 0.0
    r = compare(t, k, x)
    assert not r.passed and r.forward is None, str(r)
    assert (r.backward.where, r.backward.layer) == ("layer", "0"), str(r)
    assert [row.name for row in r.failed()] == ["grad:input"]
