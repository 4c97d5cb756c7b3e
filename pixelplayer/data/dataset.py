"""Mix-and-separate sampling: N solo clips are mixed, and each is the target of its own frames.

Training draws fresh mixtures from a seeded generator (seed, epoch, item), so a resumed run
sees the same data as an uninterrupted one. Evaluation reads a fixed mixture list from a file,
so every method is scored on the same mixtures.

Clips are decoded from their JPEG frames and wav files, or served from a cache of decoded arrays
(`pixelplayer data cache`, see data/cache.py) when one matches the frame size and rate: the
same shapes and dtypes, frames identical for training crops, audio within an int16 step.
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

from pixelplayer.atomic import write_text_atomic
from pixelplayer.audio import resample
from pixelplayer.data.cache import ClipCache, find_cache, open_cache, resize_short_side, stored_side
from pixelplayer.data.index import Clip, frame_path
from pixelplayer.errors import MediaError, PixelPlayerError


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
    # training only: clips shown with each mixture but not heard (gain 0), so their target is
    # silence; without them every picture the model sees is sounding, and nothing teaches a
    # pixel that shows no instrument, or a silent one, to stay quiet
    silent: int = 0
    # share of mixtures whose clips all come from one class (1: every one). Two players that
    # look alike are what appearance alone cannot separate and motion can (AMnet)
    same_class: float = 0.0
    # > 0: also serve each clip's motion, every frame of the audio window (and the one before)
    # as `motion_size` px grayscale (AMnet's audio-motion embedding reads them)
    motion_size: int = 0


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


def clips_by_class(clips: list[Clip]) -> dict[str, list[int]]:
    """class -> indices of its clips in `clips`."""
    by_class: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        by_class.setdefault(c.cls, []).append(i)
    return by_class


def draw_mixture(
    rng: np.random.Generator,
    clips: list[Clip],
    cfg: SampleConfig,
    train: bool,
    by_class: dict[str, list[int]] | None = None,
) -> Mixture:
    """Pick `num_mix` clips (of distinct classes when asked) and a window in each; in training
    also `cfg.silent` clips of yet other classes, with gain 0.

    `by_class` is `clips_by_class(clips)`, given by callers that draw many mixtures.
    """
    by_class = clips_by_class(clips) if by_class is None else by_class
    silent = cfg.silent if train else 0
    count = cfg.num_mix + silent
    same = cfg.same_class >= 1 or (cfg.same_class > 0 and rng.random() < cfg.same_class)
    if silent and len(by_class) < (1 if same else cfg.num_mix) + silent:
        # a silent clip of a heard class would contradict it
        raise PixelPlayerError(
            f"{cfg.num_mix} heard + {silent} silent clips of distinct classes need "
            f"{count} classes; the data has {len(by_class)}: lower sample.silent"
        )
    if same:
        pool = [c for c in sorted(by_class) if len(by_class[c]) >= cfg.num_mix]
        if not pool:
            raise PixelPlayerError(
                f"no class has the {cfg.num_mix} clips a same-class mixture needs"
            )
        heard = pool[rng.integers(len(pool))]
        picks = [int(i) for i in rng.choice(by_class[heard], size=cfg.num_mix, replace=False)]
        others = [c for c in sorted(by_class) if c != heard]
        for c in rng.choice(others, size=silent, replace=False) if silent else []:
            picks.append(by_class[c][rng.integers(len(by_class[c]))])
    elif (cfg.distinct_classes or silent) and len(by_class) >= count:
        classes = rng.choice(sorted(by_class), size=count, replace=False)
        picks = [by_class[c][rng.integers(len(by_class[c]))] for c in classes]
    else:
        picks = list(rng.choice(len(clips), size=count, replace=False))
    window = cfg.audio_len / cfg.sr
    starts = [float(rng.uniform(0.0, max(clips[i].duration - window, 0.0))) for i in picks]
    gains = [float(rng.uniform(0.5, 1.5)) if train and cfg.random_gain else 1.0 for _ in picks]
    gains[cfg.num_mix :] = [0.0] * silent
    return Mixture([clips[i].video_id for i in picks], starts, gains)


def write_mixture_list(path: Path, mixtures: list[Mixture], meta: dict) -> None:
    write_text_atomic(
        path, json.dumps({**meta, "mixtures": [asdict(m) for m in mixtures]}, indent=1)
    )


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
    """The evaluation mixture list: read from `path` when it exists, else drawn and written.

    Mixtures are drawn from the clips that hold a whole window: the dataset serves no others.
    """
    clips, too_short = usable_clips(clips, cfg)
    if len(clips) < cfg.num_mix:
        raise PixelPlayerError(
            f"{len(clips)} clips hold a {cfg.audio_len / cfg.sr:.1f} s window ({too_short} "
            f"shorter); a mixture of {cfg.num_mix} needs at least {cfg.num_mix}"
        )
    meta = {"n": n, "num_mix": cfg.num_mix, "seed": seed, "distinct": cfg.distinct_classes}
    meta["window_s"] = cfg.audio_len / cfg.sr
    if cfg.same_class:
        meta["same_class"] = cfg.same_class
    if path is not None and path.is_file():
        mixtures, stored = read_mixture_list(path)
        if stored.get("same_class", 0) != cfg.same_class:
            raise PixelPlayerError(
                f"{path}: drawn with same_class {stored.get('same_class', 0)}, not "
                f"{cfg.same_class}; delete it or give another path"
            )
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


def cached_window(cache: ClipCache, clip: Clip, start: float, cfg: SampleConfig) -> np.ndarray:
    """`read_window` from the cache: (audio_len,) float32, zero-padded past the clip's end."""
    samples, step = cache.audio(clip.video_id)  # (num_samples,) int16 at cfg.sr
    first = int(round(start * cfg.sr))
    seg = samples[first : first + cfg.audio_len]
    out = np.zeros(cfg.audio_len, np.float32)
    out[: len(seg)] = seg * np.float32(step)
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
    img = resize_short_side(img, size if rng is None else stored_side(size), size)
    return crop_frame(np.asarray(img), size, rng)


def crop_frame(img: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """(H, W, 3) -> (size, size, 3) view: the centre, or a random place when `rng` is given."""
    h, w = img.shape[:2]
    if rng is None:
        x, y = (w - size) // 2, (h - size) // 2
    else:
        x, y = int(rng.integers(w - size + 1)), int(rng.integers(h - size + 1))
    return img[y : y + size, x : x + size]


def cached_frame(
    cache: ClipCache, clip: Clip, i: int, size: int, rng: np.random.Generator | None
) -> np.ndarray:
    """`load_frame` from the cache: (size, size, 3) uint8 without decoding a JPEG."""
    img = cache.frames(clip.video_id)[i]  # (h, w, 3), shorter side stored_side(size)
    if rng is None:  # evaluation scale: the shorter side at `size` (one uint8 resize)
        img = np.asarray(resize_short_side(Image.fromarray(np.asarray(img)), size, size))
    return crop_frame(img, size, rng)


def load_frames(
    clip: Clip,
    times: list[float],
    fps: float,
    size: int,
    rng=None,
    cache: ClipCache | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(3, T, size, size) uint8 RGB pixels; one crop and flip for all T frames.

    Frames come from the JPEGs, or from `cache` when given; written into `out` when given.
    Pixels stay uint8 until the frame net (`models.frame.normalize_pixels`, on its device):
    a quarter of the bytes to copy between loader processes, and no float work in the loader.
    """
    seed = None if rng is None else int(rng.integers(2**31))
    flip = rng is not None and rng.random() < 0.5
    if out is None:
        out = np.empty((3, len(times), size, size), np.uint8)
    for j, t in enumerate(times):
        i = min(max(int(t * fps), 0), clip.num_frames - 1)  # frame k shows time k / fps
        crop_rng = None if seed is None else np.random.default_rng(seed)
        if cache is None:
            img = load_frame(frame_path(clip.frames_dir, i), size, crop_rng)
        else:
            img = cached_frame(cache, clip, i, size, crop_rng)
        out[:, j] = (img[:, ::-1] if flip else img).transpose(2, 0, 1)
    return out


def read_gray_frame(path: Path, size: int) -> np.ndarray:
    """(size, size) uint8 grayscale: shorter side resized to `size`, centre crop."""
    try:
        with Image.open(path) as im:
            im.draft("L", (size, size))  # JPEG: decode at the smallest scale still >= size
            img = im.convert("L")
    except Exception as exc:
        raise MediaError(path, "unreadable", str(exc)) from exc
    return _gray_crop(img, size)


def _gray_crop(img: Image.Image, size: int) -> np.ndarray:
    img = resize_short_side(img, size, size)
    x, y = (img.size[0] - size) // 2, (img.size[1] - size) // 2
    return np.asarray(img)[y : y + size, x : x + size]


def motion_indices(start: float, cfg: SampleConfig, num_frames: int) -> list[int]:
    """Frames under the audio window from `start` s, and the one before (its first difference).

    Frame k shows time k / fps and stands for (k - 1/2) / fps .. (k + 1/2) / fps: the window's
    T = round(seconds * fps) frames begin with the one whose span starts nearest to `start`
    (as AME's training windows: pixelplayer.ame.audio_window). Clamped to the clip: a window
    at the clip's very start repeats frame 0.
    """
    steps = max(1, round(cfg.audio_len / cfg.sr * cfg.fps))
    first = int(np.floor(start * cfg.fps + 1.0))  # round(start * fps + 1/2)
    return [min(max(k, 0), num_frames - 1) for k in range(first - 1, first + steps)]


def load_motion(
    clip: Clip, start: float, cfg: SampleConfig, cache: ClipCache | None = None
) -> np.ndarray:
    """(1, T+1, S, S) uint8 grayscale frames of the window at S = cfg.motion_size."""
    size, out = cfg.motion_size, []
    for i in motion_indices(start, cfg, clip.num_frames):
        if cache is None:
            out.append(read_gray_frame(frame_path(clip.frames_dir, i), size))
        else:
            rgb = Image.fromarray(np.asarray(cache.frames(clip.video_id)[i]))
            out.append(_gray_crop(rgb.convert("L"), size))
    return np.stack(out)[None]


class MixDataset(Dataset):
    """Mixtures of N clips -> dict(frames (N, 3, T, S, S), audios (N, L), mix (L,), classes (N,),
    and with cfg.motion_size motion (N, 1, T_m + 1, S_m, S_m)).

    With `mixtures` given it serves that fixed list; otherwise it draws `length` random ones
    per epoch from seed (seed, epoch, item). `audios` are the sources as mixed (gain applied,
    divided by N), so mix == audios.sum(0) exactly.

    `cache`: True uses a cache of these clips at cfg.frame_size and cfg.sr when one is found
    (`pixelplayer data cache`), False always decodes, a folder uses that cache.
    """

    def __init__(
        self,
        clips: list[Clip],
        cfg: SampleConfig,
        mixtures: list[Mixture] | None = None,
        length: int = 1000,
        seed: int = 0,
        train: bool = True,
        cache: bool | str | Path = True,
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
        self.by_class = clips_by_class(self.clips)
        self.cache = self._open_cache(cache)

    def _open_cache(self, cache: bool | str | Path) -> ClipCache | None:
        cfg = self.cfg
        if cache is True:
            return find_cache(self.clips, cfg.frame_size, cfg.sr)
        if cache is False:
            return None
        found = open_cache(cache)
        if (found.size, found.sr) != (cfg.frame_size, cfg.sr):
            raise PixelPlayerError(
                f"{cache}: cached for {found.size} px at {found.sr} Hz, not {cfg.frame_size} px "
                f"at {cfg.sr} Hz; build one with `pixelplayer data cache --size "
                f"{cfg.frame_size} --sr {cfg.sr}`"
            )
        if not found.covers(self.clips):
            raise PixelPlayerError(f"{cache}: does not hold every clip of this dataset")
        found.check_fresh(self.clips)
        return found

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def mixture(self, i: int) -> Mixture:
        if self.mixtures is not None:
            return self.mixtures[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        return draw_mixture(rng, self.clips, self.cfg, self.train, self.by_class)

    def __getitem__(self, i: int) -> dict:
        cfg = self.cfg
        mix = self.mixture(i)
        rng = np.random.default_rng((self.seed, self.epoch, i, 1)) if self.train else None
        n = len(mix.videos)
        gains = mix.gains or [1.0] * n
        heard = sum(g > 0 for g in gains)
        audios = np.zeros((n, cfg.audio_len), np.float32)
        size = cfg.frame_size
        frames = np.empty((n, 3, cfg.num_frames, size, size), np.uint8)
        for j, (vid, start) in enumerate(zip(mix.videos, mix.starts, strict=True)):
            clip = self.by_id[vid]
            if gains[j] > 0:  # a silent clip's audio stays zero: its target is silence
                if self.cache is None:
                    wav = read_window(clip, start, cfg)
                else:
                    wav = cached_window(self.cache, clip, start, cfg)
                audios[j] = wav * gains[j] / heard
            times = frame_times(start, cfg)
            load_frames(clip, times, cfg.fps, size, rng, self.cache, out=frames[j])
        item = {
            "frames": torch.from_numpy(frames),
            "audios": torch.from_numpy(audios),
            "mix": torch.from_numpy(audios.sum(0)),
            "classes": torch.tensor([self.classes.index(self.by_id[v].cls) for v in mix.videos]),
        }
        if cfg.motion_size:  # (N, 1, T+1, S, S) uint8
            motion = [
                load_motion(self.by_id[v], start, cfg, self.cache)
                for v, start in zip(mix.videos, mix.starts, strict=True)
            ]
            item["motion"] = torch.from_numpy(np.stack(motion))
        return item
