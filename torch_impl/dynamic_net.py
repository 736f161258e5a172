"""Control flow + weight sharing: DynamicNet (seed 003, "Control Flow + Weight Sharing").

Each forward pass applies the one middle layer a random number of times, 0 to 3,
with ordinary Python control flow; the same Module is reused, so its weights are
shared and its gradient is the sum over its uses. The random draw comes from
``self.rng`` (the tutorial uses the ``random`` module), or is given as ``depth``,
so another implementation can make the same choices. Trained with SGD and
momentum, as in the tutorial. Run ``python -m torch_impl.dynamic_net``.
"""

import random

import numpy as np
import torch

from .ladder_nn import loss_fn, named_parameters
from .ladder_numpy import D_in, D_out, H, dynamic_params, tutorial_data

dtype = torch.float
MAX_DEPTH = 3


class DynamicNet(torch.nn.Module):
    def __init__(self, D_in, H, D_out, rng=random):
        """Three nn.Linear instances; ``rng`` (with ``randint``) chooses how often the middle one runs."""
        super().__init__()
        self.input_linear = torch.nn.Linear(D_in, H)
        self.middle_linear = torch.nn.Linear(H, H)
        self.output_linear = torch.nn.Linear(H, D_out)
        self.rng = rng

    def forward(self, x, depth=None):
        """input_linear + ReLU, then middle_linear + ReLU ``depth`` times (drawn from 0..3 if None), then output_linear.

        The graph is built anew on every pass, so a Python loop is all control flow needs,
        and reusing middle_linear shares its weights across the iterations.
        """
        if depth is None:
            depth = self.rng.randint(0, MAX_DEPTH)
        h_relu = self.input_linear(x).clamp(min=0)
        for _ in range(depth):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        y_pred = self.output_linear(h_relu)
        return y_pred


def build_model(params=None, dtype=dtype, rng=random):
    """DynamicNet(D_in, H, D_out); weights from ``params`` (state_dict names) if given."""
    model = DynamicNet(D_in, H, D_out, rng=rng).to(dtype)
    if params is not None:
        model.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=dtype) for k, v in params.items()})
    return model


def make_optimizer(model, learning_rate=1e-4, momentum=0.9):
    """The tutorial's optimizer: SGD with momentum."""
    return torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)


def step(model, x, y, optimizer, depth=None):
    """One pass of the loop: the loss, the gradients and the parameters after ``optimizer.step()``.

    With ``depth`` 0 the middle layer is not used: it has no gradient (``zero_grad``
    sets it to None) and SGD leaves it, and its momentum buffer, untouched.
    """
    y_pred = model(x, depth)
    loss = loss_fn(y_pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {"loss": loss.detach(), "grad": grads, "params": named_parameters(model)}


def train(model, x, y, optimizer, steps=500, log=None, depths=None):
    """The tutorial's loop; ``depths[t]`` fixes step t's depth (else the model draws it)."""
    losses = torch.empty(steps, dtype=x.dtype)
    for t in range(steps):
        # Forward pass: compute predicted y by passing x to the model
        y_pred = model(x, None if depths is None else int(depths[t]))

        # Compute and print loss
        loss = loss_fn(y_pred, y)
        losses[t] = loss.detach()
        if log is not None and t % 100 == 99:
            log(t, loss.item())

        # Zero gradients, perform a backward pass, and update the weights.
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"losses": losses, "params": named_parameters(model)}


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    # one seeded source for the depths: the TF module draws the same sequence
    model = build_model(dynamic_params(rng), rng=random.Random(0))
    optimizer = make_optimizer(model)
    train(model, torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype), optimizer,
          log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
