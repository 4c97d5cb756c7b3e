"""A video's frames as the network sees them, decoded once: shown, analysed, or both.

Frames are decoded at `sample.fps` as players show them (turned by the display matrix),
resized so the short side is `sample.frame_size` (the training scale, bilinear) and
ImageNet-normalised as in training. Not cropped: the frame net is fully convolutional, so the
whole frame keeps its aspect and every pixel has a cell of the feature grid.

The frame net is the costly part (about 22 ms per 224 px frame on two idle CPU cores with the
paper's model: 10 s for the 480 frames of a minute at 8 fps), so it runs only on the wanted
frames (`windows.wanted_frames`); each sampled frame then takes the nearest analysed frame's
features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pixelplayer.data.dataset import SampleConfig
from pixelplayer.motion_map import gray_frame
from pixelplayer.separation.windows import nearest
from pixelplayer.video import MediaInfo, iter_frames

DISPLAY_LONG_SIDE = 640  # frame.jpg and overlay.mp4 are at most this wide or high
FRAME_BATCH = 16  # frames per frame-net call


def net_frame_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h) the network sees: short side `size`, as `dataset.load_frame` scales (no crop)."""
    r = size / min(width, height)
    return max(size, round(width * r)), max(size, round(height * r))


def display_size(width: int, height: int, long_side: int = DISPLAY_LONG_SIDE) -> tuple[int, int]:
    """(w, h) of frame.jpg and overlay.mp4: long side <= `long_side`, both even (H.264 4:2:0)."""
    r = min(1.0, long_side / max(width, height))
    return max(2, int(width * r) // 2 * 2), max(2, int(height * r) // 2 * 2)


@dataclass
class VideoFrames:
    """Visual features of the analysed frames of one video."""

    index: np.ndarray  # (A,) sorted indices of the analysed sampled frames
    raw: torch.Tensor  # (A, K, h, w) frame-net output before pooling and sigmoid
    count: int  # T, sampled frames in the video
    display: list[np.ndarray] | None  # T frames (Hd, Wd, 3) uint8, when outputs are written
    gray: list[np.ndarray] | None = None  # T small grayscale frames for the motion map

    def position(self, frames: np.ndarray) -> np.ndarray:
        """Position in `index` of the analysed frame nearest to each frame index."""
        return nearest(self.index, frames)


def analyse_frames(
    path: Path,
    info: MediaInfo,
    sample: SampleConfig,
    want: set[int],
    features: Callable[[np.ndarray], torch.Tensor],
    keep: bool,
    gray_size: int | None,
    bar: tqdm,
    until: float = 0.0,
) -> VideoFrames:
    """Decode every sampled frame once (the last held up to `until` s, as players hold it
    while the sound goes on); run `features` ((B, H, W, 3) uint8 -> raw (B, K, h, w)) on the
    wanted ones, in batches. `keep`: keep the display frames for the outputs; `gray_size`:
    keep grayscale frames of that short side for the motion map."""
    disp = display_size(info.width, info.height)
    net = net_frame_size(disp[0], disp[1], sample.frame_size)
    shown: list[np.ndarray] = []
    gray: list[np.ndarray] = []
    index, raw, batch, batch_index = [], [], [], []
    last, count = None, 0

    def flush():
        if batch:
            raw.append(features(np.stack(batch)))
            index.extend(batch_index)
            batch.clear()
            batch_index.clear()

    for i, frame in enumerate(iter_frames(path, sample.fps, disp, until)):
        count, last = i + 1, frame
        if keep:
            shown.append(frame)
        if gray_size is not None:
            gray.append(gray_frame(frame, gray_size))
        if i in want:
            batch.append(_resize(frame, net))
            batch_index.append(i)
            if len(batch) == FRAME_BATCH:
                flush()
        bar.update(max(0.0, min(1 / sample.fps, bar.total - bar.n)))
    if max(want) >= count and count - 1 not in batch_index + index:
        batch.append(_resize(last, net))  # window frames past the end show the last frame
        batch_index.append(count - 1)
    flush()
    shown_or_none = shown if keep else None
    return VideoFrames(np.array(index), torch.cat(raw), count, shown_or_none, gray or None)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[1::-1] == tuple(size):
        return frame
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))
