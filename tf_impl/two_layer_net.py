"""A custom Keras model, TwoLayerNet (seed 003, "Custom nn Modules"), trained with torch's Adam.

A ``keras.Model`` subclass with the same attribute names as the torch Module
(``linear1``, ``linear2``); Dense layers assigned as attributes are tracked as
torch's submodules are. Run ``python -m tf_impl.two_layer_net``.
"""

import keras
import numpy as np
import tensorflow as tf

from . import _weights
from .ladder_nn import torch_init
from .ladder_numpy import D_in, D_out, H, tutorial_data, two_layer_params
from .ladder_optim import TorchAdam, step, train  # noqa: F401  (the same loop as the optim rung)

dtype = "float32"


class TwoLayerNet(keras.Model):
    def __init__(self, D_in, H, D_out, dtype=dtype):
        """Two Dense layers, assigned as attributes so Keras tracks them (nn.Linear's init)."""
        super().__init__(dtype=dtype)
        self.D_in = D_in
        self.linear1 = keras.layers.Dense(H, kernel_initializer=torch_init(D_in), bias_initializer=torch_init(D_in),
                                          dtype=dtype)
        self.linear2 = keras.layers.Dense(D_out, kernel_initializer=torch_init(H), bias_initializer=torch_init(H),
                                          dtype=dtype)

    def build(self, input_shape):
        self.linear1.build(input_shape)
        self.linear2.build((input_shape[0], self.linear1.units))
        super().build(input_shape)

    def call(self, x):
        h_relu = tf.maximum(self.linear1(x), 0)  # .clamp(min=0)
        y_pred = self.linear2(h_relu)
        return y_pred

    def torch_layers(self):
        """torch's module names for the Dense layers."""
        return {"linear1": self.linear1, "linear2": self.linear2}


def build_model(params=None, dtype=dtype):
    """TwoLayerNet(D_in, H, D_out), built; weights from torch-named ``params`` if given."""
    model = TwoLayerNet(D_in, H, D_out, dtype=dtype)
    model.build((None, D_in))
    if params is not None:
        _weights.load(model.torch_layers(), params)
    return model


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    model = build_model(two_layer_params(rng, names=("linear1", "linear2")))
    optimizer = TorchAdam(learning_rate=1e-4)
    train(model, tf.constant(x, dtype=dtype), tf.constant(y, dtype=dtype), optimizer,
          log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
