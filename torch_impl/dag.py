"""The w1/w2 DAG of seed 000 §2 and seed 001 §4.1-4.2, with weight sharing.

    x1 = phi1(x0; w1) = w1 x0
    x2 = phi2(x0, x1; w2) = x0 + w2 x1
    x3 = phi3(x1, x2; w1) = w1 (x1 + x2)
    q = ||x3||

w1 parametrizes both phi1 and phi3 (weight sharing), so its gradient is the sum
of the two contributions. Run ``python -m torch_impl.dag``.
"""

import torch


def dag(w1, w2, x, w3=None):
    """The forward pass: x1, x2, x3 and q. phi3 shares w1 unless a separate ``w3`` is given."""
    w3 = w1 if w3 is None else w3
    x0 = x
    x1 = w1 @ x0
    x2 = x0 + w2 @ x1
    x3 = w3 @ (x1 + x2)
    q = x3.norm()
    return x1, x2, x3, q


def dag_backward(w1, w2, x):
    """``q.backward()`` with x3 kept (``retain_grad``): q, x3, x3.grad, w1.grad, w2.grad, x.grad.

    Seed 000 made x3 a leaf by wrapping it in a ``Variable``; today's API keeps
    the gradient of an intermediate with ``retain_grad()``.
    """
    w1, w2, x = (v.detach().requires_grad_() for v in (w1, w2, x))
    _, _, x3, q = dag(w1, w2, x)
    x3.retain_grad()
    q.backward()
    return q, x3, x3.grad, w1.grad, w2.grad, x.grad


def dag_grad(w1, w2, x):
    """Seed 001's ``tf.gradients(q, [w1, w2])``, in torch: ``torch.autograd.grad`` (plus x)."""
    w1, w2, x = (v.detach().requires_grad_() for v in (w1, w2, x))
    _, _, _, q = dag(w1, w2, x)
    gw1, gw2, gx = torch.autograd.grad(q, (w1, w2, x))
    return q, gw1, gw2, gx


def main():
    w1 = torch.empty(5, 5).normal_()
    w2 = torch.empty(5, 5).normal_()
    x = torch.empty(5).normal_()
    q, x3, gx3, gw1, gw2, gx = dag_backward(w1, w2, x)
    print(q.detach())
    print(x3.detach())
    print(gx3)  # = x3 / q
    _, _gw1, _gw2, _ = dag_grad(w1, w2, x)
    print(_gw1)
    print(_gw2)


if __name__ == "__main__":
    main()
