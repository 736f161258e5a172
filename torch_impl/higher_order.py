"""``retain_graph`` and ``create_graph`` (seed 001 §4.2; seed 000 §2).

By default autograd frees the graph when a backward pass has used it;
``retain_graph=True`` keeps it for a second pass. ``create_graph=True`` records
the gradient computation itself, so it can be differentiated again.
Run ``python -m torch_impl.higher_order``.
"""

import torch


def cube(x):
    """x^3, elementwise: derivatives 3x^2, 6x, 6."""
    return x.pow(3)


def tanh(x):
    """tanh, elementwise: with t = tanh x, derivatives 1 - t^2, -2t (1 - t^2), -2 (1 - t^2)(1 - 3t^2)."""
    return torch.tanh(x)


def derivatives(f, x, order=3):
    """[f(x), f'(x), f''(x), ...] for an elementwise f: each one is the gradient of the previous one's sum."""
    x = x.detach().requires_grad_()
    out = [f(x)]
    for _ in range(order):
        (g,) = torch.autograd.grad(out[-1].sum(), x, create_graph=True)  # g is itself differentiable
        out.append(g)
    return [o.detach() for o in out]


def backward_twice(x, retain_graph=True):
    """y = sum x^3; y.backward() twice through one graph: x.grad = 2 * 3x^2.

    Without ``retain_graph`` the second backward raises ``RuntimeError``.
    """
    x = x.detach().requires_grad_()
    y = cube(x).sum()
    y.backward(retain_graph=retain_graph)
    y.backward()
    return x.grad


def main():
    x = torch.tensor([-1.0, 0.5, 2.0])
    for name, f in (("x^3", cube), ("tanh", tanh)):
        d = derivatives(f, x)
        print(name, "f, f', f'', f''':")
        for di in d:
            print(" ", di)
    print(backward_twice(x))
    try:
        backward_twice(x, retain_graph=False)
    except RuntimeError as e:
        print("RuntimeError:", str(e).split(".")[0])


if __name__ == "__main__":
    main()
