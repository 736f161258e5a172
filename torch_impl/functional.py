"""``torch.nn.functional``'s convolution, pooling, linear, relu and mse_loss (seed 001 §4.3-4.5).

These are torch's own functions, re-exported under their own names so that
``torch_impl.functional`` and ``tf_impl.functional`` mirror each other name for
name: ``from torch_impl import functional as F`` reads like the seed's
``import torch.nn.functional as F``, and the same call replays against the
TensorFlow port. What the seed says about them:

* ``F.relu(input, inplace=False)``: a ReLU on each value, same size out.
* ``F.conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)``:
  weight (D, C, h, w), input (N, C, H, W), output (N, D, H-h+1, W-w+1) without
  padding, stride or dilation; the kernel visits the signal in increasing index
  order (a cross-correlation), e.g. ``(1,2,3,4) (+) (3,2) = (7,12,17)``.
* a kernel of size k with dilation d acts like one of size 1+(k-1)d.
* ``F.max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,
  ceil_mode=False, return_indices=False)``: the stride defaults to the kernel
  size; without padding the output is (N, C, H/h, W/w), rounded down.
* ``nn.MSELoss`` / ``F.mse_loss``: the sum of squared differences divided by
  the number of components.

Run ``python -m torch_impl.functional`` to print the seed's examples.
"""

import torch
from torch.nn.functional import (
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    linear,
    max_pool1d,
    max_pool2d,
    mse_loss,
    relu,
)

__all__ = [
    "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "linear", "relu", "mse_loss",
]


def main():
    x = torch.tensor([0.8008, -0.2586, 0.5019, -0.2002, -0.7416])
    print(relu(x))  # In [22]
    print(mse_loss(torch.tensor([[3.0]]), torch.tensor([[0.0]])))  # In [25]
    print(mse_loss(torch.tensor([[3.0, 0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.0, 0.0]])))  # In [26]
    print(conv1d(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]), torch.tensor([[[3.0, 2.0]]])))  # (1,2,3,4) (+) (3,2)
    weight = torch.empty(5, 4, 2, 3).normal_()
    bias = torch.empty(5).normal_()
    input1 = torch.empty(117, 4, 10, 13).normal_()
    print(conv2d(input1, weight, bias).size())  # In [27]
    x = torch.empty(1, 1, 20, 30).normal_()
    print(conv2d(x, torch.empty(1, 1, 3, 3).normal_(), torch.empty(1).normal_(), dilation=4).size())  # In [28]
    x = torch.tensor([[[[1.0, 1.0, 0.0, 2.0, 1.0, 1.0], [2.0, 2.0, 2.0, 0.0, 2.0, 1.0]],
                       [[1.0, 1.0, 0.0, 0.0, 2.0, 1.0], [0.0, 2.0, 0.0, 2.0, 1.0, 0.0]]]])
    print(x)  # In [29]
    print(max_pool2d(x, (1, 2)))  # In [30]


if __name__ == "__main__":
    main()
