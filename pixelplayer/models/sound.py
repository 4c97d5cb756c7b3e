"""Audio analysis network: the reference U-Net (hangzhaomit/Sound-of-Pixels, audio_net.py).

Log-magnitude spectrogram (B, 1, F, T) -> K feature maps (B, K, F, T) at the input resolution.
Block structure, layer order and parameter names follow the reference `Unet`/`UnetBlock`
(`bn0.*`, `unet_block.model.N.*`), so the authors' released sound weights load as they are.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SafeDownConv(nn.Conv2d):
    """A strided Conv2d that computes in float32 when its input has a side of 2 or less.

    oneDNN's AMX bfloat16 convolution (torch 2.13 CPU build) now and then returns NaN for a
    4x4 stride-2 convolution whose output is one column wide (seen at the bottom of the U-Net:
    (B, C, 16, 2) -> (B, C, 8, 1), in up to 1 call of 3); such inputs cost nothing in float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = x.device.type
        if min(x.shape[-2:]) <= 2 and torch.is_autocast_enabled(kind):
            with torch.autocast(kind, enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class UnetBlock(nn.Module):
    """One U-Net level with skip connection: x -> cat([x, up(sub(down(x)))]).

    down: LeakyReLU(0.2) - conv4x4 s2 - BN (outermost: conv only; innermost: no BN);
    up: ReLU - bilinear x2 (align_corners) - conv3x3 - BN (outermost: conv3x3 with bias, no BN).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_input_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        # a non-innermost level's up path sees its own down features plus the skip: 2x channels
        inner_output_nc = inner_input_nc if innermost else 2 * inner_input_nc

        downconv = SafeDownConv(input_nc, inner_input_nc, 4, stride=2, padding=1, bias=False)
        # not in-place: forward() reuses the activated input for the skip explicitly
        downrelu = nn.LeakyReLU(0.2)
        uprelu = nn.ReLU(inplace=True)
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        if outermost:
            upconv = nn.Conv2d(inner_output_nc, outer_nc, 3, padding=1)
            layers = [downconv, submodule, uprelu, upsample, upconv]
        elif innermost:
            upconv = nn.Conv2d(inner_output_nc, outer_nc, 3, padding=1, bias=False)
            layers = [downrelu, downconv, uprelu, upsample, upconv, nn.BatchNorm2d(outer_nc)]
        else:
            upconv = nn.Conv2d(inner_output_nc, outer_nc, 3, padding=1, bias=False)
            layers = [downrelu, downconv, nn.BatchNorm2d(inner_input_nc), submodule]
            layers += [uprelu, upsample, upconv, nn.BatchNorm2d(outer_nc)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, H, W) -> outermost (B, outer_nc, H, W); else (B, C_in + outer_nc, H, W)
        if self.outermost:
            return self.model(x)
        # The reference's LeakyReLU is in-place, so its skip carries LeakyReLU(x), not x;
        # reproduced here so that its trained weights behave the same.
        x = self.model[0](x)
        y = x
        for layer in list(self.model)[1:]:
            y = layer(y)
        return torch.cat([x, y], dim=1)


class UNet(nn.Module):
    """The reference `Unet` (num_downs = levels), input BatchNorm `bn0`, output K channels.

    Channels per level from the outside in: ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... (levels >= 5 is
    exactly the reference; fewer levels keep the same rule). H and W must be divisible by
    2**levels (256x256 -> 2x2 at the bottom for levels=7).

    k: output channels K. ngf: base width. levels: number of down/up steps (>= 2).
    init: "reference" (conv weights N(0, 1e-3), as the reference code) or "kaiming" (PyTorch's
    default), which starts the outermost layers, that have no BatchNorm, at a useful scale.
    """

    def __init__(self, k: int = 32, ngf: int = 64, levels: int = 7, init: str = "reference"):
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.k, self.ngf, self.levels = k, ngf, levels
        inner = [ngf * min(2**i, 8) for i in range(levels)]  # down channels at each level
        block = UnetBlock(inner[-2], inner[-1], innermost=True)
        for i in range(levels - 2, 0, -1):
            block = UnetBlock(inner[i - 1], inner[i], submodule=block)
        block = UnetBlock(k, inner[0], input_nc=1, submodule=block, outermost=True)
        self.bn0 = nn.BatchNorm2d(1)
        self.unet_block = block
        if init not in ("reference", "kaiming"):
            raise ValueError(f"init must be 'reference' or 'kaiming', not {init!r}")
        if init == "reference":
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference ModelBuilder.weights_init: conv N(0, 1e-3), BN weight N(1, 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1, F, T) log-magnitude -> (B, K, F, T)
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a (B, 1, F, T) spectrogram, got {tuple(x.shape)}")
        step = 2**self.levels
        if x.shape[2] % step or x.shape[3] % step:
            raise ValueError(
                f"spectrogram {tuple(x.shape[2:])} must be divisible by 2**levels = {step}"
            )
        return self.unet_block(self.bn0(x))
