"""Audio windows over a whole video: where they start, which frames each one sees, and the
weights that overlap-add their masks back into one.

The soundtrack is cut into windows of `sample.audio_len` samples with 50 % overlap (the hop
rounded down to whole STFT hops; the last window zero-padded); each window sees its own
`num_frames` frames (`stride_frames` apart), exactly as in training.
"""

from __future__ import annotations

import numpy as np

from pixelplayer.data import dataset
from pixelplayer.data.dataset import SampleConfig


def window_starts(length: int, win: int, align: int = 1) -> np.ndarray:
    """Starts of windows of `win` samples covering `length` (the last one padded past it).

    The hop is half a window rounded down to a multiple of `align` (the STFT hop), so every
    window's spectrogram columns are columns of the whole signal's spectrogram.
    """
    hop = max(align, (win // 2) // align * align)
    n = 1 if length <= win else 1 + int(np.ceil((length - win) / hop))
    return np.arange(n, dtype=np.int64) * hop


def overlap_add_weights(starts: np.ndarray, win: int) -> np.ndarray:
    """(n, win) weights of the windows at `starts`: at every covered position they sum to one.

    A Hann window shifted by half a step (so never zero, also at the ends) divided by the sum
    of all windows: the first half of the first window and the last of the last weigh one.
    """
    taper = np.sin(np.pi * (np.arange(win) + 0.5) / win) ** 2  # (win,) > 0
    total = np.zeros(int(starts[-1]) + win)
    for s in starts:
        total[s : s + win] += taper
    return np.stack([taper / total[s : s + win] for s in starts]).astype(np.float32)


def padded(mix: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """(L,) soundtrack -> (starts[-1] + win,) float32, zeros past its end for the last window."""
    out = np.zeros(int(starts[-1]) + win, np.float32)
    out[: len(mix)] = mix
    return out


def nearest(values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `values` (n >= 1) for each query."""
    values, queries = np.asarray(values), np.asarray(queries)
    if len(values) == 1:
        return np.zeros(queries.shape, np.int64)
    i = np.clip(np.searchsorted(values, queries), 1, len(values) - 1)
    return np.where(queries - values[i - 1] <= values[i] - queries, i - 1, i)


def window_frames(starts: np.ndarray, sample: SampleConfig, last: int | None = None) -> np.ndarray:
    """(n, T_f) sampled-frame indices each window sees, as training picks them
    (`dataset.frame_times`), clamped to 0..`last` (frames past the end show the last one)."""
    s = sample
    top = last if last is not None else np.iinfo(np.int64).max
    return np.array(
        [
            [min(max(int(t * s.fps), 0), top) for t in dataset.frame_times(st / s.sr, s)]
            for st in starts
        ],
        np.int64,
    ).reshape(len(starts), s.num_frames)


def wanted_frames(
    starts: np.ndarray, sample: SampleConfig, duration: float, map_fps: float | None
) -> set[int]:
    """Sampled frame indices to run the frame net on (before clamping to the video's end):
    the windows' own frames, plus frames every 1 / map_fps s where those leave a gap
    (None: every sampled frame; 0: the windows' own frames only)."""
    want = {int(i) for i in window_frames(starts, sample).ravel()}
    count = int(np.ceil(duration * sample.fps)) + 1
    if map_fps is None:
        return want | set(range(count))
    if map_fps > 0:
        step = max(1, int(round(sample.fps / map_fps)))
        have = np.array(sorted(want))
        for i in range(0, count, step):
            if np.abs(have[nearest(have, np.array([i]))[0]] - i) * 2 > step:
                want.add(i)
    return want


def frame_owners(starts: np.ndarray, sample: SampleConfig, count: int) -> np.ndarray:
    """(count,) index of the window whose centre is nearest each sampled frame's centre: the
    window whose sound features give that frame's energy map."""
    t_mid = (np.arange(count) + 0.5) / sample.fps
    return nearest((starts + sample.audio_len / 2) / sample.sr, t_mid)
