"""In-place operations and autograd (seed 001 §4.2).

"In-place operations may corrupt values required to compute the gradient and
this is tracked down by autograd. They are also prohibited on so-called leaf
tensors." Each function below is one situation: the refused ones raise
``RuntimeError``; the allowed ones return what autograd computes. Each works
on a copy (``detach().clone()``): the caller's tensor is never modified.
Run ``python -m torch_impl.inplace``.
"""

import torch


def update_leaf(x, delta):
    """``x += delta`` on a leaf that requires grad: refused (``RuntimeError``)."""
    x = x.detach().clone().requires_grad_()
    x += delta  # autograd would lose the leaf's value, which is what gradients are taken w.r.t.
    return x


def update_leaf_no_grad(x, delta):
    """The same update under ``no_grad`` (how parameters are updated): allowed, and not recorded.

    Returns x, and whether x is still a leaf (``grad_fn is None``) that requires grad.
    """
    x = x.detach().clone().requires_grad_()
    with torch.no_grad():
        x += delta
    return x, x.grad_fn is None and x.requires_grad


def modify_saved(x):
    """h = tanh(x) keeps h for its backward; ``h *= 2`` in place, then backward: refused.

    Every tensor counts its in-place modifications (its version); backward
    checks that the versions of the saved tensors did not change.
    """
    x = x.detach().clone().requires_grad_()
    h = torch.tanh(x)
    h *= 2
    h.sum().backward()  # raises: h, saved by tanh, is at version 1, expected 0
    return x.grad


def modify_between_reads(x, delta):
    """y = x * x saves x; then ``x += delta`` under ``no_grad``; z = y * x; backward: refused."""
    x = x.detach().clone().requires_grad_()
    y = x * x
    with torch.no_grad():
        x += delta
    z = y * x
    z.sum().backward()  # raises: x, saved by the first product, was modified
    return x.grad


def modify_unsaved(x):
    """y = 2x saves nothing of y, so ``y += 1`` in place is fine: l = sum y^2, dl/dx = 4 (2x + 1)."""
    x = x.detach().clone().requires_grad_()
    y = x * 2
    y += 1
    l = y.pow(2).sum()
    l.backward()
    return l, x.grad


def index_assign(x, value):
    """y = 2x; ``y[0] = value`` in place; l = sum y^2: the overwritten entry gets no gradient.

    dl/dx = 8x except at index 0, where it is 0.
    """
    x = x.detach().clone().requires_grad_()
    y = x * 2
    y[0] = value
    l = y.pow(2).sum()
    l.backward()
    return l, x.grad


def main():
    x = torch.tensor([1.0, 2.0, 3.0])
    for name, f in (("update_leaf", lambda: update_leaf(x, 1.0)), ("modify_saved", lambda: modify_saved(x)),
                    ("modify_between_reads", lambda: modify_between_reads(x, 1.0))):
        try:
            f()
        except RuntimeError as e:
            print(f"{name}: RuntimeError: {str(e).splitlines()[0][:110]}")
    print("update_leaf_no_grad:", update_leaf_no_grad(x, 1.0))
    print("modify_unsaved:", modify_unsaved(x)[1])
    print("index_assign:", index_assign(x, 5.0)[1])


if __name__ == "__main__":
    main()
