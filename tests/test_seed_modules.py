"""The values seed 001 §4.3-4.6 prints for modules, as literals, for both implementations."""

import numpy as np
import pytest

from equivalence.frameworks import keras as _keras
from equivalence.frameworks import tf as _tf
from equivalence.frameworks import torch as _torch

torch = _torch()
tf = _tf()
keras = _keras()

from tf_impl import modules as K  # noqa: E402
from torch_impl import modules as T  # noqa: E402

NET_PARAMETER_SIZES = [  # In [34]
    (32, 1, 5, 5),
    (32,),
    (64, 32, 5, 5),
    (64,),
    (200, 256),
    (200,),
    (10, 200),
    (10,),
]


# -- In [23]-[24]: nn.Linear(10, 4) --------------------------------------------------------


def test_linear_named_parameters_torch():
    f = T.Linear(in_features=10, out_features=4)
    assert [(n, tuple(p.size())) for n, p in T.named_parameters(f)] == [("weight", (4, 10)), ("bias", (4,))]


def test_linear_named_parameters_tf():
    f = K.Linear(in_features=10, out_features=4)  # before any call, as in the seed
    assert [(n, tuple(p.shape)) for n, p in K.named_parameters(f)] == [("weight", (4, 10)), ("bias", (4,))]


def test_linear_batch_torch():
    x = torch.empty(523, 10).normal_()
    assert tuple(T.Linear(10, 4)(x).size()) == (523, 4)


def test_linear_batch_tf():
    x = np.random.default_rng(0).standard_normal((523, 10)).astype("float32")
    assert tuple(K.Linear(10, 4)(x).shape) == (523, 4)


# -- In [25]-[26]: nn.MSELoss ------------------------------------------------------------


def test_mse_loss_torch():
    f = T.MSELoss()
    assert f(torch.tensor([[3.0]]), torch.tensor([[0.0]])).item() == 9.0
    assert f(torch.tensor([[3.0, 0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.0, 0.0]])).item() == 2.25


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mse_loss_tf(dtype):
    f = K.MSELoss(dtype=dtype)
    nine = f(tf.constant([[0.0]], dtype), tf.constant([[3.0]], dtype))  # Keras: (target, prediction)
    quarter = f(tf.constant([[0.0, 0.0, 0.0, 0.0]], dtype), tf.constant([[3.0, 0.0, 0.0, 0.0]], dtype))
    assert (float(nine), float(quarter)) == (9.0, 2.25)
    assert nine.dtype == dtype


# -- In [28]: dilation --------------------------------------------------------------------


def test_conv2d_dilation_output_size_torch():
    x = torch.empty(1, 1, 20, 30).normal_()
    l = T.Conv2d(1, 1, kernel_size=3, dilation=4)
    assert list(l(x).size()) == [1, 1, 12, 22]


def test_conv2d_dilation_output_size_tf():
    x = np.random.default_rng(0).standard_normal((1, 20, 30, 1)).astype("float32")  # channels_last
    l = K.Conv2d(1, 1, kernel_size=3, dilation=4)
    assert tuple(l(x).shape) == (1, 12, 22, 1)  # torch's [1, 1, 12, 22] in N, H, W, C


# -- In [31]: the MLP as nn.Sequential -----------------------------------------------------

MLP_PARAMETERS = [("0.weight", (100, 10)), ("0.bias", (100,)), ("2.weight", (50, 100)), ("2.bias", (50,)),
                  ("4.weight", (2, 50)), ("4.bias", (2,))]


def test_mlp_torch():
    model = T.mlp()
    assert [(n, tuple(p.shape)) for n, p in model.named_parameters()] == MLP_PARAMETERS
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert tuple(model(torch.empty(3, 10).normal_()).shape) == (3, 2)


def test_mlp_tf():
    model = K.mlp()
    assert isinstance(model, keras.Sequential)
    assert [(n, tuple(p.shape)) for n, p in K.named_parameters(model)] == MLP_PARAMETERS
    assert [type(m).__name__ for m in model.layers] == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert tuple(model(np.ones((3, 10), "float32")).shape) == (3, 2)


# -- In [32]-[34]: the Net -----------------------------------------------------------------


def test_net_output_torch():
    model = T.Net()
    input1 = torch.empty(12, 1, 28, 28).normal_()
    assert list(model(input1).size()) == [12, 10]


def test_net_output_tf():
    model = K.Net()
    input1 = np.random.default_rng(0).standard_normal((12, 28, 28, 1)).astype("float32")
    assert list(model(input1).shape) == [12, 10]


def test_net_parameters_torch():
    assert [tuple(k.size()) for k in T.Net().parameters()] == NET_PARAMETER_SIZES


def test_net_parameters_tf():
    model = K.Net()  # no call needed: the layers hold their weights from construction
    assert [tuple(k.shape) for k in K.parameters(model)] == NET_PARAMETER_SIZES
    assert [n for n, _ in K.named_parameters(model)] == [n for n, _ in T.Net().named_parameters()]
    assert [tuple(w.shape) for w in model.weights] == [(5, 5, 1, 32), (32,), (5, 5, 32, 64), (64,), (256, 200),
                                                      (200,), (200, 10), (10,)]


def test_net_attributes_mirror():
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert hasattr(T.Net(), name) and hasattr(K.Net(), name)


# -- §4.6's warning: parameters in plain lists are not seen; ModuleList fixes it ------------


def test_module_list_torch():
    assert len(T.parameters(T.MLPList())) == 6
    assert len(T.parameters(T.MLPPlainList())) == 0  # "Parameters included in ... lists are not seen"


def test_module_list_tf():
    names = ["fcs.0.weight", "fcs.0.bias", "fcs.1.weight", "fcs.1.bias", "fcs.2.weight", "fcs.2.bias"]
    assert [n for n, _ in K.named_parameters(K.MLPList())] == names
    assert [n for n, _ in T.named_parameters(T.MLPList())] == names
    assert len(K.MLPPlainList().weights) == 6  # Keras tracks plain lists: the warning does not apply


# -- what `python -m torch_impl.modules` / `python -m tf_impl.modules` print ------------------


def test_main_prints_the_seed_torch(capsys):
    T.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:7] == ["weight torch.Size([4, 10])", "bias torch.Size([4])", "torch.Size([523, 4])", "tensor(9.)",
                         "tensor(2.2500)", "torch.Size([1, 1, 12, 22])", "torch.Size([3, 2])"]
    assert lines[7] == "torch.Size([12, 10])"
    assert lines[8:] == [f"torch.Size({list(s)})" for s in NET_PARAMETER_SIZES]


def test_main_prints_the_seed_tf(capsys):
    K.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["weight (4, 10)", "bias (4,)", "(523, 4)"]
    assert lines[3].startswith("tf.Tensor(9.0,") and lines[4].startswith("tf.Tensor(2.25,")
    assert lines[5:8] == ["(1, 12, 22, 1)", "(3, 2)", "(12, 10)"]
    assert lines[8:] == [str(s) for s in NET_PARAMETER_SIZES]
