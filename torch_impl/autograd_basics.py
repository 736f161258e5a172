"""Autograd basics (seed 000 §2, seed 001 §4.2).

``torch.autograd.grad`` returns fresh gradients; ``Tensor.backward`` accumulates
them into the ``.grad`` field of the leaves. A result requires grad iff one of
its operands does, and only floating point tensors can require grad.
Run ``python -m torch_impl.autograd_basics``.
"""

import torch


def requires_grad_(x):
    """``x.requires_grad_()``; an integer x raises (only floats can have gradients)."""
    return x.requires_grad_()


def requires_grad(t):
    """``t.requires_grad``: set on leaves by hand, propagated to results by every operation."""
    return t.requires_grad


def grad(target, sources, output_gradients=None, allow_unused=False):
    """``torch.autograd.grad``: always a tuple, even for a single source.

    A target given as a tuple has the sum of its elements' gradients.
    """
    return torch.autograd.grad(target, sources, grad_outputs=output_gradients, allow_unused=allow_unused)


def norm_with_grad(x):
    """l = ||x|| and dl/dx through ``torch.autograd.grad``."""
    x = x.detach().requires_grad_()
    l = x.norm()
    (g,) = torch.autograd.grad(l, x)
    return l, g


def norm_with_backward(x):
    """l = ||x|| and dl/dx through ``l.backward()``, read from ``x.grad``."""
    x = x.detach().requires_grad_()
    l = x.norm()
    l.backward()
    return l, x.grad


def requires_grad_table(x, y, z):
    """Seed 001 In [2]-[7]: x.requires_grad, (x+y).requires_grad, z after setting it, (x+z)."""
    x, y, z = (v.detach() for v in (x, y, z))
    table = {"x": requires_grad(x), "x + y": requires_grad(x + y)}
    z.requires_grad = True
    table["z"] = requires_grad(z)
    table["x + z"] = requires_grad(x + z)
    return table


def pow_log_grad(t, u):
    """Seed 001 In [8]: a = sum t^2 + sum log u; grad(a, (t, u)) = (2t, 1/u)."""
    t = requires_grad_(t.detach())
    u = requires_grad_(u.detach())
    a = t.pow(2).sum() + u.log().sum()
    return a, grad(a, (t, u))


def tuple_outputs_grad(t, u):
    """The outputs (sum t^2, sum t^3 + sum log u) as one tuple: their gradients are summed."""
    t = requires_grad_(t.detach())
    u = requires_grad_(u.detach())
    outputs = (t.pow(2).sum(), t.pow(3).sum() + u.log().sum())
    return grad(outputs, (t, u))


def pow3_accumulation(x):
    """Seed 001 In [15]: u = sum x^3; ``backward`` twice accumulates 2 * 3x^2; ``zero_`` resets.

    Returns x.grad before any backward (None), after one, after two, after
    zeroing, and after one more backward.
    """
    x = requires_grad_(x.detach())
    stages = {"before": x.grad}
    for stage in ("once", "twice"):
        u = x.pow(3).sum()
        u.backward()  # adds into x.grad
        stages[stage] = x.grad.clone()
    x.grad.zero_()
    stages["zeroed"] = x.grad.clone()
    u = x.pow(3).sum()
    u.backward()
    stages["after_zero"] = x.grad.clone()
    return stages


def main():
    x = torch.tensor([1.0, 2.0, 2.0])
    l, g = norm_with_grad(x)
    print(l.detach())
    print((g,))
    l, g = norm_with_backward(x)
    print(l.detach())
    print(g)

    table = requires_grad_table(torch.tensor([1.0, 2.0]), torch.tensor([4.0, 5.0]), torch.tensor([7.0, 3.0]))
    for k, v in table.items():
        print(f"({k}).requires_grad", v)
    try:
        requires_grad_(torch.tensor([1, 2, 3]))
    except RuntimeError as e:
        print("RuntimeError:", e)

    a, g = pow_log_grad(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([10.0, 20.0]))
    print(g)
    print(tuple_outputs_grad(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([10.0, 20.0])))

    stages = pow3_accumulation(torch.tensor([-3.0, 2.0, 5.0]))
    for k, v in stages.items():
        print(k, v)


if __name__ == "__main__":
    main()
