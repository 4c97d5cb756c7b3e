"""AMnet (Zhu & Rahtu, WACV 2022): appearance first, then motion refines the mask.

Stage 1, Audio-Appearance: a keyframe's appearance vector weights the spectrogram network's
feature maps and gives a mask: this is a trained PixelPlayer (`appearance`), frozen here.
Stage 2, Audio-Motion: a spectrogram encoder reads each source's first estimate (its mask times
the mixture) beside the mixture; the Audio-Motion Transformer lets those spectrogram tokens
attend to each other (self-attention) and to the clip's motion tokens from a trained
Audio-Motion Embedding (`ame`, frozen: keys and values); a decoder turns the tokens into a
correction of the mask logits, added to stage 1's (residual fusion). The correction starts at
zero, so training stage 2 starts from stage 1's separation.

Both time axes carry sinusoidal encodings of the same clock (seconds from the window's start),
so a spectrogram token can find the motion of the moment it hears; frequency rows carry a
learned encoding.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.models.pixelplayer import PixelPlayer
from pixelplayer.models.registry import register


def time_encoding(seconds: torch.Tensor, dim: int, period: float = 8.0) -> torch.Tensor:
    """(T,) times in seconds -> (T, dim) sinusoids with periods from `period` s down to 1/16 s."""
    half = dim // 2
    periods = torch.logspace(math.log10(period), math.log10(1 / 16), half, device=seconds.device)
    angle = 2 * math.pi * seconds[:, None] / periods[None]  # (T, half)
    return torch.cat([angle.sin(), angle.cos()], dim=1)


def _down(cin: int, cout: int, stride: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class AMTLayer(nn.Module):
    """One Audio-Motion Transformer layer: self-attention over the spectrogram tokens,
    cross-attention from them to the motion tokens, a feed-forward; pre-norm residuals."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        # x (B, S, D) spectrogram tokens; motion (B, M, D) motion tokens
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, need_weights=False)[0]
        x = x + self.cross_attn(self.norm2(x), motion, motion, need_weights=False)[0]
        return x + self.ff(self.norm3(x))


class MotionRefiner(nn.Module):
    """(first estimate, mixture) log-spectrograms (B, 2, F, T) + motion (B, M, E) -> (B, 1, F, T).

    Encoder: four strided convs, frequency / 16 and time / 4 (256 x 128 -> 16 x 32 tokens);
    `layers` AMT layers of width `dim`; decoder: bilinear upsampling with the encoder's skips,
    a last 1x1 conv initialised to zero.
    """

    def __init__(
        self,
        motion_dim: int,
        dim: int = 64,
        width: int = 16,
        heads: int = 4,
        layers: int = 2,
        freq_tokens: int = 16,
        seconds_per_column: float = 256 / 11025,
    ):
        super().__init__()
        w = width
        self.seconds_per_column = seconds_per_column
        self.enc = nn.ModuleList(
            [
                _down(2, w, (2, 2)),
                _down(w, 2 * w, (2, 2)),
                _down(2 * w, 4 * w, (2, 1)),
                _down(4 * w, dim, (2, 1)),
            ]
        )
        self.freq_pos = nn.Parameter(torch.zeros(freq_tokens, dim))
        self.motion_in = nn.Linear(motion_dim, dim)
        self.layers = nn.ModuleList([AMTLayer(dim, heads) for _ in range(layers)])
        chans = [w, 2 * w, 4 * w, dim]
        self.dec = nn.ModuleList(
            [_down(chans[i + 1] + chans[i], chans[i], (1, 1)) for i in range(len(chans) - 1)]
        )
        self.head = nn.Conv2d(w + 2, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, spec: torch.Tensor, motion: torch.Tensor, fps: float) -> torch.Tensor:
        skips, x = [spec], spec
        for layer in self.enc:
            x = layer(x)
            skips.append(x)
        b, d, f, t = x.shape  # (B, D, F/16, T/4)
        if f != self.freq_pos.shape[0]:
            raise ValueError(f"the refiner expects {16 * self.freq_pos.shape[0]} frequency rows")
        col_s = torch.arange(t, device=x.device) * (spec.shape[-1] / t) * self.seconds_per_column
        pos = self.freq_pos[:, None] + time_encoding(col_s, d)[None]  # (F', T', D)
        tokens = x.permute(0, 2, 3, 1).reshape(b, f * t, d) + pos.reshape(1, f * t, d)
        m = motion.shape[1]
        step_s = (torch.arange(m, device=x.device) + 0.5) / fps  # centre of each motion step
        mem = self.motion_in(motion) + time_encoding(step_s, d)[None]  # (B, M, D)
        for layer in self.layers:
            tokens = layer(tokens, mem)
        x = tokens.reshape(b, f, t, d).permute(0, 3, 1, 2)
        for i in range(len(self.dec) - 1, -1, -1):  # back up through the encoder's scales
            skip = skips[i + 1]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.dec[i](torch.cat([x, skip], dim=1))
        x = F.interpolate(x, size=spec.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([x, spec], dim=1))  # (B, 1, F, T)


@register("amnet")
class AMNet(nn.Module):
    """Stage 1 (a PixelPlayer, frozen) + AME (frozen) + the motion refiner (trained).

    appearance, ame: the two trained parts, built (training loads them from the runs its
    config names: pixelplayer.training.build), or their kwargs (a checkpoint rebuilds them so,
    and its state dict then holds their weights: the model itself never reads another run).
    refiner: MotionRefiner kwargs. fps: the motion frames' rate. combine: how stage 1's logits
    become masks ("independent" sigmoids or a "softmax" over the sources), as its run was
    trained.
    `forward(mix_mag, frames, motion)` -> refined mask logits (B, N, F, T); `stage=1` gives
    stage 1's alone.
    """

    inputs = ("motion",)  # batch entries forward() needs besides the mixture and frames

    def __init__(
        self,
        appearance: PixelPlayer | dict[str, Any] | None = None,
        ame: AudioMotionEmbedding | dict[str, Any] | None = None,
        refiner: dict[str, Any] | None = None,
        fps: float = 8.0,
        combine: str = "independent",
    ):
        super().__init__()
        if combine not in ("independent", "softmax"):
            raise ValueError(f"combine must be 'independent' or 'softmax', not {combine!r}")
        self.fps, self.combine = fps, combine
        if not isinstance(appearance, PixelPlayer):
            appearance = PixelPlayer(**(appearance or {}))
        if not isinstance(ame, AudioMotionEmbedding):
            ame = AudioMotionEmbedding(**(ame or {}))
        self.appearance = appearance.requires_grad_(False)
        self.ame = ame.requires_grad_(False)
        dim = self.ame.motion.project.out_channels
        self.refiner = MotionRefiner(dim, **(refiner or {}))

    def train(self, mode: bool = True) -> AMNet:
        super().train(mode)
        self.appearance.eval()  # frozen: BatchNorm keeps the statistics it was trained with
        self.ame.eval()
        return self

    def forward(
        self, mix_mag: torch.Tensor, frames: torch.Tensor, motion: torch.Tensor, stage: int = 2
    ) -> torch.Tensor:
        """mix_mag (B, 1, F, T); frames (B, N, 3, T_f, H, W); motion (B, N, 1, M+1, S, S) uint8."""
        with torch.no_grad():
            first = self.appearance(mix_mag, frames)  # (B, N, F, T)
            if stage == 1:
                return first
            m = motion.flatten(0, 1).float() / 255.0  # (B*N, 1, M+1, S, S)
            tokens = self.ame.embed_motion(m).transpose(1, 2)  # (B*N, M, E)
            floor = self.appearance.log_floor
            mask = first.softmax(dim=1) if self.combine == "softmax" else first.sigmoid()
            est = torch.log(mask.float() * mix_mag + floor)  # (B, N, F, T)
            log_mix = torch.log(mix_mag + floor).expand_as(est)
            spec = torch.stack([est, log_mix], dim=2).flatten(0, 1)  # (B*N, 2, F, T)
        delta = self.refiner(spec, tokens.float(), self.fps)  # (B*N, 1, F, T)
        return first + delta.reshape(first.shape)
