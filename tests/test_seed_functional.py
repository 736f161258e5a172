"""The values and shapes seed 001 prints for torch.nn.functional (§4.3-4.5), asserted as the seed prints them.

Each test runs against both implementations: torch's own functions (re-exported by
``torch_impl.functional``) and the TensorFlow port ``tf_impl.functional``.
"""

import numpy as np
import pytest

from equivalence.frameworks import tf, torch
from torch_impl import functional as torch_F
from tf_impl import functional as tf_F


def _torch(a):
    return torch().tensor(np.asarray(a, dtype=np.float32))


def _tf(a):
    return tf().constant(np.asarray(a, dtype=np.float32))


def _normal(shape):
    return np.random.default_rng(0).standard_normal(shape)


IMPLS = [pytest.param(torch_F, _torch, id="torch"), pytest.param(tf_F, _tf, id="tf")]


def values(t) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


@pytest.mark.parametrize(("F", "tensor"), IMPLS)
def test_relu_example(F, tensor):
    # In [22]: F.relu(x) -> tensor([0.8008, 0.0000, 0.5019, 0.0000, 0.0000])
    x = tensor([0.8008, -0.2586, 0.5019, -0.2002, -0.7416])
    np.testing.assert_array_equal(np.round(values(F.relu(x)), 4), np.float32([0.8008, 0.0000, 0.5019, 0.0000, 0.0000]))


@pytest.mark.parametrize(("F", "tensor"), IMPLS)
def test_mse_loss_examples(F, tensor):
    # In [25], [26]: nn.MSELoss()(x, y) -> tensor(9.) and tensor(2.2500)
    assert values(F.mse_loss(tensor([[3.0]]), tensor([[0.0]]))) == 9.0
    assert round(float(values(F.mse_loss(tensor([[3.0, 0.0, 0.0, 0.0]]), tensor([[0.0, 0.0, 0.0, 0.0]])))), 4) == 2.25


@pytest.mark.parametrize(("F", "tensor"), IMPLS)
def test_conv_definition_example(F, tensor):
    # §4.4: (1,2,3,4) (+) (3,2) = (3+4, 6+9, 9+8) = (7, 12, 17)
    y = F.conv1d(tensor([[[1.0, 2.0, 3.0, 4.0]]]), tensor([[[3.0, 2.0]]]))
    np.testing.assert_array_equal(values(y), np.float32([[[7.0, 12.0, 17.0]]]))


@pytest.mark.parametrize(("F", "tensor"), IMPLS)
def test_conv2d_shape_example(F, tensor):
    # In [27]: F.conv2d(input1, weight, bias).size() -> torch.Size([117, 5, 9, 11])
    weight, bias, input1 = tensor(_normal((5, 4, 2, 3))), tensor(_normal(5)), tensor(_normal((117, 4, 10, 13)))
    assert list(F.conv2d(input1, weight, bias).shape) == [117, 5, 9, 11]


@pytest.mark.parametrize(("F", "tensor"), IMPLS)
def test_dilation_example(F, tensor):
    # In [28]: nn.Conv2d(1, 1, kernel_size=3, dilation=4) on (1, 1, 20, 30) -> torch.Size([1, 1, 12, 22])
    x, w, b = tensor(_normal((1, 1, 20, 30))), tensor(_normal((1, 1, 3, 3))), tensor(_normal(1))
    assert list(F.conv2d(x, w, b, dilation=4).shape) == [1, 1, 12, 22]


@pytest.mark.parametrize(("F", "tensor"), IMPLS)
def test_max_pool2d_example(F, tensor):
    # In [29], [30]: F.max_pool2d(x, (1, 2)) on the printed x
    x = tensor([[[[1.0, 1.0, 0.0, 2.0, 1.0, 1.0], [2.0, 2.0, 2.0, 0.0, 2.0, 1.0]],
                 [[1.0, 1.0, 0.0, 0.0, 2.0, 1.0], [0.0, 2.0, 0.0, 2.0, 1.0, 0.0]]]])
    expected = np.float32([[[[1.0, 2.0, 1.0], [2.0, 2.0, 2.0]], [[1.0, 0.0, 2.0], [2.0, 2.0, 1.0]]]])
    np.testing.assert_array_equal(values(F.max_pool2d(x, (1, 2))), expected)
