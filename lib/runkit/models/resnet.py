"""ResNet-18 for small images: the CIFAR stem (one 3x3 conv, stride 1, no max-pool) keeps 32x32 inputs from
being shrunk to 8x8 before the first block, as the ImageNet stem would.

Written here rather than taken from torchvision: its BasicBlock refuses a width other than 64, and a `width`
knob is what makes a small, fast ResNet for quick configs (`resnet18.width = 16`).
"""
from torch import nn

from runkit.training.registry import MODELS


def conv_bn(in_channels, out_channels, stride):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3x3 convs plus the input; a strided 1x1 conv matches the shortcut when the shape changes."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.residual = nn.Sequential(conv_bn(in_channels, out_channels, stride), nn.ReLU(inplace=True),
                                      conv_bn(out_channels, out_channels, 1))
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        return (self.residual(x) + self.shortcut(x)).relu()


@MODELS.register("resnet18")
class ResNet18(nn.Module):
    """Four stages of two blocks with `width`, 2, 4 and 8 times `width` channels; any (C, H, W) with
    H, W >= 8 (three stride-2 stages take 8 down to 1), global average pool, linear logits."""

    def __init__(self, input_shape, n_classes, width=64):
        super().__init__()
        channels = [width, 2 * width, 4 * width, 8 * width]
        layers = [conv_bn(input_shape[0], width, 1), nn.ReLU(inplace=True)]
        in_channels = width
        for stage, out_channels in enumerate(channels):
            stride = 1 if stage == 0 else 2
            layers += [BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels, 1)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(in_channels, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
