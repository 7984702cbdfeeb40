"""The small CNN of the original template: conv-ReLU-pool blocks, then a linear head on pooled features."""
from torch import nn

from runkit.training.registry import MODELS


@MODELS.register("cnn")
class CNN(nn.Module):
    def __init__(self, input_shape, n_classes, n_filters=32, n_blocks=2, dropout=0.0):
        super().__init__()
        channels, layers = input_shape[0], []
        for block in range(n_blocks):
            width = n_filters * 2 ** block
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        # Global average pooling keeps the head the same size for 8x8 digits and 32x32 CIFAR images.
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, n_classes))

    def forward(self, x):
        return self.head(self.features(x))
