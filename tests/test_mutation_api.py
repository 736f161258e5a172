"""The model comparison (api.py): behaviours that surviving mutants showed no test pinned down
(docs/reliability.md)."""

import numpy as np
import torch
from torch import nn

from equivalence import compare
from equivalence.frameworks import keras as _keras

keras = _keras()
L = keras.layers


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_leaky_relu_with_a_steep_slope_and_adaptive_average_pooling_ports_pass():
    torch.manual_seed(3)
    t = nn.Sequential(nn.Conv2d(2, 3, 3), nn.LeakyReLU(3.0), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    k = keras.Sequential([L.Conv2D(3, 3), L.LeakyReLU(negative_slope=3.0), L.GlobalAveragePooling2D(), L.Dense(2)])
    r = compare(t, k, _x(2, 2, 6, 6, seed=3))
    assert r.passed, str(r)
    wrong = keras.Sequential([L.Conv2D(3, 3), L.LeakyReLU(negative_slope=0.3), L.GlobalAveragePooling2D(), L.Dense(2)])
    assert not compare(t, wrong, _x(2, 2, 6, 6, seed=3)).passed


def test_a_parameter_gradient_is_charged_the_positions_it_sums_over():
    # docs/tolerances.md: a weight's gradient sums over every position the layer acts at (here the batch)
    torch.manual_seed(4)
    t = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    k = keras.Sequential([L.Dense(3), L.Activation("tanh"), L.Dense(2)])
    batch = 7
    r = compare(t, k, _x(batch, 4, seed=4))
    assert r.passed, str(r)
    n = {row.name: row.n for row in r.rows}
    assert n["grad:0.weight"] == n["grad:input"] + batch and n["grad:2.bias"] == n["grad:input"] + batch
    # the table: one line per tensor, each starting with its name
    lines = str(r).splitlines()
    assert any(line.startswith("grad:0.weight ") for line in lines)
    assert any(line.startswith("output ") for line in lines)


class _Rnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


class _KRnn(keras.Model):
    def __init__(self):
        super().__init__()
        self.rnn = L.GRU(4, return_sequences=True)
        self.fc = L.Dense(4)

    def call(self, x):
        return self.fc(self.rnn(x))


def test_a_sequence_output_is_not_moved_as_a_channels_last_map():
    # (batch, time, features) with time == features: no convolution, so nothing is transposed
    torch.manual_seed(5)
    t = _Rnn()
    k = _KRnn()
    r = compare(t, k, _x(3, 4, 3, seed=5))
    assert r.passed, str(r)
    assert r.rows[0].shape == (3, 4, 4)


class _Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        y = self.fc(x)
        return y, 2 * y


class _KOne(keras.Model):
    def __init__(self):
        super().__init__()
        self.fc = L.Dense(2)

    def call(self, x):
        return self.fc(x)


def test_a_different_number_of_outputs_is_a_failed_row():
    torch.manual_seed(6)
    r = compare(_Two(), _KOne(), _x(4, 3, seed=6))
    assert not r.passed
    (row,) = [row for row in r.rows if row.name == "outputs"]
    assert not row.passed and row.problem == "torch returns 2 tensors, Keras 1"
