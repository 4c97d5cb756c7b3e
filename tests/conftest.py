"""Shared test helpers: small media made on the fly, and the optional real footage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


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
