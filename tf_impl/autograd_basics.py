"""Autograd basics (seed 000 §2, seed 001 §4.2), ported to ``tf.GradientTape``.

A tape's ``gradient`` returns fresh tensors, like ``torch.autograd.grad``; the
``.grad`` accumulation of ``Tensor.backward`` has no TensorFlow counterpart, so
``GradStore`` writes it out explicitly. TensorFlow has no ``requires_grad``
flag either: a tape records an operation iff one of its operands is watched
(a trainable ``tf.Variable``, or a tensor passed to ``tape.watch``), which is
torch's propagation rule; ``requires_grad`` reads it off the tape.

Where TensorFlow is silent, the port is not: a tape asked for the gradient of
an integer tensor, or of a source the target does not depend on, returns
``None`` (torch raises); ``grad`` and ``requires_grad_`` raise instead.
Run ``python -m tf_impl.autograd_basics``.
"""

import tensorflow as tf


def _describe(x, index=None):
    name = getattr(x, "name", None) if isinstance(x, tf.Variable) else None
    where = f"source at index {index}" if index is not None else "tensor"
    return f"{where}{f' ({name!r})' if name else ''} of dtype {x.dtype.name} and shape {list(x.shape)}"


def _check_float(x, what):
    if not (x.dtype.is_floating or x.dtype.is_complex):
        raise TypeError(
            f"{what}: only floating point (and complex) tensors can have gradients, like torch; "
            f"cast it first, e.g. tf.cast(x, tf.float32)"
        )


def requires_grad_(tape, x):
    """``x.requires_grad_()``: the tape watches x; an integer x raises (``tape.watch`` only warns)."""
    _check_float(x, _describe(x))
    tape.watch(x)
    return x


def requires_grad(tape, t, leaves):
    """``t.requires_grad``: whether ``tape`` records t as a function of a watched leaf.

    Call it inside the tape's context, on a persistent tape. An identity of t is
    recorded only if t is watched or was computed from something watched.
    """
    probe = tf.identity(t)
    with tape.stop_recording():
        return any(g is not None for g in tape.gradient(probe, list(leaves)))


def grad(tape, target, sources, output_gradients=None, allow_unused=False):
    """``torch.autograd.grad(target, sources)`` on a tape: always a tuple, never a silent None.

    A target given as a list or tuple has the sum of its elements' gradients.
    An integer source raises ``TypeError``; a source the target does not depend
    on raises ``ValueError`` unless ``allow_unused=True`` (then its entry is None).
    """
    single = not isinstance(sources, (list, tuple))
    sources = [sources] if single else list(sources)
    targets = list(target) if isinstance(target, (list, tuple)) else [target]
    for i, s in enumerate(sources):
        _check_float(s, _describe(s, i))
    for t in targets:
        _check_float(t, f"the target {_describe(t)}")
    grads = tape.gradient(targets if len(targets) > 1 else targets[0], sources, output_gradients=output_gradients)
    if not allow_unused:
        for i, (s, g) in enumerate(zip(sources, grads)):
            if g is None:
                raise ValueError(
                    f"the {_describe(s, i)} was not used to compute the target (or is not watched by the "
                    f"tape); set allow_unused=True if this is the desired behaviour"
                )
    return tuple(grads)


class GradStore:
    """The ``.grad`` fields of torch leaves: ``backward`` adds into them, ``zero_`` resets."""

    def __init__(self):
        self.grad = {}

    def backward(self, tape, target, sources, output_gradients=None):
        grads = grad(tape, target, list(sources), output_gradients=output_gradients)
        for s, g in zip(sources, grads):
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


def requires_grad_table(x, y, z):
    """Seed 001 In [2]-[7]: x.requires_grad, (x+y).requires_grad, z after watching, (x+z)."""
    x, y, z = (tf.convert_to_tensor(v) for v in (x, y, z))
    leaves = [x, y, z]
    with tf.GradientTape(persistent=True) as tape:
        table = {"x": requires_grad(tape, x, leaves), "x + y": requires_grad(tape, x + y, leaves)}
        requires_grad_(tape, z)  # z.requires_grad = True
        table["z"] = requires_grad(tape, z, leaves)
        table["x + z"] = requires_grad(tape, x + z, leaves)
    return table


def pow_log_grad(t, u):
    """Seed 001 In [8]: a = sum t^2 + sum log u; grad(a, (t, u)) = (2t, 1/u)."""
    t, u = tf.convert_to_tensor(t), tf.convert_to_tensor(u)
    with tf.GradientTape() as tape:
        requires_grad_(tape, t)
        requires_grad_(tape, u)
        a = tf.reduce_sum(tf.pow(t, 2)) + tf.reduce_sum(tf.math.log(u))
    return a, grad(tape, a, (t, u))


def tuple_outputs_grad(t, u):
    """The outputs (sum t^2, sum t^3 + sum log u) as one tuple: their gradients are summed."""
    t, u = tf.convert_to_tensor(t), tf.convert_to_tensor(u)
    with tf.GradientTape() as tape:
        requires_grad_(tape, t)
        requires_grad_(tape, u)
        outputs = (tf.reduce_sum(tf.pow(t, 2)), tf.reduce_sum(tf.pow(t, 3)) + tf.reduce_sum(tf.math.log(u)))
    return grad(tape, outputs, (t, u))


def pow3_accumulation(x):
    """Seed 001 In [15]: u = sum x^3; ``backward`` twice accumulates 2 * 3x^2; ``zero_`` resets.

    Returns the stored gradient before any backward (None), after one, after
    two, after zeroing, and after one more backward.
    """
    x = tf.Variable(x)
    store = GradStore()
    stages = {"before": store[x]}
    for stage in ("once", "twice"):
        with tf.GradientTape() as tape:
            u = tf.reduce_sum(tf.pow(x, 3))
        store.backward(tape, u, [x])  # adds into the store, as backward() adds into x.grad
        stages[stage] = store[x]
    store.zero_()
    stages["zeroed"] = store[x]
    with tf.GradientTape() as tape:
        u = tf.reduce_sum(tf.pow(x, 3))
    store.backward(tape, u, [x])
    stages["after_zero"] = store[x]
    return stages


def main():
    x = tf.constant([1.0, 2.0, 2.0])
    l, g = norm_with_grad(x)
    print(l)
    print((g,))
    l, g = norm_with_backward(x)
    print(l)
    print(g)

    table = requires_grad_table(tf.constant([1.0, 2.0]), tf.constant([4.0, 5.0]), tf.constant([7.0, 3.0]))
    for k, v in table.items():
        print(f"({k}).requires_grad", v)
    try:
        with tf.GradientTape() as tape:
            requires_grad_(tape, tf.constant([1, 2, 3]))
    except TypeError as e:
        print("TypeError:", e)

    a, g = pow_log_grad(tf.constant([1.0, 2.0, 4.0]), tf.constant([10.0, 20.0]))
    print(g)
    print(tuple_outputs_grad(tf.constant([1.0, 2.0, 4.0]), tf.constant([10.0, 20.0])))

    stages = pow3_accumulation(tf.constant([-3.0, 2.0, 5.0]))
    for k, v in stages.items():
        print(k, v)


if __name__ == "__main__":
    main()
