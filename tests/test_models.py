"""Models build from (input_shape, n_classes), return logits and train (a backward pass reaches every weight)."""
import gin
import pytest
import torch

import runkit.models  # noqa: F401  registers the models
from runkit.training.registry import MODELS


def test_resnet18_on_cifar_shapes():
    model = MODELS.get("resnet18")((3, 32, 32), 10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000  # ResNet-18's CIFAR size


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32), (4, 12, 20)])
def test_resnet18_any_small_input_trains(input_shape):
    torch.manual_seed(0)
    model = MODELS.get("resnet18")(input_shape, 7, width=8)
    logits = model(torch.randn(3, *input_shape))
    assert logits.shape == (3, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_resnet18_width_binds_in_gin():
    try:
        gin.parse_config("resnet18.width = 4")
        model = MODELS.get("resnet18")((3, 32, 32), 10)
    finally:
        gin.clear_config()
    assert model.classifier.in_features == 32


def test_registered():
    assert "resnet18" in MODELS.names()
