"""The data-dependent graph of seed 001 §4.2: ``blah(k, x)`` applies tanh(w[i] @ x) k times.

    u = blah(1, x_u),  v = blah(3, x_v),  q = u . v

w[0] is used by both u and v, w[1] and w[2] by v alone. A tape records only
the operations that ran, so the Python loop is the graph, as in torch.
Run ``python -m tf_impl.dynamic_graph``.
"""

import tensorflow as tf


def blah(k, x, w):
    """k layers x <- tanh(w[i] @ x); the seed's ``w`` is a global, passed here."""
    for i in range(k):
        x = tf.tanh(tf.linalg.matvec(w[i], x))
    return x


def dynamic_graph(w, x_u, x_v, k_u=1, k_v=3):
    """u, v, q = u . v and dq/dw."""
    w = tf.Variable(w)
    with tf.GradientTape() as tape:
        u = blah(k_u, x_u, w)
        v = blah(k_v, x_v, w)
        q = tf.tensordot(u, v, 1)
    return u, v, q, tape.gradient(q, w)


def main():
    w = tf.random.uniform([3, 10, 10])
    u, v, q, gw = dynamic_graph(w, tf.random.uniform([10]), tf.random.uniform([10]))
    print(q)
    # w[0] gets gradient from u and from v; w[1], w[2] from v alone
    print([float(tf.norm(gw[i])) for i in range(3)])
    _, _, _, gw1 = dynamic_graph(w, tf.random.uniform([10]), tf.random.uniform([10]), k_u=1, k_v=1)
    print("with k = 1 for both, w[1] and w[2] get no gradient:", [float(tf.norm(gw1[i])) for i in range(3)])


if __name__ == "__main__":
    main()
