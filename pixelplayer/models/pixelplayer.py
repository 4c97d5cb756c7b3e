"""PixelPlayer: video analysis net + audio U-Net + inner-product synthesizer (Zhao et al. 2018).

The network is generic: it maps a mixture spectrogram and the frames of N videos to mask
logits; warping, masks, losses and thresholds live with the callers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from pixelplayer.models.frame import FrameNet
from pixelplayer.models.registry import register
from pixelplayer.models.sound import UNet
from pixelplayer.models.synthesizer import InnerProd


@register("pixelplayer")
class PixelPlayer(nn.Module):
    """Mix-and-separate network.

    frame: FrameNet kwargs (width, pretrained, stages). sound: UNet kwargs (ngf, levels, init).
    k: the shared feature size K (may be repeated inside frame/sound but must then agree).
    log_floor: added to the magnitude before the log. The reference's 1e-10 suits recordings
    with a noise floor; on audio with digital silence it puts the silent bins at -23 while the
    sound sits near 0, and the input BatchNorm then spends its range on silence.
    """

    def __init__(
        self,
        frame: dict[str, Any] | None = None,
        sound: dict[str, Any] | None = None,
        k: int = 32,
        log_floor: float = 1e-10,
    ):
        super().__init__()
        self.log_floor = log_floor
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

        Max over time, then sigmoid, so the clip vector is exactly the spatial max of these
        (sigmoid is monotonic).
        """
        return torch.sigmoid(self.frame_net.forward_pixels(frames).amax(dim=2))

    def forward(self, mix_mag: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Mask logits for N sources: mix_mag (B, 1, F, T), frames (B, N, 3, T_f, H, W).

        Returns (B, N, F, T); sigmoid gives binary-mask probabilities or ratio masks.
        """
        if frames.dim() != 6 or frames.shape[0] != mix_mag.shape[0]:
            raise ValueError(
                f"frames must be (B={mix_mag.shape[0]}, N, 3, T, H, W), got {tuple(frames.shape)}"
            )
        sound = self.sound_features(mix_mag)  # (B, K, F, T)
        # one frame-net call per source, as the reference does (BatchNorm statistics per source)
        return torch.cat(
            [self.synth(self.frame_features(frames[:, n]), sound) for n in range(frames.shape[1])],
            dim=1,
        )

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
