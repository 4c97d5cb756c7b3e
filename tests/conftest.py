"""Fixtures: the tiny generated dataset and the optional real footage (helpers: helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import REAL_DATA

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Path:
    """The tiny dataset, made once for the whole run: 3 classes x 4 generated clips of 3 s in
    ROOT/synth, prepared (split 2/1/1 per class) in ROOT/prepared. Read it through `prepared`."""
    from pixelplayer.cli import main

    root = tmp_path_factory.mktemp("generated")
    synth = ["data", "synth", str(root / "synth"), "--classes", "violin,drums,flute"]
    assert main([*synth, "--clips", "4", "--seconds", "3", "--size", "64", "--workers", "1"]) == 0
    prep = ["data", "prepare", str(root / "synth" / "videos"), str(root / "prepared")]
    assert main([*prep, "--workers", "1", "--short-side", "64", "--split", "0.5,0.25,0.25"]) == 0
    return root


@pytest.fixture(scope="module")
def prepared(generated, tmp_path_factory) -> Path:
    """The tiny prepared dataset, copied for each test module (a copy takes milliseconds): what
    a module's tests write beside its index (mixture lists, caches) stays theirs. The generated
    videos are beside it, in ../synth."""
    root = tmp_path_factory.mktemp("data")
    for name in ("synth", "prepared"):
        shutil.copytree(generated / name, root / name)
    return root / "prepared"


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip("real footage not present (../shared/data/real)")
    return REAL_DATA
