"""`pixelplayer separate`: separate and localize the sounds of a whole video with a trained run.

The video is seen and heard as players show it (turned by its display matrix, so a phone's
portrait video is portrait and points are pixels of that frame; the audio on the video's clock
by its start time, from the stream that holds sound: see `audio.load_soundtrack`), and the way
the network was trained, at the model's rates:
  frames  decoded at `sample.fps`, resized so the short side is `sample.frame_size` (the training
          scale, bilinear) and ImageNet-normalised as in training. Not cropped: the frame net is
          fully convolutional, so the whole frame keeps its aspect and every pixel has a cell of
          the feature grid (h, w) = (H/16, W/16).
  sound   the audio at `sample.sr`, mono, cut into windows of `sample.audio_len` samples with
          50 % overlap (the hop rounded down to whole STFT hops; the last window zero-padded);
          each window gets the U-Net's sound features and pixel features pooled over its own
          `num_frames` frames (`stride_frames` apart), exactly as in training. Each window's
          masks are overlap-added with weights that sum to one and the waveforms rebuilt with
          `mixsep.masks_to_waves`, then trimmed to the input length.
  energy  per sampled frame: pixel features of that frame alone (T_f = 1) with the sound features
          of the window whose centre is nearest; a pixel's energy is sum |mask * mixture|^2 over
          the STFT columns of that frame's own time span [t, t + 1/fps). The span, not the whole
          window: the map then shows what sounds at that moment, and it costs 25-50x less.
  sources the cells that sound (Otsu on log energy) grouped by k-means on their visual features;
          a source's sound is the mixture masked by its cells' features max-pooled, the way
          training pools a clip's pixels into one vector.

The frame net is the costly part (about 22 ms per 224 px frame on two idle CPU cores with the
paper's model: 10 s for the 480 frames of a minute at 8 fps), so it runs on the frames the windows
need anyway (one every `stride_frames` / fps s: 3 s for the paper, 1 s for the CPU preset) and
on more where those leave gaps, so that visual features are at most 1 / `map_fps` s old (1 s by
default); each sampled frame's energy map takes the nearest analysed frame's features.
`map_fps=None` analyses every sampled frame. The sound part of the maps is per frame either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from pixelplayer import checks
from pixelplayer.audio import downmix, load_soundtrack, resample, save_audio
from pixelplayer.data import dataset
from pixelplayer.data.dataset import SampleConfig
from pixelplayer.errors import MediaError, PixelPlayerError, printable
from pixelplayer.mixsep import logits_to_masks, masks_to_waves, network_input
from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.models.amnet import AMNet
from pixelplayer.motion_map import gray_frame, motion_map
from pixelplayer.precision import autocast
from pixelplayer.separation.page import LUT, spectrogram_png, write_separation_page
from pixelplayer.separation.separators import MaskModelSeparator
from pixelplayer.video import MediaInfo, check_frame_size, iter_frames, probe, write_video

MAP_FPS = 1.0  # fresh visual features per second for the energy maps (0: windows' own frames)
DISPLAY_LONG_SIDE = 640  # frame.jpg and overlay.mp4 are at most this wide or high
FRAME_BATCH = 16  # frames per frame-net call
WINDOW_BATCH = 4  # audio windows per U-Net call
CHUNK_ELEMENTS = 1 << 20  # mask values per step of the energy maps (cache-sized)
MAX_AUTO_SOURCES = 4
SILHOUETTE_MIN = 0.25  # below: "no substantial structure" (Kaufman & Rousseeuw) -> one source
MIN_DECADES = 1.0  # Otsu classes closer than 10 dB in mean energy: no silent group, all sound
WAVE_BYTES = 256e6  # complex spectrogram bytes per pass when rebuilding waveforms
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"


# --- windows and overlap-add ------------------------------------------------------------------


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


# --- grouping cells into sources --------------------------------------------------------------


def otsu_threshold(values: np.ndarray) -> tuple[float, float]:
    """Otsu's split of a sample, exact on the sorted values -> (threshold, gap of class means).

    The threshold lies halfway between the two values where the between-class variance is
    largest; values >= it form the upper class. A constant sample gives (its value, 0).
    """
    v = np.sort(np.asarray(values, np.float64).ravel())
    n = len(v)
    if n < 2 or v[0] == v[-1]:
        return float(v[0]), 0.0
    csum = np.cumsum(v)
    k = np.arange(1, n)  # the lower class holds the first k values
    low = csum[:-1] / k
    high = (csum[-1] - csum[:-1]) / (n - k)
    between = (k / n) * (1 - k / n) * (high - low) ** 2
    between[v[1:] == v[:-1]] = -1.0  # split only between distinct values
    i = int(np.argmax(between))
    return float((v[i] + v[i + 1]) / 2), float(high[i] - low[i])


def sounding_cells(energy: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean energy per cell (h, w) -> (bool mask of the cells that sound, energy threshold).

    Otsu on log10 energy: a silent cell's mask is near zero, so silent and sounding cells lie
    decades apart and the log sample is bimodal. When Otsu's two classes are less than a decade
    apart there is no silent group (e.g. everything plays), and every cell counts as sounding.
    """
    log = np.log10(np.maximum(energy, 1e-20))
    thr, gap = otsu_threshold(log)
    if gap < MIN_DECADES:
        thr = float(log.min())
    return log >= thr, float(10.0**thr)


def _distinct(x: np.ndarray) -> int:
    return len(np.unique(np.round(x, 5), axis=0))


def cluster_cells(features: np.ndarray, sources: int | None = None, seed: int = 0) -> np.ndarray:
    """(n, K) feature vectors of the sounding cells -> (n,) cluster index by k-means.

    `sources=None` picks 2..4 by the silhouette score, or 1 when even the best is below
    SILHOUETTE_MIN. Clusters are not ordered here.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(features)
    distinct = _distinct(features)
    if sources is not None:
        k = max(1, min(sources, distinct))
        if k < sources:
            msg = f"only {k} distinct sounding cells: {k} sources, not {sources}"
            warnings.warn(msg, stacklevel=2)
        if k == 1:
            return np.zeros(n, np.int64)
        return KMeans(k, n_init=10, random_state=seed).fit_predict(features)
    best, best_score = np.zeros(n, np.int64), SILHOUETTE_MIN
    for k in range(2, min(MAX_AUTO_SOURCES, distinct - 1) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(features)
        score = silhouette_score(features, labels)
        if score > best_score:
            best, best_score = labels, score
    return best


def group_cells(
    features: np.ndarray, energy: np.ndarray, sources: int | None = None
) -> tuple[np.ndarray, float]:
    """Per-cell features (h, w, K) and mean energy (h, w) -> (labels (h, w), energy threshold).

    labels: source index per cell, -1 for silent cells; source 0 holds the most energy.
    """
    sound, thr = sounding_cells(energy)
    labels = np.full(energy.shape, -1, np.int64)
    found = cluster_cells(features[sound], sources)
    totals = [energy[sound][found == c].sum() for c in range(found.max() + 1)]
    order = np.argsort(totals)[::-1]  # loudest first
    labels[sound] = np.argsort(order)[found]
    return labels, thr


# --- frames -----------------------------------------------------------------------------------


def net_frame_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h) the network sees: short side `size`, as `dataset.load_frame` scales (no crop)."""
    r = size / min(width, height)
    return max(size, round(width * r)), max(size, round(height * r))


def display_size(width: int, height: int, long_side: int = DISPLAY_LONG_SIDE) -> tuple[int, int]:
    """(w, h) of frame.jpg and overlay.mp4: long side <= `long_side`, both even (H.264 4:2:0)."""
    r = min(1.0, long_side / max(width, height))
    return max(2, int(width * r) // 2 * 2), max(2, int(height * r) // 2 * 2)


def cell_of(x: float, y: float, width: int, height: int, grid: tuple[int, int]) -> tuple[int, int]:
    """The feature-grid cell (row, col) under pixel (x, y) of a width x height frame."""
    h, w = grid
    return min(h - 1, int(y * h / height)), min(w - 1, int(x * w / width))


MAX_PIXEL = 1 << 20  # no video is wider or higher: a larger coordinate is a typo


def parse_points(text: str | None, size: int = 2, option: str = "--points") -> list[tuple]:
    """'x,y;x,y' -> [(x, y), ...]; with size=4, 'x0,y0,x1,y1;...' -> boxes.

    Coordinates are finite pixel numbers (inf, nan or 1e300 are refused, one line)."""
    if not text:
        return []
    points = []
    form = "x,y;x,y" if size == 2 else "x0,y0,x1,y1;x0,y0,x1,y1"
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        values = part.split(",")
        try:
            if len(values) != size:
                raise ValueError
            numbers = [float(v) for v in values]
        except ValueError:
            raise PixelPlayerError(f"{option} {text!r}: write pixels as '{form}'") from None
        for v, x in zip(values, numbers, strict=True):
            if not np.isfinite(x) or abs(x) > MAX_PIXEL:
                raise PixelPlayerError(
                    f"{option} {text!r}: {v} is not a pixel coordinate; give finite pixels "
                    f"in 0..{MAX_PIXEL} as '{form}'"
                )
        points.append(tuple(int(round(x)) for x in numbers))
    return points


def check_points(points: list[tuple[int, int]], info: MediaInfo) -> None:
    for x, y in points:
        if not (0 <= x < info.width and 0 <= y < info.height):
            raise PixelPlayerError(
                f"point ({x}, {y}) is outside the {info.width}x{info.height} frame of "
                f"{info.path}: x must be in 0..{info.width - 1} and y in 0..{info.height - 1}"
            )


def check_boxes(boxes: list[tuple[int, int, int, int]], info: MediaInfo) -> None:
    for x0, y0, x1, y1 in boxes:
        if not (0 <= x0 < x1 <= info.width and 0 <= y0 < y1 <= info.height):
            raise PixelPlayerError(
                f"box ({x0}, {y0}, {x1}, {y1}) is not inside the {info.width}x{info.height} "
                f"frame of {info.path} with x0 < x1 and y0 < y1"
            )


def box_cells(
    box: tuple[int, int, int, int], width: int, height: int, grid: tuple[int, int]
) -> np.ndarray:
    """(h, w) bool: the feature-grid cells whose centre lies in the box (at least the cell
    under the box's centre)."""
    h, w = grid
    x0, y0, x1, y1 = box
    ys = (np.arange(h) + 0.5) * height / h
    xs = (np.arange(w) + 0.5) * width / w
    inside = ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    inside[cell_of((x0 + x1) / 2, (y0 + y1) / 2, width, height, grid)] = True
    return inside


# --- results ----------------------------------------------------------------------------------


@dataclass
class VideoSeparation:
    """What `Separator.separate_video` finds; arrays are numpy, waveforms (., L) at `sr`."""

    sr: int
    mixture: np.ndarray  # (L,) the soundtrack, mono, at sr
    frame_times: np.ndarray  # (T,) s; sampled frame t shows [t, t + 1/fps)
    energy: np.ndarray  # (T, h, w) float32 sound energy per cell of the feature grid
    labels: np.ndarray  # (h, w) source index per cell, -1 for silent cells
    source_waves: np.ndarray  # (S, L)
    point_waves: np.ndarray  # (P, L)
    cell_waves: np.ndarray  # (grid * grid, L), row-major over a lattice spread over the frame
    source_masks: np.ndarray  # (S, h, w) bool: the cells of each source
    points: list[tuple[int, int]]  # (x, y) pixels of the original frame
    point_cells: np.ndarray  # (P, 2) feature-grid (row, col) under each point
    lattice_cells: np.ndarray  # (grid * grid, 2) feature-grid (row, col) of each lattice cell
    grid: int  # the lattice is grid x grid
    fps: float  # sampled frames per second
    width: int  # original frame size
    height: int
    duration: float  # s
    threshold: float  # mean cell energy from which a cell counts as sounding
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1
    box_waves: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # (T, h_m, w_m) in [0, 1]: where the motion goes with the sound (an audio-motion embedding's
    # response, `pixelplayer.motion_map`), when the separator has one
    motion: np.ndarray | None = None
    seconds: float = 0.0  # processing time, writing the files included
    # the soundtrack as players play it: which audio stream, where it starts on the video's
    # clock (s; placed there), and what was done to read it (one line each)
    audio_stream: int = 0
    audio_offset: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def feature_grid(self) -> tuple[int, int]:
        return self.labels.shape

    def cell_at(self, x: float, y: float) -> tuple[int, int]:
        """The feature-grid cell (row, col) under pixel (x, y) of the original frame."""
        return cell_of(x, y, self.width, self.height, self.feature_grid)

    def cell_centres(self) -> np.ndarray:
        """(h, w, 2) centre (x, y) of every feature-grid cell in original pixels."""
        h, w = self.feature_grid
        ys = (np.arange(h) + 0.5) * self.height / h
        xs = (np.arange(w) + 0.5) * self.width / w
        return np.stack(np.meshgrid(xs, ys), axis=-1)


@dataclass
class _Frames:
    """Visual features of the analysed frames of one video."""

    index: np.ndarray  # (A,) sorted indices of the analysed sampled frames
    raw: torch.Tensor  # (A, K, h, w) frame-net output before pooling and sigmoid
    count: int  # T, sampled frames in the video
    display: list[np.ndarray] | None  # T frames (Hd, Wd, 3) uint8, when outputs are written
    gray: list[np.ndarray] | None = None  # T small grayscale frames for the motion map

    def position(self, frames: np.ndarray) -> np.ndarray:
        """Position in `index` of the analysed frame nearest to each frame index."""
        return nearest(self.index, frames)


def nearest(values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `values` (n >= 1) for each query."""
    values, queries = np.asarray(values), np.asarray(queries)
    if len(values) == 1:
        return np.zeros(queries.shape, np.int64)
    i = np.clip(np.searchsorted(values, queries), 1, len(values) - 1)
    return np.where(queries - values[i - 1] <= values[i] - queries, i - 1, i)


# --- the separator ----------------------------------------------------------------------------


class Separator:
    """A trained PixelPlayer applied to whole videos: sources, points, a lattice of cells.

    With an audio-motion embedding (`ame`, reading `ame_size` px grayscale frames; an AMnet
    run brings its own) it also maps where the motion goes with the sound.
    """

    def __init__(
        self,
        masker: MaskModelSeparator,
        sample: SampleConfig,
        run: str | Path = "",
        ame: AudioMotionEmbedding | None = None,
        ame_size: int = 64,
    ):
        model = masker.model
        if not all(hasattr(model, a) for a in ("frame_net", "sound_features", "synth")):
            raise PixelPlayerError(
                f"{run}: a {type(model).__name__} has no pixel features; separate needs a "
                "PixelPlayer run"
            )
        self.masker, self.model, self.spec = masker, model, masker.spec
        self._own_spec = replace(masker.spec, combine="independent")
        self.sample, self.run = sample, str(run)
        self.device, self.dtype = masker.device, masker.dtype
        self._pullback: torch.Tensor | None = None
        self.ame, self.ame_size = ame, ame_size
        if ame is not None and abs(ame.sound.hop - sample.sr / sample.fps) > 1e-6:
            raise PixelPlayerError(
                f"the audio-motion embedding reads {sample.sr / ame.sound.hop:g} frames per "
                f"second, the run {sample.fps:g}: give one trained at the run's rate"
            )

    @classmethod
    def from_run(
        cls,
        run: str | Path,
        checkpoint: str = "best.pt",
        device: str | None = None,
        motion: str | Path | None = None,
    ) -> Separator:
        """Load RUN/config.yaml and RUN/<checkpoint>, as `pixelplayer eval` does. An AMnet run
        separates with its appearance stage and maps motion with its embedding; `motion`, an
        AME or AMnet run folder, adds (or replaces) the embedding."""
        from pixelplayer.config import load_config

        masker = MaskModelSeparator.from_run(run, checkpoint, device=device)
        sample = load_config(Path(run) / "config.yaml").sample
        ame, size = None, 64
        if isinstance(masker.model, AMNet):
            ame, size = masker.model.ame, sample.motion_size
            masker.model = masker.model.appearance
        if motion is not None:
            ame, size = load_motion_embedding(motion, device=masker.device)
        return cls(masker, sample, run, ame, size)

    # -- public --

    def separate_video(
        self,
        path: str | Path,
        sources: int | None = None,
        points: list[tuple[int, int]] | None = None,
        out: str | Path | None = None,
        grid: int = 7,
        progress: bool = True,
        map_fps: float | None = MAP_FPS,
        boxes: list[tuple[int, int, int, int]] | None = None,
        audio_stream: int | None = None,
    ) -> VideoSeparation:
        """Separate the sounds of the video at `path`; with `out`, also write the files there.

        sources: number of sources (None: chosen from the data). points: (x, y) pixels of the
        original frame to hear. grid: the lattice of cells heard in `cell_waves`. map_fps: the
        energy maps' visual features are at most 1 / map_fps s old (0: the windows' own frames
        only, fastest; None: every sampled frame, slowest; see the module notes). boxes:
        (x0, y0, x1, y1) pixel boxes to hear, pooled over the cells whose centre they hold.
        audio_stream: which audio stream to hear (from 0; None: the first that holds sound).
        The video is seen and heard as players show it: turned by its display matrix (points
        and boxes are pixels of the turned frame), its audio placed on the video's clock.
        """
        start = time.perf_counter()
        path = Path(path)
        if sources is not None and sources < 1:
            raise PixelPlayerError(f"--sources {sources}: give at least 1")
        if grid < 1:
            raise PixelPlayerError(f"grid {grid}: give at least 1")
        checks.number("map_fps", map_fps, 0, 1000)
        info = probe(path)
        if not info.has_video:
            raise MediaError(path, "no video stream", "separate needs a video, not only sound")
        if not info.has_audio:
            raise MediaError(path, "no audio stream", "separate needs the video's soundtrack")
        check_frame_size(info)
        points = [(int(x), int(y)) for x, y in (points or [])]
        check_points(points, info)
        boxes = [tuple(int(v) for v in b) for b in (boxes or [])]
        check_boxes(boxes, info)
        s = self.sample
        # (L,) on the video's clock; raises for silent audio
        track = load_soundtrack(path, sr=s.sr, mono=True, stream=audio_stream)
        mix = track.wav
        starts = window_starts(len(mix), s.audio_len, self.spec.hop)
        duration = max(info.duration, len(mix) / s.sr)
        bar = tqdm(
            total=round(duration, 1),
            desc=f"{path.name}: frames",
            bar_format=BAR_FORMAT,
            disable=not progress,
        )
        with bar, torch.inference_mode():
            want = self._wanted_frames(starts, duration, map_fps)
            frames = self._frames(path, info, want, out is not None, bar, duration)
            motion = None
            if self.ame is not None:
                motion = motion_map(self.ame, np.stack(frames.gray), mix, self.device)
            bar.reset(total=round(duration, 1))
            bar.set_description_str(f"{path.name}: sound")
            sound, window_vis, energy = self._windows(mix, starts, frames, bar)
            feat = tuple(energy.shape[1:])  # (h, w)
            cell_vis = window_vis.mean(0).permute(1, 2, 0).numpy()  # (h, w, K)
            labels, thr = group_cells(cell_vis, energy.mean(0).numpy(), sources)
            sources_at = [labels == i for i in range(int(labels.max()) + 1)]
            point_cells = np.array(
                [cell_of(x, y, info.width, info.height, feat) for x, y in points], np.int64
            ).reshape(-1, 2)
            lattice = _lattice_cells(grid, info.width, info.height, feat)
            regions = [
                *sources_at,
                *(_one_cell(r, c, feat) for r, c in [*point_cells, *lattice]),
                *(box_cells(b, info.width, info.height, feat) for b in boxes),
            ]
            waves = self._waves(mix, starts, sound, window_vis, np.stack(regions))
        parts = np.cumsum([len(sources_at), len(points), len(lattice)])
        src_waves, point_waves, cell_waves, box_waves = np.split(waves, parts)
        result = VideoSeparation(
            sr=s.sr,
            mixture=mix,
            frame_times=np.arange(frames.count) / s.fps,
            energy=energy.numpy().astype(np.float32),
            labels=labels,
            source_waves=src_waves,
            point_waves=point_waves,
            cell_waves=cell_waves,
            source_masks=np.stack(sources_at),
            points=points,
            point_cells=point_cells,
            lattice_cells=lattice,
            grid=grid,
            fps=float(s.fps),
            width=info.width,
            height=info.height,
            duration=duration,
            threshold=thr,
            boxes=boxes,
            box_waves=box_waves,
            motion=motion,
            audio_stream=track.stream,
            audio_offset=track.offset,
            notes=track.notes,
        )
        result.seconds = time.perf_counter() - start
        if out is not None:
            write_outputs(result, frames.display, path, Path(out), self.run, start)
            result.seconds = time.perf_counter() - start
        return result

    # -- frames --

    def _wanted_frames(self, starts: np.ndarray, duration: float, map_fps: float | None) -> set:
        """Sampled frame indices to run the frame net on (before clamping to the video's end):
        the windows' own frames, plus frames every 1 / map_fps s where those leave a gap."""
        s = self.sample
        want = set()
        for st in starts:
            want.update(max(int(t * s.fps), 0) for t in dataset.frame_times(st / s.sr, s))
        count = int(np.ceil(duration * s.fps)) + 1
        if map_fps is None:
            return want | set(range(count))
        if map_fps > 0:
            step = max(1, int(round(s.fps / map_fps)))
            have = np.array(sorted(want))
            for i in range(0, count, step):
                if np.abs(have[nearest(have, np.array([i]))[0]] - i) * 2 > step:
                    want.add(i)
        return want

    def _frames(
        self, path: Path, info: MediaInfo, want: set, keep: bool, bar, until: float = 0.0
    ) -> _Frames:
        """Decode every sampled frame once (the last held up to `until` s, as players hold it
        while the sound goes on); run the frame net on the wanted ones."""
        s = self.sample
        disp = display_size(info.width, info.height)
        net = net_frame_size(disp[0], disp[1], s.frame_size)
        shown: list[np.ndarray] = []
        gray: list[np.ndarray] = []
        index, raw, batch, batch_index = [], [], [], []
        last, count = None, 0

        def flush():
            if batch:
                raw.append(self._frame_net(np.stack(batch)))
                index.extend(batch_index)
                batch.clear()
                batch_index.clear()

        for i, frame in enumerate(iter_frames(path, s.fps, disp, until)):
            count, last = i + 1, frame
            if keep:
                shown.append(frame)
            if self.ame is not None:
                gray.append(gray_frame(frame, self.ame_size))
            if i in want:
                batch.append(_resize(frame, net))
                batch_index.append(i)
                if len(batch) == FRAME_BATCH:
                    flush()
            bar.update(max(0.0, min(1 / s.fps, bar.total - bar.n)))
        if max(want) >= count and count - 1 not in batch_index + index:
            batch.append(_resize(last, net))  # window frames past the end show the last frame
            batch_index.append(count - 1)
        flush()
        shown_or_none = shown if keep else None
        return _Frames(np.array(index), torch.cat(raw), count, shown_or_none, gray or None)

    def _frame_net(self, frames: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> raw per-pixel features (B, K, h, w) float32 on the CPU."""
        x = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            y = self.model.frame_net.forward_pixels(x)  # (B, K, 1, h, w)
        return y[:, :, 0].float().cpu()

    def _pool(self, raw: torch.Tensor) -> torch.Tensor:
        """(..., T_f, K, h, w) raw features of a window's frames -> (..., K, h, w), as
        `PixelPlayer.pixel_features` pools them (max over time, then sigmoid)."""
        return torch.sigmoid(raw.amax(dim=-4))

    # -- sound, window features and energy maps --

    def _windows(self, mix: np.ndarray, starts: np.ndarray, frames: _Frames, bar):
        """-> (sound features per window batch, window pixel features (n, K, h, w),
        energy maps (T, h, w))."""
        s, win = self.sample, self.sample.audio_len
        padded = np.zeros(int(starts[-1]) + win, np.float32)
        padded[: len(mix)] = mix
        # the window's own frames, as in training: clamped to the video's frames
        last = frames.count - 1
        shown = [
            [min(max(int(t * s.fps), 0), last) for t in dataset.frame_times(st / s.sr, s)]
            for st in starts
        ]
        pos = np.searchsorted(frames.index, np.array(shown))  # (n, T_f), all analysed
        window_vis = self._pool(frames.raw[torch.from_numpy(pos)])  # (n, K, h, w)

        # each sampled frame: its nearest analysed frame, the window whose centre is nearest
        t_mid = (np.arange(frames.count) + 0.5) / s.fps
        owner = nearest((starts + win / 2) / s.sr, t_mid)  # (T,) window of each frame
        vis_pos = frames.position(np.arange(frames.count))

        sound, energy = [], []
        for b0 in range(0, len(starts), WINDOW_BATCH):
            ws = np.arange(b0, min(len(starts), b0 + WINDOW_BATCH))
            chunk = torch.from_numpy(np.stack([padded[st : st + win] for st in starts[ws]]))
            spec, mag = network_input(chunk.to(self.device), self.spec)
            with autocast(self.device, self.dtype):
                feats = self.model.sound_features(
                    mag.contiguous(memory_format=torch.channels_last)
                )  # (B, K, R, Tc)
            sound.append(feats)
            power = self._power_on_net_layout(spec)  # (B, R, Tc)
            for j, w in enumerate(ws):
                mine = np.flatnonzero(owner == w)
                if len(mine):
                    vis = torch.sigmoid(frames.raw[torch.from_numpy(vis_pos[mine])])
                    e = self._frame_energy(vis, mine, starts[w], feats[j], power[j])
                    energy.append((mine, e))
            last = ws[-1] == len(starts) - 1
            covered = bar.total if last else min(bar.total, (starts[ws[-1]] + win) / s.sr)
            bar.update(max(0.0, covered - bar.n))
        maps = torch.zeros(frames.count, *window_vis.shape[-2:])
        for mine, e in energy:
            maps[torch.from_numpy(mine)] = e
        return sound, window_vis, maps

    def _power_on_net_layout(self, spec: torch.Tensor) -> torch.Tensor:
        """|mixture|^2 (B, bins, Tc) pulled back onto the net's frequency rows -> (B, R, Tc).

        The net's mask m (R rows) reaches the linear bins as W m (`SpecConfig.from_net` is
        linear), so sum_f |S|^2 (W m^2)_f = sum_r m_r^2 (W^T |S|^2)_r. Exact for binary masks;
        for soft ones it squares before, not after, interpolating between two adjacent rows.
        """
        r = self.spec.freq_rows if self.spec.log_freq else self.spec.bins
        if self._pullback is None or self._pullback.shape[1] != r:
            eye = torch.eye(r, device=spec.device)[None, None]  # (1, 1, R, R): columns = rows
            self._pullback = self.spec.from_net(eye)[0, 0]  # (bins, R)
        return torch.einsum("fr,bft->brt", self._pullback, spec.abs().square())

    def _frame_energy(
        self,
        vis: torch.Tensor,
        frames: np.ndarray,
        start: int,
        sound: torch.Tensor,
        power: torch.Tensor,
    ) -> torch.Tensor:
        """Energy per pixel of each frame over its own time span -> (F, h, w).

        vis: (F, K, h, w) features of the frames; sound (K, R, Tc) and power (R, Tc) of the
        window that starts at sample `start`.
        """
        s, hop = self.sample, self.spec.hop
        n_f, k, h, w = vis.shape
        tc = sound.shape[-1]
        cols = max(1, int(round(s.sr / s.fps / hop)))  # STFT columns in one frame's span
        centre = ((frames + 0.5) / s.fps * s.sr - start) / hop  # the span's centre, in columns
        first = np.clip(np.round(centre - (cols - 1) / 2).astype(np.int64), 0, max(0, tc - cols))
        idx = torch.from_numpy(first[:, None] + np.arange(min(cols, tc))).to(sound.device)
        # float32, outside autocast: these are many small products, where bfloat16 gains
        # nothing and costs conversions; and the chunks stay in cache (measured 3x faster)
        snd = sound[:, :, idx].permute(2, 0, 1, 3).float()  # (F, K, R, c)
        pwr = power[:, idx].permute(1, 0, 2).reshape(n_f, -1, 1).float()  # (F, R*c, 1)
        flat = vis.reshape(n_f, k, h * w).transpose(1, 2).to(sound.device)  # (F, P, K)
        per_pixel = snd.shape[2] * snd.shape[3]
        pixels = min(h * w, max(1, CHUNK_ELEMENTS // per_pixel))
        frames_per = max(1, CHUNK_ELEMENTS // (pixels * per_pixel))
        out = torch.empty(n_f, h * w, device=sound.device)
        for f0 in range(0, n_f, frames_per):
            f1 = f0 + frames_per
            for p0 in range(0, h * w, pixels):
                p1 = p0 + pixels
                logits = self.model.synth.forward_flat(flat[f0:f1, p0:p1], snd[f0:f1])
                m = self._masks(logits).square_().flatten(2)  # (F', P', R*c)
                out[f0:f1, p0:p1] = torch.bmm(m, pwr[f0:f1])[..., 0]
        return out.reshape(n_f, h, w).cpu()

    def _masks(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits of single pixels or regions -> masks in [0, 1], thresholded as in `eval`.

        Always a sigmoid each: a pixel's sound is its own, it has no rivals to share bins with.
        """
        return logits_to_masks(logits, self._own_spec, self.masker.threshold)

    # -- waveforms --

    def _waves(
        self,
        mix: np.ndarray,
        starts: np.ndarray,
        sound: list[torch.Tensor],
        window_vis: torch.Tensor,
        regions: np.ndarray,
    ) -> np.ndarray:
        """The mixture masked by the feature vector of each region (V, h, w) -> (V, L).

        A region's vector is the max over its cells of each window's own pixel features: the
        way training pools a clip's pixels into its vector (sigmoid(max) = max(sigmoid)), and it
        follows what is seen there while the window plays. On the synthetic duets with
        the CPU preset pooling separated instruments by their boxes 2.5 dB better than the mean
        over the cells (3.6 vs 1.1 dB SDR gain). Identical regions are computed once.
        Overlap-add happens on the masks: each window's mask enters the whole video's mask
        with weights that sum to one in every STFT column (window starts are whole columns),
        then one `masks_to_waves` per region. Since the iSTFT is linear this is the weighted
        overlap-add of the windows' masked spectrograms, at half the iSTFT work of adding
        waveforms (every column is inverted once, not twice).
        """
        hop, win = self.spec.hop, self.sample.audio_len
        uniq, back = np.unique(regions.reshape(len(regions), -1), axis=0, return_inverse=True)
        cells = window_vis.flatten(2).to(self.device)  # (n, K, h*w)
        uniq_t = torch.from_numpy(uniq).to(self.device)  # (U, h*w) bool
        padded = np.zeros(int(starts[-1]) + win, np.float32)
        padded[: len(mix)] = mix
        spec, _ = network_input(torch.from_numpy(padded)[None].to(self.device), self.spec)
        cols = sound[0].shape[-1]  # STFT columns per window
        offsets = starts // hop
        blend = torch.from_numpy(overlap_add_weights(offsets, cols)).to(self.device)  # (n, Tc)
        per = max(1, int(WAVE_BYTES // (spec.numel() * 8)))  # regions per pass, bounds memory
        out = []
        for v0 in range(0, len(uniq), per):
            part = uniq_t[v0 : v0 + per]  # (V', h*w)
            masks = torch.zeros(len(part), sound[0].shape[2], spec.shape[-1], device=spec.device)
            for b, feats in enumerate(sound):
                ws = np.arange(b * WINDOW_BATCH, b * WINDOW_BATCH + len(feats))
                logits = self._region_logits(cells[torch.from_numpy(ws)], part, feats)
                m = self._masks(logits) * blend[torch.from_numpy(ws), None, None]  # (B, V', R, Tc)
                for j, w in enumerate(ws):
                    masks[:, :, offsets[w] : offsets[w] + cols] += m[j]
            waves = masks_to_waves(masks[None], spec, len(padded), self.spec)[0]  # (V', Lp)
            out.append(waves[:, : len(mix)].float().cpu().numpy())
        return np.concatenate(out)[np.asarray(back).reshape(-1)]

    def _region_logits(
        self, cells: torch.Tensor, regions: torch.Tensor, sound: torch.Tensor
    ) -> torch.Tensor:
        """Mask logits of regions of the feature grid -> (B, V, R, Tc).

        cells (B, K, P): each window's features of the P cells; regions (V, P) bool; sound
        (B, K, R, Tc). A region is heard as its model was trained to hear a clip: its cells'
        features max-pooled into one vector.
        """
        with autocast(self.device, self.dtype):
            vis = torch.stack([cells[:, :, r].amax(-1) for r in regions], dim=1)  # (B, V, K)
            return self.model.synth.forward_flat(vis, sound)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[1::-1] == tuple(size):
        return frame
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def _one_cell(row: int, col: int, grid: tuple[int, int]) -> np.ndarray:
    m = np.zeros(grid, bool)
    m[row, col] = True
    return m


def _lattice_cells(grid: int, width: int, height: int, feat: tuple[int, int]) -> np.ndarray:
    """(grid * grid, 2) feature cell under the centre of each cell of a grid x grid lattice."""
    cells = [
        cell_of((j + 0.5) * width / grid, (i + 0.5) * height / grid, width, height, feat)
        for i in range(grid)
        for j in range(grid)
    ]
    return np.array(cells, np.int64).reshape(-1, 2)


# --- pictures ---------------------------------------------------------------------------------


def heat_levels(energy: np.ndarray, ref: float | None = None) -> np.ndarray:
    """Energy -> [0, 1] as amplitude, sqrt(energy / ref) (default ref: the maximum).

    Linear, not in dB: mask energies of sounding and silent cells often differ by less than
    20 dB, and a log scale then colours every cell alike.
    """
    ref = float(energy.max()) if ref is None else ref
    if ref <= 0:
        return np.zeros_like(energy, np.float32)
    return np.sqrt(np.clip(energy / ref, 0, 1)).astype(np.float32)


def blend_heat(frames: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 frames and (T, h, w) levels in [0, 1] -> heat overlays, uint8.

    Maps are upsampled bilinearly to the frame; quiet cells leave the picture as it is.
    (torch, not numpy: multithreaded, a third of the time on the overlay's frames)
    """
    t, hh, ww = frames.shape[:3]
    up = F.interpolate(torch.from_numpy(levels)[:, None], size=(hh, ww), mode="bilinear")
    up = up[:, 0].clamp_(0, 1)  # (T, H, W)
    colour = torch.from_numpy(LUT)[(up * 255).long()].float()  # (T, H, W, 3)
    base = torch.from_numpy(np.array(frames)).float()  # a copy: decoded frames are read-only
    out = base.add_((colour - base).mul_(up.mul_(0.7)[..., None]))
    return out.round_().to(torch.uint8).numpy()


def highlight(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Darken the frame outside the cells of `mask` (h, w); (H, W, 3) uint8."""
    hh, ww = frame.shape[:2]
    up = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((ww, hh), Image.NEAREST))
    keep = (up > 127)[..., None]
    return np.where(keep, frame, (frame * 0.25).astype(np.uint8))


# --- files ------------------------------------------------------------------------------------


OUTPUT_FILES = {"sources": "source", "points": "point", "cells": "cell", "boxes": "box"}


def _overlay_audio(path: Path, stream: int | None = None) -> tuple[np.ndarray, int]:
    """The original soundtrack at its own rate, on the video's clock, (L, C) with C <= 2,
    for overlay.mp4."""
    import av

    track = load_soundtrack(path, sr=None, mono=False, allow_silent=True, stream=stream)
    wav, sr = track.wav, track.sr
    if wav.shape[1] > 2:
        wav = downmix(wav)[0][:, None]
    rates = av.codec.Codec("aac", "w").audio_rates or []
    if rates and sr not in rates:  # AAC has a fixed list of rates
        wav, sr = resample(wav, sr, 44100), 44100
    return wav, sr


def load_motion_embedding(run: str | Path, device=None) -> tuple[AudioMotionEmbedding, int]:
    """The audio-motion embedding of an AME or AMnet run -> (model, its frame size)."""
    from pixelplayer.config import load_config
    from pixelplayer.models.registry import load_run_model

    need = "--motion needs an AME or AMnet run"
    model, _ = load_run_model(run, AMNet, AudioMotionEmbedding, needed=need)
    sample = load_config(Path(run) / "config.yaml").sample
    if isinstance(model, AMNet):
        model, size = model.ame, sample.motion_size
    else:
        size = sample.frame_size
    return model.to(device or "cpu"), size


def write_outputs(
    result: VideoSeparation,
    frames: list[np.ndarray] | None,
    video: Path,
    out: Path,
    model: str = "",
    start: float | None = None,
) -> Path:
    """Write the files the separation page reads; returns out/manifest.json."""
    if not frames:
        raise PixelPlayerError(f"{video}: no frames kept to draw the outputs from")
    r, sr = result, result.sr
    out.mkdir(parents=True, exist_ok=True)
    for sub, stem in OUTPUT_FILES.items():  # an earlier run's files would be left unnamed
        for old in (out / sub).glob(f"{stem}_*"):
            old.unlink()
    for sub in ("sources", "points", "cells") + (("boxes",) if r.boxes else ()):
        (out / sub).mkdir(exist_ok=True)
    frame = frames[len(frames) // 2]
    dh, dw = frame.shape[:2]
    Image.fromarray(frame).save(out / "frame.jpg", quality=90)
    np.save(out / "energy.npy", r.energy.astype(np.float32))
    mean = r.energy.mean(0)
    Image.fromarray(blend_heat(frame[None], heat_levels(mean)[None])[0]).save(out / "energy.png")
    motion_files = {}
    if r.motion is not None:
        np.save(out / "motion.npy", r.motion)
        heat = heat_levels(r.motion.mean(0))[None]
        Image.fromarray(blend_heat(frame[None], heat)[0]).save(out / "motion.png")
        motion_files = {"motion": "motion.npy", "motion_png": "motion.png"}
    else:
        for old in ("motion.npy", "motion.png"):  # an earlier run's map would be shown
            (out / old).unlink(missing_ok=True)
    levels = heat_levels(r.energy)
    overlay = np.empty((len(frames), dh, dw, 3), np.uint8)
    for t0 in range(0, len(frames), 32):  # bounded float temporaries
        part = np.stack(frames[t0 : t0 + 32])
        overlay[t0 : t0 + 32] = blend_heat(part, levels[t0 : t0 + 32])
    audio, audio_sr = _overlay_audio(video, r.audio_stream)
    write_video(out / "overlay.mp4", overlay, r.fps, audio, audio_sr)
    save_audio(out / "mixture.wav", r.mixture, sr)

    manifest_sources = []
    for i, wave in enumerate(r.source_waves):
        base = f"sources/source_{i}"
        save_audio(out / f"{base}.wav", wave, sr)
        Image.fromarray(highlight(frame, r.source_masks[i])).save(out / f"{base}.png")
        spectrogram_png(out / f"{base}_spec.png", wave)
        cells = [[int(a), int(b)] for a, b in np.argwhere(r.source_masks[i])]
        manifest_sources.append(
            {
                "index": i,
                "wav": f"{base}.wav",
                "png": f"{base}.png",
                "spectrogram": f"{base}_spec.png",
                "cells": cells,
            }
        )
    manifest_points = []
    for i, ((x, y), wave) in enumerate(zip(r.points, r.point_waves, strict=True)):
        base = f"points/point_{i}"
        save_audio(out / f"{base}.wav", wave, sr)
        spectrogram_png(out / f"{base}_spec.png", wave)
        manifest_points.append(
            {"x": x, "y": y, "wav": f"{base}.wav", "spectrogram": f"{base}_spec.png"}
        )
    manifest_boxes = []
    for i, (box, wave) in enumerate(zip(r.boxes, r.box_waves, strict=True)):
        base = f"boxes/box_{i}"
        save_audio(out / f"{base}.wav", wave, sr)
        spectrogram_png(out / f"{base}_spec.png", wave)
        manifest_boxes.append(
            {"box": list(box), "wav": f"{base}.wav", "spectrogram": f"{base}_spec.png"}
        )
    manifest_cells = []
    for n, wave in enumerate(r.cell_waves):
        row, col = divmod(n, r.grid)
        name = f"cells/cell_{row}_{col}.wav"
        save_audio(out / name, wave, sr)
        fr, fc = r.lattice_cells[n]
        manifest_cells.append(
            {
                "row": row,
                "col": col,
                "x0": round(col * dw / r.grid),
                "y0": round(row * dh / r.grid),
                "x1": round((col + 1) * dw / r.grid),
                "y1": round((row + 1) * dh / r.grid),
                "wav": name,
                "feature_cell": [int(fr), int(fc)],
            }
        )
    manifest = {
        "video": str(video),
        "width": r.width,
        "height": r.height,
        "duration": round(r.duration, 3),
        "audio": {
            "stream": r.audio_stream,
            "offset": round(r.audio_offset, 4),
            "notes": list(r.notes),
        },
        "sr": sr,
        "fps": r.fps,
        "grid": list(r.feature_grid),
        "frame": "frame.jpg",
        "energy": "energy.npy",
        "energy_png": "energy.png",
        **motion_files,
        "overlay": "overlay.mp4",
        "mixture": "mixture.wav",
        "sources": manifest_sources,
        "points": manifest_points,
        "cells": manifest_cells,
        "boxes": manifest_boxes,
        "model": model,
        "seconds": round(time.perf_counter() - start if start else r.seconds, 2),
    }
    path = out / "manifest.json"
    tmp = path.with_name("manifest.json.part")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(path)  # last: a manifest means the folder is complete
    return path


# --- command line -----------------------------------------------------------------------------


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "separate",
        help="separate and localize the sounds of videos with a trained run",
        description=(
            "Separate the sounds of whole videos (any length, size, frame rate, sample rate) "
            "with a trained PixelPlayer run: a per-frame map of where the sound comes from, the "
            "sounding regions grouped into sources, the sound of chosen pixels and of a grid of "
            "cells over the frame. Writes OUT/manifest.json with frame.jpg, energy.npy/.png, "
            "overlay.mp4 (heat map over the video, original audio), mixture.wav, "
            "sources/source_<i>.wav|.png|_spec.png, points/point_<i>.wav|_spec.png and "
            "cells/cell_<r>_<c>.wav; and index.html when the page module is installed."
        ),
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files with a soundtrack")
    p.add_argument("--model", required=True, metavar="RUN", help="trained run folder")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder; with several videos DIR/<video stem> (default: separated/<stem>)",
    )
    p.add_argument(
        "--sources", type=int, metavar="N", help="number of sources (default: chosen from data)"
    )
    p.add_argument(
        "--points",
        metavar="'x,y;x,y'",
        help="pixels of the original frame to hear, e.g. '120,80;300,95'",
    )
    p.add_argument(
        "--boxes",
        metavar="'x0,y0,x1,y1;...'",
        help="pixel boxes of the original frame to hear (their cells pooled), e.g. '10,10,90,80'",
    )
    p.add_argument("--grid", type=int, default=7, metavar="N", help="lattice of N x N cells (7)")
    p.add_argument(
        "--map-fps",
        type=_map_fps,
        default=MAP_FPS,
        metavar="F|all",
        help=f"fresh visual features per second for the energy maps (default {MAP_FPS:g}; 0: "
        "only the frames the audio windows use, fastest; 'all': every sampled frame, slowest)",
    )
    p.add_argument(
        "--motion",
        metavar="RUN",
        help="an AME or AMnet run: also map where the motion goes with the sound (motion.npy, "
        "motion.png); an AMnet --model maps it with its own embedding",
    )
    p.add_argument(
        "--audio-stream",
        type=int,
        metavar="N",
        help="the audio stream to hear, from 0 (default: the first that holds sound)",
    )
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run (best.pt)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _map_fps(text: str) -> float | None:
    """'all' or a number; its range is checked with the other options (one line)."""
    if text == "all":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give frames per second (>= 0) or 'all'"
        ) from None


def output_dirs(videos: list[Path], out: str | None) -> list[Path]:
    """One folder per video: OUT itself for one video, else OUT/<stem> (stems made unique)."""
    if out is not None and len(videos) == 1:
        return [Path(out)]
    root = Path(out) if out is not None else Path("separated")
    dirs, seen = [], {}
    for v in videos:
        n = seen[v.stem] = seen.get(v.stem, 0) + 1
        dirs.append(root / (v.stem if n == 1 else f"{v.stem}-{n}"))
    return dirs


def _write_page(out: Path) -> Path | None:
    try:
        return write_separation_page(out)
    except Exception as exc:  # the outputs are written; a page problem must not fail the run
        print(f"pixelplayer: warning: no page for {out} ({type(exc).__name__}: {exc})")
        return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


MAX_GRID = 64  # cells per side of the lattice: 4096 waveforms
MAX_SOURCES = 64


def check_arguments(args: argparse.Namespace) -> None:
    """Every number, the device and every output folder, before any work (one line each)."""
    checks.number("--sources", args.sources, 1, MAX_SOURCES, integer=True)
    checks.number("--grid", args.grid, 1, MAX_GRID, integer=True)
    checks.number("--map-fps", args.map_fps, 0, 1000)
    checks.number("--audio-stream", getattr(args, "audio_stream", None), 0, 1000, integer=True)
    checks.device(args.device)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, PixelPlayerError):
        return str(exc)
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def run(args: argparse.Namespace) -> int:
    videos = [Path(v) for v in args.videos]
    check_arguments(args)
    points = parse_points(args.points)
    boxes = parse_points(args.boxes, 4, "--boxes")
    outs = output_dirs(videos, args.out)
    for out in outs:  # before the model loads: a path in the way fails now, not after the work
        checks.output_folder(out)
    separator = Separator.from_run(
        args.model, args.checkpoint, device=args.device, motion=args.motion
    )
    failed: list[tuple[Path, str]] = []
    for video, out in zip(videos, outs, strict=True):
        try:
            r = separator.separate_video(
                video,
                sources=args.sources,
                points=points,
                out=out,
                grid=args.grid,
                progress=not args.no_progress,
                map_fps=args.map_fps,
                boxes=boxes,
                audio_stream=getattr(args, "audio_stream", None),
            )
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            # one video: its error is the command's; several: the batch goes on past it
            if len(videos) == 1 or getattr(args, "debug", False):
                raise
            failed.append((video, _failure(exc)))
            print(f"pixelplayer: error: {failed[-1][1]}", file=sys.stderr)
            continue
        for note in r.notes:
            print(f"{video}: note: {note}")
        print(
            f"{video}: {r.duration:.1f} s, {_count(len(r.source_waves), 'source')}, "
            f"{_count(len(r.points), 'point')}, {r.grid}x{r.grid} cells in {r.seconds:.1f} s "
            f"-> {out}/manifest.json"
        )
        page = _write_page(out)
        if page is not None:
            print(f"page: {page}")
    if failed:
        names = ", ".join(printable(str(v)) for v, _ in failed)
        print(
            f"pixelplayer: separated {len(videos) - len(failed)} of {len(videos)} videos; "
            f"{len(failed)} failed: {names}",
            file=sys.stderr,
        )
        return 1
    return 0
