"""PixelPlayer: video analysis net + audio U-Net + inner-product synthesizer (Zhao et al. 2018).

The network is generic: it maps a mixture spectrogram and the frames of N videos to mask
logits; warping, masks, losses and thresholds live with the callers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from pixelplayer.models.frame import FrameNet
from pixelplayer.models.grounding import GroundingHead, grounding_loss
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
    grounding: GroundingHead kwargs (dim, width) and `weight`, its loss's share beside the
    masks' (1): which cells make the sound heard (models/grounding.py), trained with the
    masks. None: no head, the paper's model.
    """

    def __init__(
        self,
        frame: dict[str, Any] | None = None,
        sound: dict[str, Any] | None = None,
        k: int = 32,
        log_floor: float = 1e-10,
        grounding: dict[str, Any] | None = None,
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
        self.grounding, self.grounding_weight = None, 0.0
        if grounding is not None:
            grounding = dict(grounding)
            self.grounding_weight = float(grounding.pop("weight", 1.0))
            self.grounding = GroundingHead(k, **grounding)

    def sound_features(self, mix_mag: torch.Tensor) -> torch.Tensor:
        """Linear magnitude (B, 1, F, T), already in the net's frequency layout -> (B, K, F, T)."""
        return self.sound_net(torch.log(mix_mag + self.log_floor))

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """One video per item (B, 3, T_f, H, W) -> pooled, sigmoid-activated (B, K).

        The spatial max of `pixel_features` (sigmoid is monotonic): a clip's vector is its
        pixels' features pooled as `pool_cells` pools a region of them.
        """
        return self.frame_net(frames)

    def frame_pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T_f, H, W), or single frames (B, 3, H, W) as T_f = 1 -> raw per-pixel
        features (B, K, T_f, h, w), before pooling and sigmoid. Frames are uint8 pixels or
        ImageNet-normalised floats; a frame's features depend on that frame alone, so callers
        may compute them once and pool them into several windows with `pool_time`."""
        return self.frame_net.forward_pixels(frames)

    @staticmethod
    def pool_time(raw: torch.Tensor) -> torch.Tensor:
        """Raw per-pixel features of a window's frames (B, K, T_f, h, w) -> (B, K, h, w) in
        (0, 1): max over time, then sigmoid, as training pools a clip's frames."""
        return torch.sigmoid(raw.amax(dim=2))

    def pixel_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, T_f, H, W) -> per-pixel features (B, K, h, w) in (0, 1).

        Max over time, then sigmoid, so the clip vector is exactly the spatial max of these
        (sigmoid is monotonic).
        """
        return self.pool_time(self.frame_pixels(frames))

    @staticmethod
    def pool_cells(cells: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """Features of P cells (B, K, P) and regions (V, P) bool -> one vector per region
        (B, V, K): the max over its cells, the way training pools a clip's pixels."""
        return torch.stack([cells[:, :, r].amax(-1) for r in regions], dim=1)

    def vector_logits(self, vis: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """V visual vectors per item (B, V, K) with sound features (B, K, F, T) -> mask logits
        (B, V, F, T), one mask per vector (a clip's, a region's or a single pixel's)."""
        return self.synth.forward_flat(vis, sound)

    def region_logits(
        self, cells: torch.Tensor, regions: torch.Tensor, sound: torch.Tensor
    ) -> torch.Tensor:
        """Mask logits of regions of the feature grid -> (B, V, F, T).

        cells (B, K, P): pixel features (`pixel_features`, flattened) of the P cells; regions
        (V, P) bool; sound (B, K, F, T). A region is heard as the model was trained to hear a
        clip: its cells' features max-pooled into one vector (`pool_cells`).
        """
        return self.vector_logits(self.pool_cells(cells, regions), sound)

    def forward(
        self,
        mix_mag: torch.Tensor,
        frames: torch.Tensor,
        classes: torch.Tensor | None = None,
        heard: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Mask logits for N sources: mix_mag (B, 1, F, T), frames (B, N, 3, T_f, H, W).

        Returns (B, N, F, T); sigmoid gives binary-mask probabilities or ratio masks. Given
        the clips' classes and whether each is heard in its mixture, both (B, N), a model
        with a grounding head also returns that head's loss (training).
        """
        if frames.dim() != 6 or frames.shape[0] != mix_mag.shape[0]:
            raise ValueError(
                f"frames must be (B={mix_mag.shape[0]}, N, 3, T, H, W), got {tuple(frames.shape)}"
            )
        log_mag = torch.log(mix_mag + self.log_floor)
        sound = self.sound_net(log_mag)  # (B, K, F, T), as sound_features
        # one frame-net call per source, as the reference does (BatchNorm statistics per source)
        raw = [self.frame_pixels(frames[:, n]) for n in range(frames.shape[1])]  # (B, K, T_f, h, w)
        # each clip's vector as frame_features pools it
        vectors = [self.frame_net.pool_features(r)[:, None] for r in raw]
        logits = torch.cat([self.vector_logits(v, sound) for v in vectors], dim=1)
        if classes is None or self.grounding is None:
            return logits
        pixels = torch.stack(raw, dim=1)  # (B, N, K, T_f, h, w)
        return logits, grounding_loss(self.grounding, pixels, log_mag, classes, heard)

    def sounding_logits(self, raw: torch.Tensor, mix_mag: torch.Tensor) -> torch.Tensor:
        """Does each cell make the sound of its own mixture? Raw features (B, K, T_f, h, w)
        (`frame_pixels`) and magnitudes (B, 1, F, T), or one (1, 1, F, T) for all -> logits
        (B, T_f, h, w), absolute: sigmoid > 0.5 is the model's decision. Needs the head."""
        if self.grounding is None:
            raise ValueError("this PixelPlayer has no grounding head (model_kwargs.grounding)")
        sounds = self.grounding.sound(torch.log(mix_mag + self.log_floor))  # (B or 1, D)
        sounds = sounds.expand(raw.shape[0], -1)
        return self.grounding.own_logits(self.grounding.cells(raw), sounds)

    def pixel_logits(
        self,
        mix_mag: torch.Tensor,
        frames: torch.Tensor,
        sound: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-pixel mask logits: mix_mag (B, 1, F, T), frames (B, 3, T_f, H, W) -> (B, h, w, F, T).

        Pass `sound` (from `sound_features`) to reuse it; for large maps call
        `pixel_features` once and `vector_logits` on chunks of pixels instead.
        """
        if sound is None:
            sound = self.sound_features(mix_mag)
        return self.synth.forward_pixels(self.pixel_features(frames), sound)
