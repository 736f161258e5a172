"""PyTorch modules and batch processing (seed 001 §4.3-4.6).

Subclasses of ``torch.nn.Module`` are losses and network components; the latter embed
``Parameter``s, which ``Module.parameters()`` finds. Modules process batches: the first
dimension indexes the samples. Images are N, C, H, W.

The module names and constructors below are torch's own; ``tf_impl.modules`` gives each
the same name and signature and returns the Keras layer that computes the same thing.
Run ``python -m torch_impl.modules``.
"""

import torch
import torch.nn.functional as F
from torch import nn

Linear = nn.Linear
Conv1d = nn.Conv1d
Conv2d = nn.Conv2d
MaxPool2d = nn.MaxPool2d
AvgPool2d = nn.AvgPool2d
ReLU = nn.ReLU
Flatten = nn.Flatten
MSELoss = nn.MSELoss
Sequential = nn.Sequential
ModuleList = nn.ModuleList


def named_parameters(model):
    """``model.named_parameters()``: (name, Parameter) pairs, ``path.weight`` / ``path.bias``."""
    return model.named_parameters()


def parameters(model):
    """``model.parameters()``, as a list."""
    return list(model.parameters())


def mlp(dtype=None):
    """The seed's MLP: 10 inputs, hidden layers of 100 and 50, 2 outputs, ReLU between."""
    return nn.Sequential(
        nn.Linear(10, 100, dtype=dtype), nn.ReLU(),
        nn.Linear(100, 50, dtype=dtype), nn.ReLU(),
        nn.Linear(50, 2, dtype=dtype),
    )


class Net(nn.Module):
    """The seed's CNN on 28x28 images: input (N, 1, 28, 28), output (N, 10)."""

    def __init__(self, dtype=None):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5, dtype=dtype)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5, dtype=dtype)
        self.fc1 = nn.Linear(256, 200, dtype=dtype)
        self.fc2 = nn.Linear(200, 10, dtype=dtype)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=3, stride=3))
        x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2, stride=2))
        x = x.view(-1, 256)  # flattens C, H, W
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class MLPList(nn.Module):
    """The MLP with its layers in an ``nn.ModuleList``, so that ``parameters()`` sees them."""

    def __init__(self, dtype=None):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(10, 100, dtype=dtype), nn.Linear(100, 50, dtype=dtype),
                                  nn.Linear(50, 2, dtype=dtype)])

    def forward(self, x):
        for fc in self.fcs[:-1]:
            x = F.relu(fc(x))
        return self.fcs[-1](x)


class MLPPlainList(nn.Module):
    """The same layers in a plain Python list: "parameters included in lists are not seen"."""

    def __init__(self, dtype=None):
        super().__init__()
        self.fcs = [nn.Linear(10, 100, dtype=dtype), nn.Linear(100, 50, dtype=dtype), nn.Linear(50, 2, dtype=dtype)]

    def forward(self, x):
        for fc in self.fcs[:-1]:
            x = F.relu(fc(x))
        return self.fcs[-1](x)


def main():
    f = nn.Linear(in_features=10, out_features=4)
    for n, p in f.named_parameters():
        print(n, p.size())
    x = torch.empty(523, 10).normal_()
    y = f(x)
    print(y.size())

    f = nn.MSELoss()
    x = torch.tensor([[3.0]])
    y = torch.tensor([[0.0]])
    print(f(x, y))
    x = torch.tensor([[3.0, 0.0, 0.0, 0.0]])
    y = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    print(f(x, y))

    x = torch.empty(1, 1, 20, 30).normal_()
    l = nn.Conv2d(1, 1, kernel_size=3, dilation=4)
    print(l(x).size())

    model = mlp()
    print(model(torch.empty(3, 10).normal_()).size())

    model = Net()
    input1 = torch.empty(12, 1, 28, 28).normal_()
    output = model(input1)
    print(output.size())

    model = Net()
    for k in model.parameters():
        print(k.size())


if __name__ == "__main__":
    main()
