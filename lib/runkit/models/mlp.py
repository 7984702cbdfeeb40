"""A small multi-layer perceptron: flatten, hidden layers with ReLU, a linear head."""
import math

from torch import nn

from runkit.training.registry import MODELS


@MODELS.register("mlp")
class MLP(nn.Module):
    def __init__(self, input_shape, n_classes, hidden=(64,), dropout=0.0):
        super().__init__()
        layers, width = [nn.Flatten()], math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
