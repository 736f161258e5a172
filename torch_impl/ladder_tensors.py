"""The two-layer network on torch tensors with the hand-written backward pass (seed 003, "Tensors").

Like the NumPy version, but on tensors: no autograd, the gradients are the
tutorial's matrix derivation. Run ``python -m torch_impl.ladder_tensors``.
"""

import numpy as np
import torch

from .ladder_numpy import tutorial_data

dtype = torch.float
device = torch.device("cpu")


def forward(x, w1, w2):
    h = x.mm(w1)  # .mm is matrix multiplication
    h_relu = h.clamp(min=0)
    y_pred = h_relu.mm(w2)
    return h, h_relu, y_pred


def backward(x, y, w2, h, h_relu, y_pred):
    """Backprop to compute gradients of w1 and w2 with respect to loss."""
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.t().mm(grad_y_pred)
    grad_h_relu = grad_y_pred.mm(w2.t())
    grad_h = grad_h_relu.clone()
    grad_h[h < 0] = 0
    grad_w1 = x.t().mm(grad_h)
    return grad_w1, grad_w2


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the loop from (w1, w2): loss, gradients and the updated weights (new tensors)."""
    h, h_relu, y_pred = forward(x, w1, w2)
    loss = (y_pred - y).pow(2).sum()
    grad_w1, grad_w2 = backward(x, y, w2, h, h_relu, y_pred)
    return {"loss": loss, "grad_w1": grad_w1, "grad_w2": grad_w2,
            "w1": w1 - learning_rate * grad_w1, "w2": w2 - learning_rate * grad_w2}


def train(x, y, w1, w2, learning_rate=1e-6, steps=500, log=None):
    """The tutorial's loop on copies of w1, w2; ``log(t, loss)`` at t % 100 == 99.

    Returns the loss at every step (a tensor) and the final weights.
    """
    w1, w2 = w1.clone(), w2.clone()
    losses = torch.empty(steps, dtype=x.dtype)
    for t in range(steps):
        # Forward pass: compute predicted y
        h, h_relu, y_pred = forward(x, w1, w2)

        # Compute and print loss
        loss = (y_pred - y).pow(2).sum()
        losses[t] = loss
        if log is not None and t % 100 == 99:
            log(t, loss.item())

        grad_w1, grad_w2 = backward(x, y, w2, h, h_relu, y_pred)

        # Update weights using gradient descent
        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
    return {"losses": losses, "w1": w1, "w2": w2}


def main():
    # N is batch size; D_in is input dimension; H is hidden dimension; D_out is output dimension.
    # Random data and weights from a seeded NumPy generator (the TF module draws the same ones)
    x, y, w1, w2 = (torch.as_tensor(a, dtype=dtype, device=device) for a in tutorial_data(np.random.default_rng(0)))
    train(x, y, w1, w2, log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
