"""Seed 004: Q = 3a^3 - b^2 with explicit ``output_gradients``, and a tanh perceptron by hand and by a tape.

A non-scalar target needs the gradient of the final result w.r.t. it:
``output_gradients`` is torch's ``gradient=``. torch's ``retain_grad()`` has
no counterpart to write: a tape gives the gradient w.r.t. any tensor it
recorded, intermediates included. Run ``python -m tf_impl.perceptron``.
"""

import numpy as np
import tensorflow as tf


def q_backward(a, b, external_grad):
    """Q = 3a^3 - b^2; ``tape.gradient(Q, [a, b], output_gradients=external_grad)``: Q, 9a^2 g, -2b g."""
    a, b = tf.Variable(a), tf.Variable(b)
    with tf.GradientTape() as tape:
        Q = 3 * a**3 - b**2
    ga, gb = tape.gradient(Q, [a, b], output_gradients=external_grad)
    return Q, ga, gb


def numpy_forward(X, w):
    """The seed's NumPy cell: the wrong data point X[1] through the perceptron, y = tanh(v)."""
    v = np.sum(X[1, :] * w)
    y = (np.exp(v) - np.exp(-v)) / (np.exp(v) + np.exp(-v))
    return y


def perceptron(x, w):
    """v = x . w, y = tanh(v) written with exp, e = (-1 - y)^2 / 2; one tape.

    Returns y, e and the gradients of e w.r.t. y, v, w and x.
    """
    w, x = tf.Variable(w), tf.Variable(x)
    with tf.GradientTape() as tape:
        v = tf.tensordot(x, w, 1)
        y = (tf.exp(v) - tf.exp(-v)) / (tf.exp(v) + tf.exp(-v))
        e = 0.5 * (-1.0 - y) ** 2
    gy, gv, gw, gx = tape.gradient(e, [y, v, w, x])  # y and v: intermediates, no retain_grad needed
    return y, e, gy, gv, gw, gx


def by_hand(x, w):
    """The seed's hand-derived gradients: de/dy = (-1 - y)(-1), de/dv = de/dy (1 - tanh(v)^2), de/dw = de/dv x."""
    v = tf.tensordot(x, w, 1)
    y = tf.tanh(v)
    gy = (-1 - y) * (-1)
    gv = gy * (1 - tf.tanh(v) ** 2)
    gw = gv * x  # the seed writes [gv * (1.), gv * (1.)] for x = (1, 1)
    return gy, gv, gw


def main():
    a = tf.Variable([2.0, 3.0])
    b = tf.Variable([6.0, 4.0])
    print(a)
    print(b)
    Q, ga, gb = q_backward(a, b, external_grad=tf.constant([1.0, 1.0]))
    print(Q)
    print(ga)
    print(9 * a**2)
    print(gb)
    print(-2 * b)

    X = np.array([[0, 1], [1, 1], [0, -1], [1, -1]])
    print(numpy_forward(X, np.asarray([1.0, -0.5])))
    print("wanted it to be negative and a -1")

    w = tf.constant([1.0, -0.5])
    x = tf.constant([1.0, 1.0])
    y, e, gy, gv, gw, _ = perceptron(x, w)
    print(y)
    print(e)
    print("y grad")
    print(gy)
    print("v grad")
    print(gv)
    print("w grad")
    print(gw)
    hy, hv, hw = by_hand(x, w)
    print("y grad")
    print(hy)
    print("v grad")
    print(hv)
    print("w grad")
    print(hw)


if __name__ == "__main__":
    main()
