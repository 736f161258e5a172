"""The two-layer network in NumPy (seed 003, "Numpy"): the float64 oracle of the ladder.

The first half is the tutorial's network as the tutorial writes it: a forward
pass, the hand-derived backward pass, plain gradient descent. The second half
writes the rest of the ladder in NumPy too (``nn.Linear`` layers with biases,
torch's SGD and Adam updates, the dynamic network), so every rung of the
ladder has an independent float64 reference that neither framework computed.

NumPy belongs to neither framework: ``tf_impl.ladder_numpy`` is this module.
Run ``python -m torch_impl.ladder_numpy``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["N", "D_in", "H", "D_out", "tutorial_data", "linear_init", "two_layer_params", "dynamic_params",
           "forward", "backward", "step", "train", "linear", "linear_backward", "relu_backward",
           "sum_squared_error", "two_layer_loss_and_grads", "dynamic_loss_and_grads", "SGD", "Adam", "main"]

# N is batch size; D_in is input dimension
# H is hidden dimension; D_out is output dimension
N, D_in, H, D_out = 64, 1000, 100, 10


# -- the data and initial weights every rung's ``main`` starts from -----------
def tutorial_data(rng):
    """Random input and output data, and the tutorial's randn weights w1 (D_in, H), w2 (H, D_out).

    Drawn from a seeded NumPy generator, so the torch and the TF modules print the same run.
    """
    x = rng.standard_normal((N, D_in))
    y = rng.standard_normal((N, D_out))
    w1 = rng.standard_normal((D_in, H))
    w2 = rng.standard_normal((H, D_out))
    return x, y, w1, w2


def linear_init(rng, fan_in, fan_out):
    """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.

    The weight is (out, in), as nn.Linear stores it.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)


def two_layer_params(rng, names=("0", "2")):
    """Initial parameters of Sequential(Linear(D_in, H), ReLU, Linear(H, D_out)), by state_dict name."""
    params = {}
    for name, (fan_in, fan_out) in zip(names, ((D_in, H), (H, D_out))):
        params[f"{name}.weight"], params[f"{name}.bias"] = linear_init(rng, fan_in, fan_out)
    return params


def dynamic_params(rng):
    """Initial parameters of the tutorial's DynamicNet (input, middle and output Linear layers)."""
    params = {}
    for name, (fan_in, fan_out) in zip(("input_linear", "middle_linear", "output_linear"),
                                       ((D_in, H), (H, H), (H, D_out))):
        params[f"{name}.weight"], params[f"{name}.bias"] = linear_init(rng, fan_in, fan_out)
    return params


# -- the tutorial's network ---------------------------------------------------
def forward(x, w1, w2):
    """Forward pass: h = x w1, h_relu = relu(h), y_pred = h_relu w2."""
    h = x.dot(w1)
    h_relu = np.maximum(h, 0)
    y_pred = h_relu.dot(w2)
    return h, h_relu, y_pred


def backward(x, y, w2, h, h_relu, y_pred):
    """The hand-derived backward pass of the tutorial: gradients of w1 and w2."""
    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h_relu.T.dot(grad_y_pred)
    grad_h_relu = grad_y_pred.dot(w2.T)
    grad_h = grad_h_relu.copy()
    grad_h[h < 0] = 0
    grad_w1 = x.T.dot(grad_h)
    return grad_w1, grad_w2


def step(x, y, w1, w2, learning_rate=1e-6):
    """One pass of the tutorial's loop from (w1, w2); the arguments are left untouched.

    Returns the loss, the gradients and the updated weights.
    """
    h, h_relu, y_pred = forward(x, w1, w2)
    loss = np.square(y_pred - y).sum()
    grad_w1, grad_w2 = backward(x, y, w2, h, h_relu, y_pred)
    return {"loss": loss, "grad_w1": grad_w1, "grad_w2": grad_w2,
            "w1": w1 - learning_rate * grad_w1, "w2": w2 - learning_rate * grad_w2}


def train(x, y, w1, w2, learning_rate=1e-6, steps=500, log=None):
    """The tutorial's loop; ``log(t, loss)`` is called at t % 100 == 99 (``print`` in ``main``).

    Returns the loss at every step and the final weights (the arguments are left untouched).
    """
    w1, w2 = w1.copy(), w2.copy()
    losses = []
    for t in range(steps):
        # Forward pass: compute predicted y
        h, h_relu, y_pred = forward(x, w1, w2)

        # Compute and print loss
        loss = np.square(y_pred - y).sum()
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss)

        # Backprop to compute gradients of w1 and w2 with respect to loss
        grad_w1, grad_w2 = backward(x, y, w2, h, h_relu, y_pred)

        # Update weights
        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
    return {"losses": np.array(losses), "w1": w1, "w2": w2}


# -- the rest of the ladder, in NumPy, for the oracle --------------------------
# Parameters are a dict in torch's layout and order: "0.weight" is (out, in),
# as nn.Linear stores it, so the oracle reads torch's state_dict names directly.
def linear(x, weight, bias):
    """nn.Linear: x W^T + b."""
    return x.dot(weight.T) + bias


def linear_backward(x, weight, grad_out):
    """Gradients of x W^T + b: for the weight, the bias and the input."""
    return grad_out.T.dot(x), grad_out.sum(0), grad_out.dot(weight)


def relu_backward(h, grad_out, pass_at_zero=False):
    """ReLU's backward: zero where h < 0 (MyReLU, which passes at h == 0) or h <= 0 (torch's relu)."""
    blocked = h < 0 if pass_at_zero else h <= 0
    return np.where(blocked, 0.0, grad_out)


def sum_squared_error(y_pred, y):
    """MSELoss(reduction="sum") and its gradient with respect to y_pred."""
    r = y_pred - y
    return np.square(r).sum(), 2.0 * r


def two_layer_loss_and_grads(params, x, y, names=("0", "2")):
    """Sequential(Linear, ReLU, Linear) (or TwoLayerNet with names=("linear1", "linear2")):
    the sum-squared loss and the gradient of every parameter."""
    a, b = names
    h = linear(x, params[f"{a}.weight"], params[f"{a}.bias"])
    h_relu = np.maximum(h, 0)
    y_pred = linear(h_relu, params[f"{b}.weight"], params[f"{b}.bias"])
    loss, grad_y_pred = sum_squared_error(y_pred, y)
    gw2, gb2, grad_h_relu = linear_backward(h_relu, params[f"{b}.weight"], grad_y_pred)
    gw1, gb1, _ = linear_backward(x, params[f"{a}.weight"], relu_backward(h, grad_h_relu))
    grads = {f"{a}.weight": gw1, f"{a}.bias": gb1, f"{b}.weight": gw2, f"{b}.bias": gb2}
    return loss, grads


def dynamic_loss_and_grads(params, x, y, depth):
    """The tutorial's DynamicNet with the middle layer applied ``depth`` times.

    The middle layer's gradient is the sum over its uses (weight sharing); with
    depth 0 it has none (torch leaves its .grad None, and the optimizers skip it).
    """
    h = [linear(x, params["input_linear.weight"], params["input_linear.bias"])]
    acts = [np.maximum(h[0], 0)]
    for _ in range(depth):
        h.append(linear(acts[-1], params["middle_linear.weight"], params["middle_linear.bias"]))
        acts.append(np.maximum(h[-1], 0))
    y_pred = linear(acts[-1], params["output_linear.weight"], params["output_linear.bias"])
    loss, grad = sum_squared_error(y_pred, y)
    grads = {}
    grads["output_linear.weight"], grads["output_linear.bias"], grad = linear_backward(
        acts[-1], params["output_linear.weight"], grad)
    gw = np.zeros_like(params["middle_linear.weight"])
    gb = np.zeros_like(params["middle_linear.bias"])
    for k in range(depth, 0, -1):
        grad = relu_backward(h[k], grad)
        dw, db, grad = linear_backward(acts[k - 1], params["middle_linear.weight"], grad)
        gw, gb = gw + dw, gb + db  # one shared layer: its uses add up
    if depth:
        grads["middle_linear.weight"], grads["middle_linear.bias"] = gw, gb
    grads["input_linear.weight"], grads["input_linear.bias"], _ = linear_backward(
        x, params["input_linear.weight"], relu_backward(h[0], grad))
    return loss, grads


class SGD:
    """torch.optim.SGD's update (dampening 0): weight decay coupled into the gradient,
    then the momentum buffer (seeded with the first gradient), then Nesterov."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum > 0")
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.buf = {}

    def step(self, params, grads):
        new = {}
        for k, p in params.items():
            if k not in grads:  # no gradient: torch leaves the parameter and its buffer alone
                new[k] = p
                continue
            g = grads[k] + self.weight_decay * p if self.weight_decay else grads[k]
            if self.momentum:
                self.buf[k] = g.copy() if k not in self.buf else self.momentum * self.buf[k] + g
                g = g + self.momentum * self.buf[k] if self.nesterov else self.buf[k]
            new[k] = p - self.lr * g
        return new


class Adam:
    """torch.optim.Adam's update: eps is added to sqrt(v) after bias correction."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr, (self.beta1, self.beta2), self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params, grads):
        self.t += 1
        bias_correction1 = 1 - self.beta1**self.t
        bias_correction2 = 1 - self.beta2**self.t
        new = {}
        for k, p in params.items():
            g = grads[k] + self.weight_decay * p if self.weight_decay else grads[k]
            self.m[k] = self.beta1 * self.m.get(k, 0.0) + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v.get(k, 0.0) + (1 - self.beta2) * g * g
            denom = np.sqrt(self.v[k]) / math.sqrt(bias_correction2) + self.eps
            new[k] = p - (self.lr / bias_correction1) * self.m[k] / denom
        return new


def main():
    # Create random input and output data; randomly initialize weights
    x, y, w1, w2 = tutorial_data(np.random.default_rng(0))
    train(x, y, w1, w2, log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
