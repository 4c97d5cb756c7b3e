"""Shared test helpers: small media made on the fly, and the optional real footage."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A tiny prepared dataset: 3 classes x 4 generated clips of 3 s, split 2/1/1 per class."""
    from pixelplayer.cli import main

    root = tmp_path_factory.mktemp("data")
    synth = ["data", "synth", str(root / "synth"), "--classes", "violin,drums,flute"]
    assert main([*synth, "--clips", "4", "--seconds", "3", "--size", "64", "--workers", "1"]) == 0
    prep = ["data", "prepare", str(root / "synth" / "videos"), str(root / "prepared")]
    assert main([*prep, "--workers", "1", "--short-side", "64", "--split", "0.5,0.25,0.25"]) == 0
    return root / "prepared"


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip("real footage not present (../shared/data/real)")
    return REAL_DATA


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

    cfg = load_config("configs/pixelplayer-cpu.yaml", overrides)
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
