"""A new autograd function, MyReLU (seed 003, "Defining new autograd functions").

MyReLU's backward zeroes the gradient where ``input < 0`` only, so at an input
of exactly 0 the gradient passes (built-in ``relu`` gives 0 there): the port
keeps that rule. ``MyReLULayer`` wraps it as a module, the twin of the Keras
layer. Run ``python -m torch_impl.my_relu``.
"""

import numpy as np
import torch

from .ladder_numpy import tutorial_data

dtype = torch.float
device = torch.device("cpu")


class MyReLU(torch.autograd.Function):
    """
    We can implement our own custom autograd Functions by subclassing
    torch.autograd.Function and implementing the forward and backward passes
    which operate on Tensors.
    """

    @staticmethod
    def forward(ctx, input):
        """Save the input for backward; return input.clamp(min=0)."""
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        """The gradient passes where input >= 0 (at 0 too) and is zeroed where input < 0."""
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


my_relu = MyReLU.apply


class MyReLULayer(torch.nn.Module):
    """MyReLU as a module, to sit in a Sequential."""

    def forward(self, input):
        return MyReLU.apply(input)


def relu_and_grad(x, grad_output=None):
    """MyReLU(x) and d(sum(grad_output * MyReLU(x)))/dx (grad_output defaults to ones)."""
    x = x.detach().clone().requires_grad_(True)
    out = MyReLU.apply(x)
    out.backward(torch.ones_like(out) if grad_output is None else grad_output)
    return out.detach(), x.grad


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the loop with relu = MyReLU.apply: loss, gradients and the updated weights."""
    relu = MyReLU.apply
    w1 = w1.detach().clone().requires_grad_(True)
    w2 = w2.detach().clone().requires_grad_(True)
    y_pred = relu(x.mm(w1)).mm(w2)
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
        # To apply our Function, we use Function.apply method. We alias this as 'relu'.
        relu = MyReLU.apply

        # Forward pass: compute predicted y using operations; we compute
        # ReLU using our custom autograd operation.
        y_pred = relu(x.mm(w1)).mm(w2)

        # Compute and print loss
        loss = (y_pred - y).pow(2).sum()
        losses[t] = loss.detach()
        if log is not None and t % 100 == 99:
            log(t, loss.item())

        # Use autograd to compute the backward pass.
        loss.backward()

        # Update weights using gradient descent
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
