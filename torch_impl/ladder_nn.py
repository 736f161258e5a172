"""The two-layer network with ``torch.nn`` (seed 003, "PyTorch: nn").

``Sequential(Linear, ReLU, Linear)``, ``MSELoss(reduction="sum")`` and the
manual update ``param -= learning_rate * param.grad``. Parameters travel as
``state_dict`` names and arrays, so a case can start both frameworks from the
same weights. Run ``python -m torch_impl.ladder_nn``.
"""

import numpy as np
import torch

from .ladder_numpy import D_in, D_out, H, tutorial_data, two_layer_params

dtype = torch.float


def build_model(params=None, dtype=dtype):
    """Sequential(Linear(D_in, H), ReLU(), Linear(H, D_out)); weights from ``params`` (state_dict names) if given."""
    model = torch.nn.Sequential(
        torch.nn.Linear(D_in, H),
        torch.nn.ReLU(),
        torch.nn.Linear(H, D_out),
    ).to(dtype)
    if params is not None:
        model.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=dtype) for k, v in params.items()})
    return model


# Mean Squared Error, summed over every element (not averaged)
loss_fn = torch.nn.MSELoss(reduction="sum")


def named_parameters(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def step(model, x, y, learning_rate=1e-4):
    """One pass of the loop: the loss, every parameter's gradient, and the parameters after the update."""
    y_pred = model(x)
    loss = loss_fn(y_pred, y)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return {"loss": loss.detach(), "grad": grads, "params": named_parameters(model)}


def train(model, x, y, learning_rate=1e-4, steps=500, log=None):
    """The tutorial's loop (updates ``model`` in place); ``log(t, loss)`` at t % 100 == 99."""
    losses = torch.empty(steps, dtype=x.dtype)
    for t in range(steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        losses[t] = loss.detach()
        if log is not None and t % 100 == 99:
            log(t, loss.item())

        # Zero the gradients before running the backward pass
        model.zero_grad()

        loss.backward()

        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    return {"losses": losses, "params": named_parameters(model)}


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    # nn.Linear's own initialisation, drawn in NumPy so the TF module starts from the same weights
    model = build_model(two_layer_params(rng))
    train(model, torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype), log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
