"""Audio-Motion Embedding (AMnet, Zhu & Rahtu, WACV 2022): motion and sound in one space, per step.

A motion network reads a short run of grayscale frames (and their differences) with 3D
convolutions that stride over space only, so every frame keeps its own embedding; a sound
network reads the waveform with strided 1D convolutions and pools it to the same time steps.
Both are L2-normalised per time step: the cosine of a motion step and a sound step says how well
that sound explains that motion. Before its spatial pooling the motion network also gives one
embedding per position, whose similarity with the sound is a localization heatmap.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelplayer.models.registry import register

N_FFT = 256  # the stft front's window: 23 ms at 11025 Hz


def _block3d(cin: int, cout: int, spatial_stride: int) -> nn.Sequential:
    # time stride 1 and padding 1: T steps in, T steps out
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride=(1, spatial_stride, spatial_stride), padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


def _block1d(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, stride=stride, padding=(kernel - stride) // 2, bias=False),
        nn.BatchNorm1d(cout),
        nn.ReLU(inplace=True),
    )


class MotionNet(nn.Module):
    """(B, 1, T+1, S, S) grayscale frames in [0, 1] -> per-position features (B, D, T, S/8, S/8).

    The first frame only serves the difference of the second: with `diff`, the input is the
    frame and its difference from the previous one (2 channels), otherwise the frame alone.
    """

    def __init__(self, dim: int = 64, width: int = 16, diff: bool = True):
        super().__init__()
        self.diff = diff
        w = width
        self.features = nn.Sequential(
            _block3d(2 if diff else 1, w, 2),  # S/2
            _block3d(w, 2 * w, 2),  # S/4
            _block3d(2 * w, 4 * w, 2),  # S/8
            _block3d(4 * w, 4 * w, 1),
        )
        self.project = nn.Conv3d(4 * w, dim, 1)  # one embedding per position and step

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames[:, :, 1:] - 0.5  # (B, 1, T, S, S)
        if self.diff:
            d = (frames[:, :, 1:] - frames[:, :, :-1]) * 4.0  # motions are a few levels; scale up
            x = torch.cat([x, d], dim=1)  # (B, 2, T, S, S)
        return self.project(self.features(x))  # (B, D, T, h, w)


class SoundNet(nn.Module):
    """(B, L) waveform -> (B, D, T) with T = round(L / hop), one step per video frame.

    front "wave": strided 1D convolutions straight on the samples (as the paper);
    front "stft": a log-magnitude STFT (256-point, 64-sample hop) read by 1D convolutions over
    time, the bins as channels: the same output at a fraction of the cost on a CPU.
    """

    def __init__(self, dim: int = 64, width: int = 16, hop: float = 11025 / 8, front: str = "stft"):
        super().__init__()
        self.hop, self.front = hop, front
        w = width
        if front == "wave":
            self.features = nn.Sequential(
                _block1d(1, w, 32, 16),  # L/16: filters of ~3 ms
                _block1d(w, 2 * w, 8, 4),  # L/64
                _block1d(2 * w, 4 * w, 4, 2),  # L/128, ~12 ms per position at 11025 Hz
            )
        elif front == "stft":
            self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
            self.features = nn.Sequential(
                _block1d(N_FFT // 2 + 1, 2 * w, 4, 2),  # L/128
                _block1d(2 * w, 4 * w, 4, 2),  # L/256, ~23 ms per position at 11025 Hz
            )
        else:
            raise ValueError(f"unknown sound front {front!r}; use wave or stft")
        self.head = nn.Sequential(
            _block1d(4 * w, 4 * w, 3, 1),
            nn.Conv1d(4 * w, dim, 1),
        )

    def steps(self, length: int) -> int:
        return max(1, round(length / self.hop))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.front == "wave":
            x = self.features(wave[:, None])  # (B, 4w, ~L/128)
        else:
            spec = torch.stft(wave, N_FFT, N_FFT // 4, window=self.window, return_complex=True)
            x = self.features(torch.log1p(100 * spec.abs()))  # (B, bins, L/64) -> (B, 4w, L/256)
        x = F.adaptive_avg_pool1d(x, self.steps(wave.shape[-1]))  # (B, 4w, T)
        return self.head(x)  # (B, D, T)


@register("ame")
class AudioMotionEmbedding(nn.Module):
    """Motion and sound embeddings (B, D, T), unit length per time step, and motion heatmaps.

    `min_shift` (seconds) and `margin` describe the triplets the embedding is trained on
    (pixelplayer.ame): kept with the weights so a checkpoint says how it is to be scored.
    """

    def __init__(
        self,
        dim: int = 64,
        width: int = 16,
        diff: bool = True,
        sr: int = 11025,
        fps: float = 8.0,
        sound_front: str = "stft",
        min_shift: float = 1.0,
        margin: float = 0.2,
    ):
        super().__init__()
        self.min_shift, self.margin = min_shift, margin
        self.motion = MotionNet(dim, width, diff)
        self.sound = SoundNet(dim, width, sr / fps, sound_front)

    def motion_positions(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 1, T+1, S, S) -> (B, D, T, h, w) unit-length embedding of each position."""
        return F.normalize(self.motion(frames), dim=1)

    def embed_motion(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 1, T+1, S, S) -> (B, D, T): positions averaged before normalising."""
        return F.normalize(self.motion(frames).mean(dim=(3, 4)), dim=1)

    def embed_sound(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, D, T)."""
        return F.normalize(self.sound(wave), dim=1)

    def forward(self, frames: torch.Tensor, wave: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.embed_motion(frames), self.embed_sound(wave)

    def response(self, frames: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """Cosine of each position's motion with the sound embedding (B, D, T) -> (B, h, w, T)."""
        pos = self.motion_positions(frames)  # (B, D, T, h, w)
        return torch.einsum("bdthw,bdt->bhwt", pos, sound)
