"""The two-layer network trained by ``torch.optim`` (seed 003, "PyTorch: optim").

The tutorial uses Adam; SGD with momentum, Nesterov momentum and weight decay
are here too, because their Keras counterparts differ from torch's in ways a
port must know (see tf_impl.ladder_optim). Optimizer state travels as a plain
dict of arrays by parameter name (``get_state`` / ``set_state``), so a case can
start both frameworks from the same step. Run ``python -m torch_impl.ladder_optim``.
"""

import numpy as np
import torch

from .ladder_nn import build_model, loss_fn, named_parameters
from .ladder_numpy import tutorial_data, two_layer_params

dtype = torch.float

#: torch's hyperparameter names and defaults, per optimizer kind
DEFAULTS = {
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "sgd": {"lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
}


def make_optimizer(model, kind="adam", **hyper):
    """torch.optim.Adam or torch.optim.SGD over ``model``'s parameters."""
    if kind not in DEFAULTS:
        raise ValueError(f"optimizer kind must be one of {sorted(DEFAULTS)}, not {kind!r}")
    unknown = sorted(set(hyper) - set(DEFAULTS[kind]))
    if unknown:
        raise TypeError(f"{kind}: unknown hyperparameters {unknown}; known: {sorted(DEFAULTS[kind])}")
    cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    return cls(model.parameters(), **{**DEFAULTS[kind], **hyper})


def get_state(optimizer, model):
    """The optimizer's state as arrays by parameter name (Adam: step, exp_avg, exp_avg_sq; SGD: momentum_buffer)."""
    state = {}
    for name, p in model.named_parameters():
        for key, value in optimizer.state.get(p, {}).items():
            if key == "step":
                state["step"] = int(value)
            else:
                state.setdefault(key, {})[name] = value.detach().cpu().numpy().copy()
    return state


def set_state(optimizer, model, state):
    """Load ``get_state``'s format: every parameter's buffers, and Adam's step count."""
    for name, p in model.named_parameters():
        entry = {key: torch.as_tensor(np.asarray(arrays[name]), dtype=p.dtype).clone()
                 for key, arrays in state.items() if key != "step"}
        if isinstance(optimizer, torch.optim.Adam):
            if set(entry) != {"exp_avg", "exp_avg_sq"} or "step" not in state:
                raise KeyError(f"Adam state needs step, exp_avg and exp_avg_sq; got {sorted(state)}")
            entry["step"] = torch.tensor(float(state["step"]))
        elif set(entry) != {"momentum_buffer"}:
            raise KeyError(f"SGD state needs momentum_buffer; got {sorted(state)}")
        optimizer.state[p] = entry


def step(model, x, y, optimizer):
    """One pass of the loop: the loss, every parameter's gradient, and the parameters after ``optimizer.step()``."""
    y_pred = model(x)
    loss = loss_fn(y_pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return {"loss": loss.detach(), "grad": grads, "params": named_parameters(model)}


def train(model, x, y, optimizer, steps=500, log=None):
    """The tutorial's loop (updates ``model`` in place); ``log(t, loss)`` at t % 100 == 99."""
    losses = torch.empty(steps, dtype=x.dtype)
    for t in range(steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        losses[t] = loss.detach()
        if log is not None and t % 100 == 99:
            log(t, loss.item())

        optimizer.zero_grad()

        loss.backward()

        optimizer.step()
    return {"losses": losses, "params": named_parameters(model)}


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    model = build_model(two_layer_params(rng))
    learning_rate = 1e-4
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train(model, torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype), optimizer,
          log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
