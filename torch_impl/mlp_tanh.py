"""The tanh MLP of seed 001 §4.2: 10 -> 20 -> 5, MSE loss, written with raw tensors.

    h = tanh(w1 x + b1),  y = tanh(w2 h + b2),  loss = mean((y - target)^2)

``loss.backward()`` fills the ``.grad`` of the four parameters.
Run ``python -m torch_impl.mlp_tanh``.
"""

import torch


def mlp(w1, b1, w2, b2, x):
    """The forward pass: the hidden activations h and the output y."""
    h = torch.tanh(w1 @ x + b1)
    y = torch.tanh(w2 @ h + b2)
    return h, y


def mse(y, target):
    """The mean of the squared differences (``nn.MSELoss``'s default)."""
    return (y - target).pow(2).mean()


def mlp_grads(w1, b1, w2, b2, x, target):
    """loss, y, and the gradients of the loss w.r.t. w1, b1, w2, b2 (from ``loss.backward()``)."""
    w1, b1, w2, b2 = (p.detach().requires_grad_() for p in (w1, b1, w2, b2))
    _, y = mlp(w1, b1, w2, b2, x)
    loss = mse(y, target)
    loss.backward()
    return loss, y, (w1.grad, b1.grad, w2.grad, b2.grad)


def main():
    w1 = torch.rand(20, 10)
    b1 = torch.rand(20)
    w2 = torch.rand(5, 20)
    b2 = torch.rand(5)
    x = torch.rand(10)
    target = torch.rand(5)
    loss, y, grads = mlp_grads(w1, b1, w2, b2, x, target)
    print(loss.detach())
    for name, g in zip(("w1", "b1", "w2", "b2"), grads):
        print(name, tuple(g.shape), g.norm())


if __name__ == "__main__":
    main()
