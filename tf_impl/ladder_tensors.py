"""The two-layer network on TF tensors with the hand-written backward pass (seed 003, "Tensors").

No tape: the gradients are the tutorial's matrix derivation, written with
``tf.matmul``. TF tensors are immutable, so the update makes new tensors where
torch subtracts in place. Run ``python -m tf_impl.ladder_tensors``.
"""

import numpy as np
import tensorflow as tf

from .ladder_numpy import tutorial_data

dtype = tf.float32


def forward(x, w1, w2):
    h = tf.matmul(x, w1)
    h_relu = tf.maximum(h, 0)  # h.clamp(min=0)
    y_pred = tf.matmul(h_relu, w2)
    return h, h_relu, y_pred


def backward(x, y, w2, h, h_relu, y_pred):
    """Backprop to compute gradients of w1 and w2 with respect to loss."""
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = tf.matmul(h_relu, grad_y_pred, transpose_a=True)
    grad_h_relu = tf.matmul(grad_y_pred, w2, transpose_b=True)
    grad_h = tf.where(h < 0, tf.zeros_like(grad_h_relu), grad_h_relu)  # grad_h[h < 0] = 0
    grad_w1 = tf.matmul(x, grad_h, transpose_a=True)
    return grad_w1, grad_w2


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the loop from (w1, w2): loss, gradients and the updated weights."""
    h, h_relu, y_pred = forward(x, w1, w2)
    loss = tf.reduce_sum(tf.square(y_pred - y))
    grad_w1, grad_w2 = backward(x, y, w2, h, h_relu, y_pred)
    return {"loss": loss, "grad_w1": grad_w1, "grad_w2": grad_w2,
            "w1": w1 - learning_rate * grad_w1, "w2": w2 - learning_rate * grad_w2}


def train(x, y, w1, w2, learning_rate=1e-6, steps=500, log=None):
    """The tutorial's loop; ``log(t, loss)`` at t % 100 == 99.

    Returns the loss at every step (a tensor) and the final weights. The loop
    body is compiled once with ``tf.function`` (graph mode: the same operations,
    without eager dispatch on every one of them).
    """

    @tf.function
    def train_step(w1, w2):
        # Forward pass: compute predicted y
        h, h_relu, y_pred = forward(x, w1, w2)

        # Compute loss
        loss = tf.reduce_sum(tf.square(y_pred - y))

        grad_w1, grad_w2 = backward(x, y, w2, h, h_relu, y_pred)

        # Update weights using gradient descent (new tensors: TF tensors are immutable)
        return loss, w1 - learning_rate * grad_w1, w2 - learning_rate * grad_w2

    losses = []
    for t in range(steps):
        loss, w1, w2 = train_step(w1, w2)
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss.numpy().item())
    return {"losses": tf.stack(losses), "w1": w1, "w2": w2}


def main():
    # Random data and weights from a seeded NumPy generator (the torch module draws the same ones)
    x, y, w1, w2 = (tf.constant(a, dtype=dtype) for a in tutorial_data(np.random.default_rng(0)))
    train(x, y, w1, w2, log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
