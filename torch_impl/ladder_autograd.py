"""The two-layer network with autograd (seed 003, "Autograd").

``loss.backward()`` fills ``w1.grad`` and ``w2.grad``; the update runs under
``torch.no_grad()`` and the gradients are zeroed by hand, because ``backward``
accumulates. Run ``python -m torch_impl.ladder_autograd``.
"""

import numpy as np
import torch

from .ladder_numpy import tutorial_data

dtype = torch.float
device = torch.device("cpu")


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the loop from (w1, w2): loss, gradients (from ``.grad``) and the updated weights."""
    w1 = w1.detach().clone().requires_grad_(True)
    w2 = w2.detach().clone().requires_grad_(True)
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        new_w1 = w1 - learning_rate * w1.grad
        new_w2 = w2 - learning_rate * w2.grad
    return {"loss": loss.detach(), "grad_w1": w1.grad, "grad_w2": w2.grad, "w1": new_w1, "w2": new_w2}


def train(x, y, w1, w2, learning_rate=1e-6, steps=500, log=None):
    """The tutorial's loop on copies of w1, w2; ``log(t, loss)`` at t % 100 == 99."""
    w1 = w1.detach().clone().requires_grad_(True)
    w2 = w2.detach().clone().requires_grad_(True)
    losses = torch.empty(steps, dtype=x.dtype)
    for t in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)

        loss = (y_pred - y).pow(2).sum()
        losses[t] = loss.detach()
        if log is not None and t % 100 == 99:
            log(t, loss.item())

        loss.backward()

        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad

            # Manually zero the gradients after updating weights
            w1.grad.zero_()
            w2.grad.zero_()
    return {"losses": losses, "w1": w1.detach(), "w2": w2.detach()}


def main():
    x, y, w1, w2 = (torch.as_tensor(a, dtype=dtype, device=device) for a in tutorial_data(np.random.default_rng(0)))
    train(x, y, w1, w2, log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
