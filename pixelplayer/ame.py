"""The Audio-Motion Embedding's (AMnet's AME) triplets, loss and scoring: self-supervised by time.

A triplet is cut from one clip: the anchor is the motion of a window of frames, the positive
the audio of the same window, the negative the same clip's audio shifted by at least
`min_shift` seconds (either way, inside the clip). Same clip, same instrument, same timbre: only
*when* things happen tells the two sounds apart, so the embedding has to learn which motion goes
with which sound. The loss is a triplet margin on the cosine distance averaged over time steps.

Sampling is seeded by (seed, epoch, item) as in MixDataset, so a resumed run draws the same
triplets; validation (train.val_mixtures trials) and test (TEST_TRIALS) score fixed lists of
trials drawn from a seed, the clips taken in turn.

Frames are decoded once per run into memory as small grayscale arrays (JPEG draft mode reads a
256 px frame at 1/4 scale without a full decode), audio as float32 at the training rate.

Trained by the shared loop (pixelplayer.training.ame): best.pt is the best validation triplet
accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pixelplayer.audio import resample
from pixelplayer.config import Config
from pixelplayer.data.dataset import read_gray_frame
from pixelplayer.data.index import Clip, frame_path, read_index, resolve_index
from pixelplayer.distributed import pick_device
from pixelplayer.errors import MediaError, PixelPlayerError
from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.run import Run

# model_kwargs of `model: ame` (AudioMotionEmbedding's arguments) and their defaults
DEFAULTS = {
    "dim": 64,  # embedding size per time step
    "width": 16,  # channels of the first conv layers (x2, x4 deeper)
    "diff": True,  # the motion net also reads frame differences
    "sound_front": "stft",  # stft (log-magnitude STFT) | wave (raw waveform)
    "min_shift": 1.0,  # seconds: the negative's audio is at least this far from the anchor's
    "margin": 0.2,  # triplet margin on the cosine distance
}
TEST_TRIALS = 1000  # fixed test trials of score_run, spread evenly over the clips


def options(cfg: Config) -> dict:
    """model_kwargs completed with the defaults; unknown keys and bad windows are errors."""
    unknown = sorted(set(cfg.model_kwargs) - set(DEFAULTS))
    if unknown:
        raise PixelPlayerError(
            f"unknown model_kwargs key {unknown[0]!r} for ame; valid: {', '.join(DEFAULTS)}"
        )
    s = cfg.sample
    need = window_samples(s.num_frames, s.fps, s.sr)
    if s.audio_len != need:
        raise PixelPlayerError(
            f"sample.audio_len is {s.audio_len}; the AME window of {s.num_frames} frames at "
            f"{s.fps:g} fps needs {need} samples at {s.sr} Hz: set sample.audio_len={need}"
        )
    return {**DEFAULTS, **cfg.model_kwargs}


def model_kwargs(cfg: Config, opts: dict) -> dict:
    return {**opts, "sr": cfg.sample.sr, "fps": float(cfg.sample.fps)}


def window_samples(frames: int, fps: float, sr: int) -> int:
    return int(round(frames * sr / fps))


def shift_frames(min_shift: float, fps: float) -> int:
    """The smallest whole number of frames that is at least `min_shift` seconds."""
    return max(1, math.ceil(min_shift * fps - 1e-9))


# --- clips in memory ----------------------------------------------------------------------------


@dataclass
class ClipArrays:
    """One clip decoded: frames (N, S, S) uint8 grayscale, audio (L,) float32 at the rate."""

    frames: np.ndarray
    audio: np.ndarray


def load_clip_arrays(clip: Clip, size: int, sr: int) -> ClipArrays:
    frames = np.stack(
        [read_gray_frame(frame_path(clip.frames_dir, i), size) for i in range(clip.num_frames)]
    )
    try:
        wav, rate = sf.read(str(clip.audio_path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise MediaError(clip.audio_path, "unreadable", str(exc)) from exc
    wav = wav.mean(axis=1)
    if rate != sr:
        wav = resample(wav, rate, sr)
    return ClipArrays(frames, np.ascontiguousarray(wav, np.float32))


def usable(clips: list[Clip], window: int, shift: int) -> list[Clip]:
    """Clips with room for a window (plus the frame before it) and a shifted second one."""
    return [c for c in clips if c.num_frames - window - 1 >= shift]


def load_split(
    data: str | Path, split: str, cfg: Config, opts: dict, progress: bool = False
) -> tuple[list[Clip], list[ClipArrays]]:
    """The usable clips of a split, decoded; PixelPlayerError when none is long enough."""
    s = cfg.sample
    shift = shift_frames(opts["min_shift"], s.fps)
    clips = read_index(resolve_index(data, split))
    good = usable(clips, s.num_frames, shift)
    if not good:
        need = (s.num_frames + 1 + shift) / s.fps
        raise PixelPlayerError(
            f"no {split} clip is long enough for AME triplets (need {need:.2f} s: a "
            f"{s.num_frames}-frame window and a {opts['min_shift']:g} s shift)"
        )
    if len(good) < len(clips):
        print(f"{len(clips) - len(good)} {split} clips are too short for AME triplets, unused")
    arrays = [
        load_clip_arrays(c, s.frame_size, s.sr)
        for c in tqdm(good, desc=f"decoding {split}", unit="clip", disable=not progress)
    ]
    return good, arrays


# --- triplets -----------------------------------------------------------------------------------


@dataclass
class Triplet:
    """Clip `clip`'s motion over frames start..start+T-1 (frame start-1 gives the first
    difference), its audio at the same frames (positive) and at frames neg..neg+T-1."""

    clip: int
    start: int
    neg: int


def draw_windows(
    rng: np.random.Generator, num_frames: int, window: int, shift: int
) -> tuple[int, int]:
    """(start, negative start): both windows inside the clip, at least `shift` frames apart.

    Starts run from 1 (frame 0 only precedes the first difference) to num_frames - window. The
    anchor is drawn among the starts that have a partner, the negative uniformly among all its
    partners on both sides.
    """
    starts = np.arange(1, num_frames - window + 1)
    has_partner = (starts - shift >= starts[0]) | (starts + shift <= starts[-1])
    if not has_partner.any():
        raise PixelPlayerError(
            f"a clip of {num_frames} frames has no room for two {window}-frame windows "
            f"{shift} frames apart"
        )
    start = int(rng.choice(starts[has_partner]))
    neg = int(rng.choice(starts[np.abs(starts - start) >= shift]))
    return start, neg


def draw_triplet(
    rng: np.random.Generator, num_frames: list[int], window: int, shift: int
) -> Triplet:
    clip = int(rng.integers(len(num_frames)))
    return Triplet(clip, *draw_windows(rng, num_frames[clip], window, shift))


def fixed_trials(
    num_frames: list[int], window: int, shift: int, n: int, seed: int
) -> list[Triplet]:
    """`n` triplets taking the clips in turn, the same for every run given the seed."""
    rng = np.random.default_rng((seed, 7919))
    clips = [i % len(num_frames) for i in range(n)]
    return [Triplet(c, *draw_windows(rng, num_frames[c], window, shift)) for c in clips]


def audio_window(audio: np.ndarray, start: int, window: int, fps: float, sr: int) -> np.ndarray:
    """(L,) the audio under frames start..start+window-1: frame k shows time k / fps, so its
    step covers (k - 1/2) / fps .. (k + 1/2) / fps; zero-padded outside the clip."""
    length = window_samples(window, fps, sr)
    first = int(round((start - 0.5) * sr / fps))
    out = np.zeros(length, np.float32)
    lo, hi = max(first, 0), min(first + length, len(audio))
    if hi > lo:
        out[lo - first : hi - first] = audio[lo:hi]
    return out


def make_batch(
    arrays: list[ClipArrays],
    triplets: list[Triplet],
    cfg: Config,
    rngs: list[np.random.Generator] | None = None,
) -> dict[str, torch.Tensor]:
    """frames (B, 1, T+1, S, S) in [0, 1], pos and neg (B, L); with `rngs`, training
    augmentation: a horizontal flip of the frames and a random gain of each audio."""
    s = cfg.sample
    t = s.num_frames
    frames, pos, neg = [], [], []
    for i, tr in enumerate(triplets):
        a = arrays[tr.clip]
        f = a.frames[tr.start - 1 : tr.start + t]  # (T+1, S, S)
        p = audio_window(a.audio, tr.start, t, s.fps, s.sr)
        n = audio_window(a.audio, tr.neg, t, s.fps, s.sr)
        if rngs is not None:
            r = rngs[i]
            if r.random() < 0.5:
                f = f[:, :, ::-1]
            p, n = p * r.uniform(0.5, 1.5), n * r.uniform(0.5, 1.5)
        frames.append(np.ascontiguousarray(f))
        pos.append(p)
        neg.append(n)
    x = torch.from_numpy(np.stack(frames)).float().div_(255.0)[:, None]
    return {
        "frames": x,
        "pos": torch.from_numpy(np.stack(pos)).float(),
        "neg": torch.from_numpy(np.stack(neg)).float(),
    }


# --- loss and accuracy --------------------------------------------------------------------------


def distance(motion: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
    """Unit-length (B, D, T) embeddings -> (B,) cosine distance averaged over time steps."""
    return 1.0 - (motion * sound).sum(dim=1).mean(dim=1)


def triplet_loss(
    anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float
) -> torch.Tensor:
    return F.relu(distance(anchor, pos) - distance(anchor, neg) + margin).mean()


def aligned_wins(anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the aligned audio is closer to the motion than the shifted one."""
    return distance(anchor, pos) < distance(anchor, neg)


def embed_batch(model: AudioMotionEmbedding, batch: dict, device) -> tuple[torch.Tensor, ...]:
    """(anchor, positive, negative) embeddings (B, D, T); both audios in one pass."""
    b = len(batch["pos"])
    anchor = model.embed_motion(batch["frames"].to(device))
    sound = model.embed_sound(torch.cat([batch["pos"], batch["neg"]]).to(device))
    return anchor, sound[:b], sound[b:]


@torch.no_grad()
def triplet_accuracy(
    model: AudioMotionEmbedding,
    arrays: list[ClipArrays],
    trials: list[Triplet],
    cfg: Config,
    device="cpu",
    batch_size: int = 64,
    progress: bool = False,
) -> float:
    """Fraction of `trials` where the aligned audio is closer to the motion than the shifted."""
    model.eval()
    wins = []
    for i in tqdm(
        range(0, len(trials), batch_size), desc="scoring", disable=not progress, leave=False
    ):
        batch = make_batch(arrays, trials[i : i + batch_size], cfg)
        wins.append(aligned_wins(*embed_batch(model, batch, device)).cpu())
    return float(torch.cat(wins).float().mean())


# --- scoring a run ------------------------------------------------------------------------------


def score_run(
    run: str | Path,
    data: str | Path,
    split: str = "test",
    trials: int = TEST_TRIALS,
    device=None,
    progress: bool = False,
) -> tuple[float, int]:
    """(accuracy, trials): the run's best.pt on a fixed list of `split` trials."""
    run = Run(run)
    cfg = run.config
    opts = options(cfg)
    dev = pick_device(device)
    model, _ = run.load_model(AudioMotionEmbedding)
    model.to(dev)
    clips, arrays = load_split(data, split, cfg, opts, progress)
    shift = shift_frames(opts["min_shift"], cfg.sample.fps)
    lengths = [c.num_frames for c in clips]
    fixed = fixed_trials(lengths, cfg.sample.num_frames, shift, trials, seed=12345)
    acc = triplet_accuracy(model, arrays, fixed, cfg, dev, cfg.train.batch_size, progress)
    return acc, len(fixed)
