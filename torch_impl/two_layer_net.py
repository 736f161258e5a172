"""A custom nn Module, TwoLayerNet (seed 003, "Custom nn Modules"), trained with Adam.

Run ``python -m torch_impl.two_layer_net``.
"""

import numpy as np
import torch

from .ladder_numpy import D_in, D_out, H, tutorial_data, two_layer_params
from .ladder_optim import step, train  # noqa: F401  (the same loop as the optim rung)

dtype = torch.float


class TwoLayerNet(torch.nn.Module):
    def __init__(self, D_in, H, D_out):
        """Two nn.Linear modules, assigned as attributes so they are registered as submodules."""
        super().__init__()
        self.linear1 = torch.nn.Linear(D_in, H)
        self.linear2 = torch.nn.Linear(H, D_out)

    def forward(self, x):
        h_relu = self.linear1(x).clamp(min=0)
        y_pred = self.linear2(h_relu)
        return y_pred


def build_model(params=None, dtype=dtype):
    """TwoLayerNet(D_in, H, D_out); weights from ``params`` (state_dict names: linear1.weight, ...) if given."""
    model = TwoLayerNet(D_in, H, D_out).to(dtype)
    if params is not None:
        model.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=dtype) for k, v in params.items()})
    return model


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    model = build_model(two_layer_params(rng, names=("linear1", "linear2")))
    # Mean Squared Error, summed; Adam as in the tutorial
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    train(model, torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype), optimizer,
          log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
