"""A user's own model, importable by path (`tiny_models:tiny_cnn`): not part of vitalstudy, so the
tests that use it show a model comes in through the config alone."""

from torch import nn


def tiny_cnn(width: int = 8, num_classes: int = 1000) -> nn.Module:
    """Three conv stages (strides 2, 4, 8) with BatchNorm and ReLU, global pooling, a linear head."""
    def stage(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU()),
        stage(width, width * 2), stage(width * 2, width * 4), stage(width * 4, width * 4),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * 4, num_classes),
    )
