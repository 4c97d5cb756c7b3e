"""Fixtures: the tiny generated dataset and the optional real footage (helpers: helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import REAL_DATA

torch.set_num_threads(2)


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
