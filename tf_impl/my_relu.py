"""MyReLU (seed 003, "Defining new autograd functions"), ported to ``tf.custom_gradient``.

``my_relu`` keeps MyReLU's own rule: the gradient is zeroed where ``input < 0``
only, so at an input of exactly 0 it passes (``tf.nn.relu`` gives 0 there).
``MyReLU.apply`` mirrors the torch Function's entry point and ``MyReLULayer``
is the Keras layer. Run ``python -m tf_impl.my_relu``.
"""

import keras
import numpy as np
import tensorflow as tf

from .ladder_numpy import tutorial_data

dtype = tf.float32


@tf.custom_gradient
def my_relu(input):
    """input.clamp(min=0); its gradient passes where input >= 0 (at 0 too), zero where input < 0."""

    def backward(grad_output):
        return tf.where(input < 0, tf.zeros_like(grad_output), grad_output)

    return tf.maximum(input, 0), backward


class MyReLU:
    """The torch Function's entry point: ``relu = MyReLU.apply``."""

    apply = staticmethod(my_relu)


class MyReLULayer(keras.layers.Layer):
    """MyReLU as a Keras layer, to sit in a keras.Sequential."""

    def call(self, inputs):
        return MyReLU.apply(inputs)


def relu_and_grad(x, grad_output=None):
    """MyReLU(x) and d(sum(grad_output * MyReLU(x)))/dx (grad_output defaults to ones)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = MyReLU.apply(x)
    return out, tape.gradient(out, x, output_gradients=tf.ones_like(out) if grad_output is None else grad_output)


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the loop with relu = MyReLU.apply: loss, gradients and the updated weights."""
    relu = MyReLU.apply
    w1, w2 = tf.Variable(w1), tf.Variable(w2)
    with tf.GradientTape() as tape:
        y_pred = tf.matmul(relu(tf.matmul(x, w1)), w2)
        loss = tf.reduce_sum(tf.square(y_pred - y))
    grad_w1, grad_w2 = tape.gradient(loss, [w1, w2])
    w1.assign_sub(learning_rate * grad_w1)
    w2.assign_sub(learning_rate * grad_w2)
    return {"loss": loss, "grad_w1": grad_w1, "grad_w2": grad_w2,
            "w1": tf.convert_to_tensor(w1), "w2": tf.convert_to_tensor(w2)}


def train(x, y, w1, w2, learning_rate=1e-6, steps=500, log=None):
    """The tutorial's loop on Variables copied from w1, w2; ``log(t, loss)`` at t % 100 == 99."""
    w1, w2 = tf.Variable(w1), tf.Variable(w2)
    # To apply our function, we use MyReLU.apply, as in torch. We alias this as 'relu'.
    relu = MyReLU.apply

    @tf.function  # the loop body as one graph: the same operations, without eager dispatch
    def train_step():
        # Forward pass: compute predicted y; ReLU is our custom-gradient operation.
        with tf.GradientTape() as tape:
            y_pred = tf.matmul(relu(tf.matmul(x, w1)), w2)
            loss = tf.reduce_sum(tf.square(y_pred - y))

        # Use the tape to compute the backward pass.
        grad_w1, grad_w2 = tape.gradient(loss, [w1, w2])

        # Update weights using gradient descent
        w1.assign_sub(learning_rate * grad_w1)
        w2.assign_sub(learning_rate * grad_w2)
        return loss

    losses = []
    for t in range(steps):
        loss = train_step()
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss.numpy().item())
    return {"losses": tf.stack(losses), "w1": tf.convert_to_tensor(w1), "w2": tf.convert_to_tensor(w2)}


def main():
    x, y, w1, w2 = (tf.constant(a, dtype=dtype) for a in tutorial_data(np.random.default_rng(0)))
    train(x, y, w1, w2, log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
