"""Gradient descent on l = (a-1)^2 + (b+1)^2 + (a-b)^2 (seed 001 §4.2, In [20]/[21]).

The update runs under ``torch.no_grad()``: in place on leaves, and not recorded.
With ``a.detach()`` in the last term, l's gradient w.r.t. a ignores that term.
Run ``python -m torch_impl.gradient_descent``.
"""

import torch


def loss(a, b, detach=False):
    """l; with ``detach``, (a-b)^2 does not propagate to a."""
    a_ = a.detach() if detach else a
    return (a - 1) ** 2 + (b + 1) ** 2 + (a_ - b) ** 2


def descend(a, b, eta, steps=100, detach=False):
    """``steps`` updates a -= eta * dl/da, b -= eta * dl/db; returns a, b and the path of (a, b)."""
    a = a.detach().clone().requires_grad_()
    b = b.detach().clone().requires_grad_()
    path = []
    for k in range(steps):
        l = loss(a, b, detach)
        ga, gb = torch.autograd.grad(l, (a, b))
        with torch.no_grad():  # the update is not part of any graph
            a -= eta * ga
            b -= eta * gb
        path.append(torch.stack([a.detach(), b.detach()]))
    return a, b, torch.stack(path)


def descend_no_grad(a, b, eta=1e-3, steps=100):
    """Seed 001 In [21]: from (0.5, -0.5) with eta = 1e-3, 100 steps: (0.4246, -0.4246)."""
    return descend(a, b, eta, steps, detach=False)


def descend_detach(a, b, eta=1e-4, steps=100):
    """Seed 001 In [20]: (a.detach() - b)^2, eta = 1e-4, 100 steps: (0.5099, -0.4901)."""
    return descend(a, b, eta, steps, detach=True)


def main():
    a, b, _ = descend_no_grad(torch.tensor(0.5), torch.tensor(-0.5))
    print(a, b)
    a, b, _ = descend_detach(torch.tensor(0.5), torch.tensor(-0.5))
    print(a, b)


if __name__ == "__main__":
    main()
