"""Video analysis network: a dilated ResNet-18 that gives K visual features per pixel.

`ResNet18` is written by hand with torchvision's parameter names, so an ImageNet state dict
saved by torchvision loads with strict key matching. `FrameNet` is the reference code's
`ResnetDilated` (hangzhaomit/Sound-of-Pixels, models/vision_net.py): ResNet-18 without
avgpool/fc, layer4 dilated (output stride 16), then a 3x3 conv 512 -> K. Its parameter names
match the reference (`features.N.*`, `fc.*`), so the authors' released frame weights load too.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn as nn

from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.efficientnet import LITE0_STAGES, EfficientNetLite0, load_lite0_weights
from pixelplayer.models.weights import load_matching

# torchvision ResNet children, in order; FrameNet.features keeps the first eight as indices 0..7
_TV_CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 convs with an identity (or 1x1 conv) shortcut."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's module names (conv1, bn1, layer1..4, fc).

    `width` is the first stage's channel count (64 = the standard net); every stage scales with
    it (width, 2w, 4w, 8w), so width 16 or 32 gives a light net for CPU training.
    """

    def __init__(self, width: int = 64, num_classes: int = 1000):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.width = width
        self.inplanes = width
        # registration order matters: FrameNet slices list(children())[:-2] as the reference does
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, 2)
        self.layer2 = self._make_layer(width * 2, 2, stride=2)
        self.layer3 = self._make_layer(width * 4, 2, stride=2)
        self.layer4 = self._make_layer(width * 8, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8, num_classes)
        # torchvision's initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, H, W) -> class logits (B, num_classes)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _nostride_dilate(m: nn.Module, dilate: int) -> None:
    """The reference `_nostride_dilate`: trade a stage's stride for dilation.

    A stride-2 conv becomes stride 1 (a 3x3 one keeps dilation dilate//2, as in the reference);
    every other 3x3 conv gets dilation and padding `dilate`, keeping the receptive field.
    """
    if isinstance(m, nn.Conv2d):
        if m.stride == (2, 2):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                m.dilation = (dilate // 2, dilate // 2)
                m.padding = (dilate // 2, dilate // 2)
        elif m.kernel_size == (3, 3):
            m.dilation = (dilate, dilate)
            m.padding = (dilate, dilate)


def load_torchvision_weights(module: nn.Module, path: str | Path) -> None:
    """Load a torchvision-format ResNet-18 state dict into a `ResNet18` or a `FrameNet`.

    fc.* keys are ignored (FrameNet has its own fc; a ResNet18 keeps its current one); anything
    else that does not match is an error (`load_matching`).
    """
    if isinstance(module, FrameNet):
        # torchvision 'layer4.0.conv1.weight' -> FrameNet 'features.7.0.conv1.weight'
        prefix = {name: f"features.{i}" for i, name in enumerate(_TV_CHILDREN)}

        def rename(k: str) -> str:
            head, _, rest = k.partition(".")
            return f"{prefix.get(head, head)}.{rest}" if rest else k
    elif isinstance(module, ResNet18):
        rename = None
    else:
        raise TypeError(f"expected a ResNet18 or FrameNet, got {type(module).__name__}")
    load_matching(module, path, skip=("fc.",), what="a torchvision ResNet-18", rename=rename)


BACKBONES = ("resnet18", "efficientnet-lite0")
LITE0_DEFAULT_STAGES = 5  # output stride 16, as the paper's dilated ResNet-18

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB pixels, channels at dim 1 -> float32 ImageNet-normalised; floats pass as they
    are (taken as already normalised)."""
    if frames.dtype != torch.uint8:
        return frames
    shape = (1, 3) + (1,) * (frames.dim() - 2)
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(shape)
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(shape)
    return (frames.float() / 255.0 - mean) / std


class FrameNet(nn.Module):
    """Dilated ResNet-18 + 3x3 conv to K channels (the reference `ResnetDilated`, maxpool).

    Frames (B, 3, T, H, W) -> per-pixel features (B, K, T, H/16, W/16); a 224x224 frame gives a
    14x14 map. The pooled output is max over time and space followed by a sigmoid (the
    reference's img_pool='maxpool', img_activation='sigmoid').

    k: feature channels K. width: ResNet base width (64 = ResNet-18). pretrained: path of a
    torchvision ResNet-18 state dict (width 64 only), or of EfficientNet-Lite0 weights
    ("imagenet": the installed package's).
    backbone: "resnet18" (the paper's), or "efficientnet-lite0" (models/efficientnet.py: its
    first 5 stages by default, output stride 16, a 14x14 map of 112-channel cells).
    head: efficientnet-lite0 through its 1x1 conv to the 1280 channels ImageNet's classifier
    reads (all 7 stages, output stride 32, a 7x7 map of a 224 px frame), each cell projected to
    K by a 1x1 conv: a linear read-out of those cells names a new picture's instrument far more
    often than one of stage 5's (docs/generalization.md).
    frozen: the backbone keeps its (pretrained) weights and BatchNorm statistics and is run
    without gradients; only the conv to K channels learns, a third of the cost per frame.
    stages: stages kept (resnet18: 4 = the paper, the default). Fewer stages bound each cell's
    receptive field (stages 2: 99 px, output stride 8) where the full net's (~435 px) spans the
    whole frame: trained from scratch, the full net puts every class's evidence on the border
    cells (zero padding tells them where they are), so its maps do not say where the sound is.
    """

    def __init__(
        self,
        k: int = 32,
        width: int = 64,
        pretrained: str | None = None,
        stages: int | None = None,
        backbone: str = "resnet18",
        frozen: bool = False,
        head: bool = False,
    ):
        super().__init__()
        self.frozen = frozen
        if backbone not in BACKBONES:
            raise PixelPlayerError(
                f"frame.backbone: no backbone {backbone!r}; known: {', '.join(BACKBONES)}"
            )
        self.k, self.width, self.backbone = k, width, backbone
        if head and backbone != "efficientnet-lite0":
            raise PixelPlayerError("frame.head: only the efficientnet-lite0 backbone has one")
        self.head = head
        if backbone == "efficientnet-lite0":
            default = len(LITE0_STAGES) if head else LITE0_DEFAULT_STAGES
            self.stages = default if stages is None else stages
            self.features = EfficientNetLite0(self.stages, head)
            if pretrained is not None:
                load_lite0_weights(self.features, None if pretrained == "imagenet" else pretrained)
            channels = self.features.channels
        else:
            self.stages = 4 if stages is None else stages
            if self.stages not in (1, 2, 3, 4):
                raise ValueError(f"stages must be 1 to 4, got {self.stages}")
            if pretrained is not None and width != 64:
                raise PixelPlayerError(
                    f"pretrained ResNet-18 weights need width=64, got width={width}"
                )
            resnet = ResNet18(width)
            if pretrained is not None:
                load_torchvision_weights(resnet, pretrained)
            resnet.layer4.apply(partial(_nostride_dilate, dilate=2))  # output stride 32 -> 16
            # stem (conv1, bn1, relu, maxpool) + the kept stages; the reference keeps all four
            self.features = nn.Sequential(*list(resnet.children())[: 4 + self.stages])
            channels = width * 2 ** (self.stages - 1)
        # the head's cells already carry ImageNet's class evidence: each is read out on its own
        kernel = 1 if head else 3
        self.fc = nn.Conv2d(channels, k, kernel_size=kernel, padding=kernel // 2)
        self.features.requires_grad_(not frozen)

    def train(self, mode: bool = True) -> FrameNet:
        super().train(mode)
        if self.frozen:  # a frozen backbone keeps its BatchNorm statistics too
            self.features.eval()
        return self

    def forward_pixels(self, frames: torch.Tensor, sigmoid: bool = False) -> torch.Tensor:
        """(B, 3, T, H, W) or (B, 3, H, W) -> (B, K, T, H/16, W/16), raw or sigmoid-activated.

        Frames are uint8 pixels (normalised here, on the net's device) or normalised floats.
        """
        frames = normalize_pixels(frames)
        if frames.dim() == 4:
            frames = frames.unsqueeze(2)
        if frames.dim() != 5 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (B, 3, T, H, W), got {tuple(frames.shape)}")
        b, c, t, h, w = frames.shape
        x = frames.transpose(1, 2).reshape(b * t, c, h, w)  # frames share the 2D net
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            x = self.features(x)  # (B*T, C, h, w)
        x = self.fc(x)  # (B*T, K, h, w)
        x = x.reshape(b, t, *x.shape[1:]).transpose(1, 2)  # (B, K, T, h, w)
        return torch.sigmoid(x) if sigmoid else x

    def pool_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw per-pixel features (B, K, T, h, w) -> pooled, activated (B, K) in (0, 1)."""
        return torch.sigmoid(pixels.flatten(2).amax(dim=2))  # over T*h*w

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, K): max over time and space, then sigmoid."""
        return self.pool_features(self.forward_pixels(frames))

    @classmethod
    def load_torchvision_weights(cls, module: nn.Module, path: str | Path) -> None:
        """Same as the module-level `load_torchvision_weights`."""
        load_torchvision_weights(module, path)
