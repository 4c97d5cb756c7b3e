"""PixelPlayer: video analysis net + audio U-Net + inner-product synthesizer (Zhao et al. 2018).

The network is generic: it maps a mixture spectrogram and the frames of N videos to mask
logits; warping, masks, losses and thresholds live with the callers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelplayer.models.frame import FrameNet
from pixelplayer.models.registry import register
from pixelplayer.models.sound import UNet
from pixelplayer.models.synthesizer import InnerProd

CELL_POOL = 8  # the grid cells' logits are taken on sound features averaged over 8x8 bins


@register("pixelplayer")
class PixelPlayer(nn.Module):
    """Mix-and-separate network.

    frame: FrameNet kwargs (width, pretrained, pool). sound: UNet kwargs (ngf, levels, init).
    k: the shared feature size K (may be repeated inside frame/sound but must then agree).
    log_floor: added to the magnitude before the log. The reference's 1e-10 suits recordings
    with a noise floor; on audio with digital silence it puts the silent bins at -23 while the
    sound sits near 0, and the input BatchNorm then spends its range on silence.
    mask_pool: 0 makes a clip's mask from its pooled visual vector (the paper). G > 0 makes it
    the maximum of the masks of a G x G grid of regions (each region's features max-pooled):
    every region is then taught, so a silent clip's background learns silence too, not only
    its strongest pixel (a multiple-instance rule: the clip sounds where some region does).
    cell_grid: G > 0 lets training (`forward(..., cells=True)`) also teach every cell of a
    G x G grid of the picture the other half of that rule (`mixsep.loss`): where its clip's
    source is absent, every cell is quiet. It is done on sound features averaged over
    CELL_POOL x CELL_POOL bins, about 5 % of a step, so the cells that `separate` maps are each
    taught, not only the frame's pooled vector or its loudest region.
    """

    def __init__(
        self,
        frame: dict[str, Any] | None = None,
        sound: dict[str, Any] | None = None,
        k: int = 32,
        log_floor: float = 1e-10,
        mask_pool: int = 0,
        cell_grid: int = 0,
    ):
        super().__init__()
        if mask_pool < 0 or cell_grid < 0:
            raise ValueError(f"mask_pool, cell_grid must be >= 0: {mask_pool}, {cell_grid}")
        self.log_floor, self.mask_pool, self.cell_grid = log_floor, mask_pool, cell_grid
        frame, sound = dict(frame or {}), dict(sound or {})
        for part, cfg in (("frame", frame), ("sound", sound)):
            if cfg.setdefault("k", k) != k:
                raise ValueError(f"{part}['k']={cfg['k']} disagrees with k={k}")
        self.k = k
        self.frame_net = FrameNet(**frame)
        self.sound_net = UNet(**sound)
        self.synth = InnerProd(k)

    def sound_features(self, mix_mag: torch.Tensor) -> torch.Tensor:
        """Linear magnitude (B, 1, F, T), already in the net's frequency layout -> (B, K, F, T)."""
        return self.sound_net(torch.log(mix_mag + self.log_floor))

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """One video per item (B, 3, T_f, H, W) -> pooled, sigmoid-activated (B, K)."""
        return self.frame_net(frames)

    def pixel_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T_f, H, W) -> per-pixel features (B, K, h, w) in (0, 1).

        Pooled over time the same way as the clip vector (max or mean), then sigmoid, so the
        clip vector is exactly the spatial max of these (sigmoid is monotonic).
        """
        return self._over_time(self.frame_net.forward_pixels(frames))

    def _over_time(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw per-pixel features (B, K, T_f, h, w) -> pooled over time, activated (B, K, h, w)."""
        x = raw.amax(dim=2) if self.frame_net.pool == "max" else raw.mean(dim=2)
        return torch.sigmoid(x)

    def forward(
        self, mix_mag: torch.Tensor, frames: torch.Tensor, cells: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Mask logits for N sources: mix_mag (B, 1, F, T), frames (B, N, 3, T_f, H, W).

        Returns (B, N, F, T); sigmoid gives binary-mask probabilities or ratio masks.
        cells=True (training a model with `cell_grid`) also returns the logits of every
        cell of its G x G grid on the sound features averaged over p x p = CELL_POOL^2 bins,
        (B, N, G*G, F/p, T/p), for `mixsep.loss`.
        """
        if frames.dim() != 6 or frames.shape[0] != mix_mag.shape[0]:
            raise ValueError(
                f"frames must be (B={mix_mag.shape[0]}, N, 3, T, H, W), got {tuple(frames.shape)}"
            )
        if cells and not self.cell_grid:
            raise ValueError("cells=True needs a model built with cell_grid > 0")
        if cells and (mix_mag.shape[-2] % CELL_POOL or mix_mag.shape[-1] % CELL_POOL):
            raise ValueError(
                f"cells=True needs a spectrogram divisible by {CELL_POOL}, got "
                f"{tuple(mix_mag.shape[-2:])}"
            )
        sound = self.sound_features(mix_mag)  # (B, K, F, T)
        coarse = F.avg_pool2d(sound, CELL_POOL) if cells else None
        # one frame-net call per source, as the reference does (BatchNorm statistics per source)
        out = [self._clip_logits(frames[:, n], sound, coarse) for n in range(frames.shape[1])]
        logits = torch.cat([clip for clip, _ in out], dim=1)  # (B, N, F, T)
        if not cells:
            return logits
        return logits, torch.stack([grid for _, grid in out], dim=1)

    def _clip_logits(
        self, frames: torch.Tensor, sound: torch.Tensor, coarse: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One video per item (B, 3, T_f, H, W) -> its mask logits (B, 1, F, T) and, given
        coarse sound features (B, K, f, t), its grid cells' logits (B, G*G, f, t)."""
        if not self.mask_pool and coarse is None:
            return self.synth(self.frame_features(frames), sound), None
        raw = self.frame_net.forward_pixels(frames)  # (B, K, T_f, h, w), computed once
        pixels = self._over_time(raw)  # (B, K, h, w)
        if self.mask_pool:
            regions = F.adaptive_max_pool2d(pixels, self.mask_pool)
            logits = self.synth.forward_pixels(regions, sound)  # (B, G, G, F, T)
            logits = logits.flatten(1, 2).amax(dim=1, keepdim=True)  # sigmoid is monotonic
        else:
            logits = self.synth(self.frame_net.pool_features(raw), sound)  # frame_features
        if coarse is None:
            return logits, None
        grid = F.adaptive_max_pool2d(pixels, self.cell_grid)
        return logits, self.synth.forward_pixels(grid, coarse).flatten(1, 2)

    def pixel_logits(
        self,
        mix_mag: torch.Tensor,
        frames: torch.Tensor,
        sound: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-pixel mask logits: mix_mag (B, 1, F, T), frames (B, 3, T_f, H, W) -> (B, h, w, F, T).

        Pass `sound` (from `sound_features`) to reuse it; for large maps call
        `pixel_features` once and `synth.forward_flat` on chunks of pixels instead.
        """
        if sound is None:
            sound = self.sound_features(mix_mag)
        return self.synth.forward_pixels(self.pixel_features(frames), sound)
