"""Shared test helpers: tiny configs, small media made on the fly, run folders, quiet CLI calls.

Fixtures live in conftest.py; test modules import what they need from here, never from each
other.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import torch

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

# a PixelPlayer small enough to train two epochs in seconds
TINY = [
    "model_kwargs={k: 8, frame: {width: 8}, sound: {ngf: 4, levels: 5}}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
    "train.batch_size=4",
    "train.epoch_size=8",
    "train.epochs=2",
    "train.val_mixtures=4",
    "train.workers=0",
    "train.max_minutes=null",
]
# a still smaller one for `separate` and `eval` on untrained runs
TINY_SEPARATOR = [
    "model_kwargs={k: 4, frame: {width: 4}, sound: {ngf: 4, levels: 5}}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
]
# AMnet's audio-motion embedding, tiny
TINY_AME = [
    "model_kwargs={dim: 8, width: 4}",
    "train.val_mixtures=6",
    "sample.num_frames=8",
    "sample.audio_len=11025",
    "sample.frame_size=16",
    "train.batch_size=4",
    "train.epoch_size=8",
    "train.epochs=2",
    "train.max_minutes=null",
]


def set_args(*pairs: str) -> list[str]:
    """["a=1", "b=2"] -> ["--set", "a=1", "--set", "b=2"]."""
    return [a for p in pairs for a in ("--set", p)]


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.3, seed: int = 0):
    """A harmonic tone with a little noise: (L,) float32."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wav = sum(amp / h * np.sin(2 * np.pi * freq * h * t) for h in (1, 2, 3))
    return (wav + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def untrained_run(folder: Path, overrides: list[str]) -> Path:
    """A run folder (config.yaml + best.pt) holding an untrained PixelPlayer of the CPU preset
    with `overrides`: enough for `separate` and `eval` to run."""
    from pixelplayer.config import load_config, save_config
    from pixelplayer.models.registry import save_checkpoint
    from pixelplayer.train import build_model

    cfg = load_config("pixelplayer-cpu", overrides)
    torch.manual_seed(0)
    model, kwargs = build_model(cfg)
    save_config(cfg, folder / "config.yaml")
    save_checkpoint(folder / "best.pt", model, cfg.model, kwargs)
    return folder


def prepare_quietly(argv: list[str]) -> tuple[dict[str, dict], str]:
    """Run `pixelplayer data prepare` (argv after `pixelplayer`), its output captured; it must
    exit 0 without a traceback. -> (OUT/rejected.csv rows by file name, what it printed)."""
    from pixelplayer.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    assert code == 0, stderr.getvalue()
    assert "Traceback" not in stdout.getvalue() + stderr.getvalue()
    with open(Path(argv[3]) / "rejected.csv", newline="") as f:
        rejected = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    return rejected, stdout.getvalue()
