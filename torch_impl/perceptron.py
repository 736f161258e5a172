"""Seed 004: Q = 3a^3 - b^2 with an explicit ``gradient=``, and a tanh perceptron by hand and by autograd.

Q is a vector, so ``Q.backward`` needs the gradient of the final result w.r.t.
Q (dQ/dQ = 1 for each entry); ``retain_grad()`` keeps the gradients of the
intermediate values v and y, which autograd otherwise frees.
Run ``python -m torch_impl.perceptron``.
"""

import numpy as np
import torch


def q_backward(a, b, external_grad):
    """Q = 3a^3 - b^2; ``Q.backward(gradient=external_grad)``: Q, a.grad = 9a^2 g, b.grad = -2b g."""
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    Q = 3 * a**3 - b**2
    Q.backward(gradient=external_grad)
    return Q, a.grad, b.grad


def numpy_forward(X, w):
    """The seed's NumPy cell: the wrong data point X[1] through the perceptron, y = tanh(v)."""
    v = np.sum(X[1, :] * w)
    y = (np.exp(v) - np.exp(-v)) / (np.exp(v) + np.exp(-v))
    return y


def perceptron(x, w):
    """v = x . w, y = tanh(v) written with exp, e = (-1 - y)^2 / 2; ``e.backward()``.

    Returns y, e and the gradients of e w.r.t. y, v (kept by ``retain_grad``), w and x.
    """
    w = w.detach().requires_grad_()
    x = x.detach().requires_grad_()
    v = torch.dot(x, w)
    v.retain_grad()
    y = (torch.exp(v) - torch.exp(-v)) / (torch.exp(v) + torch.exp(-v))
    y.retain_grad()
    e = 0.5 * (-1.0 - y) ** 2
    e.backward()
    return y, e, y.grad, v.grad, w.grad, x.grad


def by_hand(x, w):
    """The seed's hand-derived gradients: de/dy = (-1 - y)(-1), de/dv = de/dy (1 - tanh(v)^2), de/dw = de/dv x."""
    v = torch.dot(x, w)
    y = torch.tanh(v)
    gy = (-1 - y) * (-1)
    gv = gy * (1 - torch.tanh(v) ** 2)
    gw = gv * x  # the seed writes [gv * (1.), gv * (1.)] for x = (1, 1)
    return gy, gv, gw


def main():
    a = torch.tensor([2.0, 3.0], requires_grad=True)
    b = torch.tensor([6.0, 4.0], requires_grad=True)
    print(a)
    print(b)
    Q, ga, gb = q_backward(a, b, external_grad=torch.tensor([1.0, 1.0]))
    print(Q.detach())
    print(ga)
    print(9 * a.detach() ** 2)
    print(gb)
    print(-2 * b.detach())

    X = np.array([[0, 1], [1, 1], [0, -1], [1, -1]])
    print(numpy_forward(X, np.asarray([1.0, -0.5])))
    print("wanted it to be negative and a -1")

    w = torch.tensor([1.0, -0.5])
    x = torch.tensor([1.0, 1.0])
    y, e, gy, gv, gw, _ = perceptron(x, w)
    print(y.detach())
    print(e.detach())
    print("y grad")
    print(gy)
    print("v grad")
    print(gv)
    print("w grad")
    print(gw)
    hy, hv, hw = by_hand(x, w)
    print("y grad")
    print(hy)
    print("v grad")
    print(hv)
    print("w grad")
    print(hw)


if __name__ == "__main__":
    main()
