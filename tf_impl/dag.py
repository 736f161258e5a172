"""The w1/w2 DAG of seed 000 §2 and seed 001 §4.1-4.2, with weight sharing.

    x1 = phi1(x0; w1) = w1 x0
    x2 = phi2(x0, x1; w2) = x0 + w2 x1
    x3 = phi3(x1, x2; w1) = w1 (x1 + x2)
    q = ||x3||

Seed 001 writes it in TF1: ``tf.gradients`` builds the gradient ops into the
graph and a ``tf.Session`` runs them. In TF2 the graph is a ``tf.function``
(where ``tf.gradients`` still works) and eager code uses a ``GradientTape``.
Vectors are 1-D, as in torch (the seed's TF1 code used (5, 1) columns).
Run ``python -m tf_impl.dag``.
"""

import tensorflow as tf


def dag(w1, w2, x, w3=None):
    """The forward pass: x1, x2, x3 and q. phi3 shares w1 unless a separate ``w3`` is given."""
    w3 = w1 if w3 is None else w3
    x0 = x
    x1 = tf.linalg.matvec(w1, x0)
    x2 = x0 + tf.linalg.matvec(w2, x1)
    x3 = tf.linalg.matvec(w3, x1 + x2)
    q = tf.norm(x3)
    return x1, x2, x3, q


def dag_backward(w1, w2, x):
    """q, x3 and the gradients of q w.r.t. x3, w1, w2 and x, from one tape.

    torch keeps x3's gradient with ``retain_grad()``; a tape gives the gradient
    with respect to any tensor it recorded, intermediates included.
    """
    w1, w2, x = (tf.Variable(v) for v in (w1, w2, x))
    with tf.GradientTape() as tape:
        _, _, x3, q = dag(w1, w2, x)
    gx3, gw1, gw2, gx = tape.gradient(q, [x3, w1, w2, x])
    return q, x3, gx3, gw1, gw2, gx


@tf.function
def _dag_gradients(w1, w2, x):
    # TF1's graph, built once per input signature: tf.gradients adds the backward ops to it
    _, _, _, q = dag(w1, w2, x)
    gw1, gw2, gx = tf.gradients(q, [w1, w2, x])
    return q, gw1, gw2, gx


def dag_grad(w1, w2, x):
    """Seed 001's ``gw1, gw2 = tf.gradients(q, [w1, w2])`` and ``sess.run``, as a ``tf.function`` (plus x)."""
    return _dag_gradients(tf.convert_to_tensor(w1), tf.convert_to_tensor(w2), tf.convert_to_tensor(x))


def main():
    w1 = tf.Variable(tf.random.normal([5, 5]))
    w2 = tf.Variable(tf.random.normal([5, 5]))
    x = tf.Variable(tf.random.normal([5]))
    q, x3, gx3, gw1, gw2, gx = dag_backward(w1, w2, x)
    print(q)
    print(x3)
    print(gx3)  # = x3 / q
    _, _gw1, _gw2, _ = dag_grad(w1, w2, x)
    print(_gw1)
    print(_gw2)


if __name__ == "__main__":
    main()
