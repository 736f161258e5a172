"""Autograd basics (seed 000 §2, seed 001 §4.2), ported to ``tf.GradientTape``.

A tape's ``gradient`` returns fresh tensors, like ``torch.autograd.grad``; the
``.grad`` accumulation of ``Tensor.backward`` has no TensorFlow counterpart, so
``GradStore`` writes it out explicitly. Run ``python -m tf_impl.autograd_basics``.
"""

import tensorflow as tf


class GradStore:
    """The ``.grad`` fields of torch leaves: ``backward`` adds into them, ``zero_`` resets."""

    def __init__(self):
        self.grad = {}

    def backward(self, tape, target, sources, output_gradients=None):
        grads = tape.gradient(target, list(sources), output_gradients=output_gradients)
        for s, g in zip(sources, grads):
            if g is None:
                raise ValueError(f"{getattr(s, 'name', 'a source')} is not connected to the target: no gradient")
            key = id(s)
            self.grad[key] = g if key not in self.grad else self.grad[key] + g
        return self

    def __getitem__(self, source):
        return self.grad.get(id(source))

    def zero_(self):
        self.grad = {k: tf.zeros_like(v) for k, v in self.grad.items()}


def norm_with_grad(x):
    """l = ||x|| and dl/dx through ``GradientTape.gradient``."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        l = tf.norm(x)
    g = tape.gradient(l, x)
    return l, g


def norm_with_backward(x):
    """l = ||x|| and dl/dx accumulated into a ``GradStore``, like ``l.backward(); x.grad``."""
    x = tf.Variable(x)
    store = GradStore()
    with tf.GradientTape() as tape:
        l = tf.norm(x)
    store.backward(tape, l, [x])
    return l, store[x]


def main():
    x = tf.constant([1.0, 2.0, 2.0])
    l, g = norm_with_grad(x)
    print(l)
    print((g,))
    l, g = norm_with_backward(x)
    print(l)
    print(g)


if __name__ == "__main__":
    main()
