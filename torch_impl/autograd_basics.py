"""Autograd basics (seed 000 §2, seed 001 §4.2).

``torch.autograd.grad`` returns fresh gradients; ``Tensor.backward`` accumulates
them into the ``.grad`` field of the leaves. Run ``python -m torch_impl.autograd_basics``.
"""

import torch


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


def main():
    x = torch.tensor([1.0, 2.0, 2.0])
    l, g = norm_with_grad(x)
    print(l.detach())
    print((g,))
    l, g = norm_with_backward(x)
    print(l.detach())
    print(g)


if __name__ == "__main__":
    main()
