"""Mix-and-separate sampling: N solo clips are mixed, and each is the target of its own frames.

Training draws fresh mixtures from a seeded generator (seed, epoch, item), so a resumed run
sees the same data as an uninterrupted one. Evaluation reads a fixed mixture list from a file,
so every method is scored on the same mixtures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import Dataset

from pixelplayer.audio import resample
from pixelplayer.data.index import Clip, frame_path
from pixelplayer.errors import MediaError, PixelPlayerError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass
class SampleConfig:
    """How one training or evaluation example is cut from the clips."""

    sr: int = 11025
    audio_len: int = 65535  # samples, about 6 s at 11025 Hz
    fps: float = 8.0  # frame rate of the prepared frames
    num_frames: int = 3  # frames per clip
    stride_frames: int = 24  # distance between those frames, in frames
    frame_size: int = 224
    num_mix: int = 2
    distinct_classes: bool = True  # partners drawn from other classes only
    random_gain: bool = True  # training only


@dataclass
class Mixture:
    """One mixture: which clips (by video id), where their audio windows start, their gains."""

    videos: list[str]
    starts: list[float]  # seconds
    gains: list[float] = field(default_factory=list)


def usable_clips(clips: list[Clip], cfg: SampleConfig) -> tuple[list[Clip], int]:
    """Clips long enough for one window; returns (good clips, how many were too short)."""
    need = cfg.audio_len / cfg.sr
    good = [c for c in clips if c.duration >= need]
    return good, len(clips) - len(good)


def draw_mixture(
    rng: np.random.Generator, clips: list[Clip], cfg: SampleConfig, train: bool
) -> Mixture:
    """Pick `num_mix` clips (of distinct classes when asked) and a window in each."""
    by_class: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        by_class.setdefault(c.cls, []).append(i)
    if cfg.distinct_classes and len(by_class) >= cfg.num_mix:
        classes = rng.choice(sorted(by_class), size=cfg.num_mix, replace=False)
        picks = [by_class[c][rng.integers(len(by_class[c]))] for c in classes]
    else:
        picks = list(rng.choice(len(clips), size=cfg.num_mix, replace=False))
    window = cfg.audio_len / cfg.sr
    starts = [float(rng.uniform(0.0, max(clips[i].duration - window, 0.0))) for i in picks]
    gains = [float(rng.uniform(0.5, 1.5)) if train and cfg.random_gain else 1.0 for _ in picks]
    return Mixture([clips[i].video_id for i in picks], starts, gains)


def write_mixture_list(path: Path, mixtures: list[Mixture], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps({**meta, "mixtures": [asdict(m) for m in mixtures]}, indent=1))
    tmp.replace(path)


def read_mixture_list(path: Path) -> tuple[list[Mixture], dict]:
    try:
        data = json.loads(Path(path).read_text())
        mixtures = [Mixture(**m) for m in data.pop("mixtures")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PixelPlayerError(f"{path}: not a mixture list ({exc}); delete it to redraw") from exc
    return mixtures, data


def fixed_mixtures(
    clips: list[Clip], cfg: SampleConfig, n: int, seed: int, path: Path | None = None
) -> list[Mixture]:
    """The evaluation mixture list: read from `path` when it exists, else drawn and written."""
    meta = {"n": n, "num_mix": cfg.num_mix, "seed": seed, "distinct": cfg.distinct_classes}
    meta["window_s"] = cfg.audio_len / cfg.sr
    if path is not None and path.is_file():
        mixtures, stored = read_mixture_list(path)
        if stored.get("window_s", meta["window_s"]) != meta["window_s"]:
            raise PixelPlayerError(
                f"{path}: drawn for {stored['window_s']:.3f} s windows, not "
                f"{meta['window_s']:.3f} s; delete it or give another path"
            )
        known = {c.video_id for c in clips}
        missing = {v for m in mixtures for v in m.videos} - known
        if missing:
            raise PixelPlayerError(
                f"{path}: names {len(missing)} clips not in this index "
                f"(e.g. {sorted(missing)[0]}); delete the list to draw a new one"
            )
        return mixtures
    rng = np.random.default_rng(seed)
    mixtures = [draw_mixture(rng, clips, cfg, train=False) for _ in range(n)]
    if path is not None:
        write_mixture_list(path, mixtures, meta)
    return mixtures


def read_window(clip: Clip, start: float, cfg: SampleConfig) -> np.ndarray:
    """(audio_len,) float32 audio from `start` seconds; zero-padded past the clip's end."""
    try:
        info = sf.info(str(clip.audio_path))
        first = int(round(start * info.samplerate))
        count = int(np.ceil(cfg.audio_len * info.samplerate / cfg.sr))
        wav, rate = sf.read(
            str(clip.audio_path), start=first, frames=count, dtype="float32", always_2d=True
        )
    except Exception as exc:
        raise MediaError(clip.audio_path, "unreadable", str(exc)) from exc
    wav = wav.mean(axis=1)
    if rate != cfg.sr:
        wav = resample(wav, rate, cfg.sr)
    out = np.zeros(cfg.audio_len, np.float32)
    out[: min(len(wav), cfg.audio_len)] = wav[: cfg.audio_len]
    if not np.isfinite(out).all():
        raise MediaError(clip.audio_path, "non-finite audio", f"window at {start:.2f} s")
    return out


def frame_times(start: float, cfg: SampleConfig) -> list[float]:
    """Times (s) of the frames shown for an audio window: centred on it, `stride` apart."""
    centre = start + cfg.audio_len / cfg.sr / 2
    half = (cfg.num_frames - 1) / 2
    return [centre + (j - half) * cfg.stride_frames / cfg.fps for j in range(cfg.num_frames)]


def load_frame(path: Path, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """(size, size, 3) uint8: short side resized, then centre crop (or random crop + flip)."""
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except Exception as exc:
        raise MediaError(path, "unreadable", str(exc)) from exc
    scale_to = size if rng is None else int(round(size * 1.14))
    w, h = img.size
    r = scale_to / min(w, h)
    img = img.resize((max(size, round(w * r)), max(size, round(h * r))), Image.BILINEAR)
    w, h = img.size
    if rng is None:
        x, y = (w - size) // 2, (h - size) // 2
    else:
        x, y = int(rng.integers(w - size + 1)), int(rng.integers(h - size + 1))
    return np.asarray(img.crop((x, y, x + size, y + size)))


def load_frames(clip: Clip, times: list[float], fps: float, size: int, rng=None) -> np.ndarray:
    """(3, T, size, size) float32, ImageNet-normalised; one crop and flip for all T frames."""
    seed = None if rng is None else int(rng.integers(2**31))
    flip = rng is not None and rng.random() < 0.5
    out = []
    for t in times:
        i = min(max(int(t * fps), 0), clip.num_frames - 1)  # frame k shows time k / fps
        crop_rng = None if seed is None else np.random.default_rng(seed)
        img = load_frame(frame_path(clip.frames_dir, i), size, crop_rng)
        out.append(img[:, ::-1] if flip else img)
    return np.ascontiguousarray(normalize_frames(np.stack(out)).transpose(3, 0, 1, 2))


def normalize_frames(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 RGB -> float32 of the same shape, ImageNet-normalised."""
    return (frames.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def frames_to_pixels(frames: np.ndarray) -> np.ndarray:
    """The inverse of `normalize_frames`: (..., H, W, 3) float32 -> uint8 RGB."""
    return ((frames * IMAGENET_STD + IMAGENET_MEAN).clip(0, 1) * 255).round().astype(np.uint8)


class MixDataset(Dataset):
    """Mixtures of N clips -> dict(frames (N, 3, T, S, S), audios (N, L), mix (L,), classes (N,)).

    With `mixtures` given it serves that fixed list; otherwise it draws `length` random ones
    per epoch from seed (seed, epoch, item). `audios` are the sources as mixed (gain applied,
    divided by N), so mix == audios.sum(0) exactly.
    """

    def __init__(
        self,
        clips: list[Clip],
        cfg: SampleConfig,
        mixtures: list[Mixture] | None = None,
        length: int = 1000,
        seed: int = 0,
        train: bool = True,
    ):
        self.clips, too_short = usable_clips(clips, cfg)
        self.too_short = too_short
        if len(self.clips) < cfg.num_mix:
            raise PixelPlayerError(
                f"{len(self.clips)} clips are long enough for a {cfg.audio_len / cfg.sr:.1f} s "
                f"window ({too_short} too short); need at least {cfg.num_mix}"
            )
        self.cfg, self.mixtures, self.train = cfg, mixtures, train
        self.length = len(mixtures) if mixtures is not None else length
        self.seed, self.epoch = seed, 0
        self.by_id = {c.video_id: c for c in self.clips}
        self.classes = sorted({c.cls for c in self.clips})

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def mixture(self, i: int) -> Mixture:
        if self.mixtures is not None:
            return self.mixtures[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        return draw_mixture(rng, self.clips, self.cfg, self.train)

    def __getitem__(self, i: int) -> dict:
        cfg = self.cfg
        mix = self.mixture(i)
        rng = np.random.default_rng((self.seed, self.epoch, i, 1)) if self.train else None
        n = len(mix.videos)
        audios = np.zeros((n, cfg.audio_len), np.float32)
        frames = []
        for j, (vid, start) in enumerate(zip(mix.videos, mix.starts, strict=True)):
            clip = self.by_id[vid]
            gain = mix.gains[j] if mix.gains else 1.0
            audios[j] = read_window(clip, start, cfg) * gain / n
            frames.append(load_frames(clip, frame_times(start, cfg), cfg.fps, cfg.frame_size, rng))
        return {
            "frames": torch.from_numpy(np.stack(frames)),
            "audios": torch.from_numpy(audios),
            "mix": torch.from_numpy(audios.sum(0)),
            "classes": torch.tensor([self.classes.index(self.by_id[v].cls) for v in mix.videos]),
        }
