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
    pool_blocks: with mask_pool, each block of CELL_POOL x CELL_POOL bins takes the mask of
    the region loudest there (by its logit on the block's averaged sound features) instead of
    each bin the loudest of G x G full masks: the cost of one mask, so G can be the feature
    grid itself and every cell `separate` maps is a region training taught.
    pool_top: with pool_blocks, a block takes the mean of the logits of its `pool_top` loudest
    regions (the logit of their mean vector): the clip sounds where k of its cells do, so a
    whole object is taught, where the loudest cell alone lit one cell of its edge.
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
        pool_blocks: bool = False,
        pool_top: int = 1,
    ):
        super().__init__()
        if mask_pool < 0 or cell_grid < 0:
            raise ValueError(f"mask_pool, cell_grid must be >= 0: {mask_pool}, {cell_grid}")
        self.log_floor, self.mask_pool, self.cell_grid = log_floor, mask_pool, cell_grid
        self.pool_blocks, self.pool_top = bool(pool_blocks), pool_top
        if pool_top < 1:
            raise ValueError(f"pool_top must be >= 1: {pool_top}")
        if (pool_blocks and not mask_pool) or (pool_top > 1 and not pool_blocks):
            raise ValueError("pool_blocks needs mask_pool, and pool_top > 1 needs pool_blocks")
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
        blocks = cells or (self.mask_pool and self.pool_blocks)
        if blocks and (mix_mag.shape[-2] % CELL_POOL or mix_mag.shape[-1] % CELL_POOL):
            raise ValueError(
                f"cells and pool_blocks need a spectrogram divisible by {CELL_POOL}, got "
                f"{tuple(mix_mag.shape[-2:])}"
            )
        sound = self.sound_features(mix_mag)  # (B, K, F, T)
        coarse = F.avg_pool2d(sound, CELL_POOL) if blocks else None  # once for every clip
        # one frame-net call per source, as the reference does (BatchNorm statistics per source)
        out = [
            self._clip_logits(frames[:, n], sound, coarse, cells) for n in range(frames.shape[1])
        ]
        logits = torch.cat([clip for clip, _ in out], dim=1)  # (B, N, F, T)
        if not cells:
            return logits
        return logits, torch.stack([grid for _, grid in out], dim=1)

    def _clip_logits(
        self,
        frames: torch.Tensor,
        sound: torch.Tensor,
        coarse: torch.Tensor | None = None,
        cells: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One video per item (B, 3, T_f, H, W) -> its mask logits (B, 1, F, T) and, with
        `cells`, its grid cells' logits (B, G*G, f, t) on the coarse sound features (B, K, f, t)
        (also what pool_blocks ranks its regions by)."""
        if not self.mask_pool and not cells:
            return self.synth(self.frame_features(frames), sound), None
        raw = self.frame_net.forward_pixels(frames)  # (B, K, T_f, h, w), computed once
        pixels = self._over_time(raw)  # (B, K, h, w)
        if self.mask_pool:
            regions = F.adaptive_max_pool2d(pixels, self.mask_pool)
            if self.pool_blocks:
                logits = self._loudest_per_block(regions, sound, coarse)
            else:
                logits = self.synth.forward_pixels(regions, sound)  # (B, G, G, F, T)
                logits = logits.flatten(1, 2).amax(dim=1, keepdim=True)  # sigmoid is monotonic
        else:
            logits = self.synth(self.frame_net.pool_features(raw), sound)  # frame_features
        if not cells:
            return logits, None
        grid = F.adaptive_max_pool2d(pixels, self.cell_grid)
        return logits, self.synth.forward_pixels(grid, coarse).flatten(1, 2)

    def _loudest_per_block(
        self, regions: torch.Tensor, sound: torch.Tensor, coarse: torch.Tensor
    ) -> torch.Tensor:
        """Regions' vectors (B, K, G, G), sound (B, K, F, T) and its means over blocks
        (B, K, F/CELL_POOL, T/CELL_POOL) -> (B, 1, F, T): in each block of
        CELL_POOL x CELL_POOL bins, the mean logits of the `pool_top` regions whose mean logit
        there is highest (the synthesizer is linear in the sound, so that mean is its logit on
        the block's mean sound, and a mean of logits is the logit of the mean vector)."""
        b, k, f, t = sound.shape
        with torch.no_grad():
            coarse_logits = self.synth.forward_pixels(regions, coarse).flatten(1, 2)
            top = min(self.pool_top, coarse_logits.shape[1])
            pick = coarse_logits.topk(top, dim=1).indices  # (B, top, f, t)
        p, fb, tb = CELL_POOL, f // CELL_POOL, t // CELL_POOL
        vectors = regions.flatten(2) * self.synth.scale.view(1, k, 1)  # (B, K, G*G)
        index = pick.flatten(1).unsqueeze(1).expand(-1, k, -1)  # (B, K, top*f*t)
        chosen = vectors.gather(2, index).view(b, k, top, fb * tb).mean(dim=2)
        chosen = chosen.transpose(1, 2).reshape(b * fb * tb, 1, k)
        # one (1 x K) @ (K x p*p) product per block: 2x faster than broadcasting in bfloat16
        blocks = sound.view(b, k, fb, p, tb, p).permute(0, 2, 4, 1, 3, 5)
        z = torch.bmm(chosen.to(sound.dtype), blocks.reshape(b * fb * tb, k, p * p))
        z = z.view(b, fb, tb, p, p).permute(0, 1, 3, 2, 4).reshape(b, 1, f, t)
        return z + self.synth.bias

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
