"""The ground truth the localization benchmark scores against (benchmarks/bench_separate.py)."""

import importlib.util
from pathlib import Path

import numpy as np

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_separate.py"
_spec = importlib.util.spec_from_file_location("bench_separate", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_an_instrument_sounds_only_where_its_stem_holds_its_share():
    sr, fps = 100, 2.0  # frames of 50 samples
    a = np.r_[np.ones(100), np.zeros(100)]  # plays, then rests
    b = np.r_[np.full(50, 0.05), np.ones(150)]  # 0.25 % of frame 0's energy, then plays
    flags = bench.sounding_sources(np.stack([a, b]), sr, np.arange(4) / fps, fps)
    assert flags.tolist() == [[True, False], [True, True], [False, True], [False, True]]


def test_cells_of_a_resting_instrument_are_told_apart():
    meta = {  # two instruments' boxes (their picture: a red emoji box) and one distractor
        "sources": [
            {"boxes": [[0, 0, 40, 40]], "image": "emoji:U+1F941"},
            {"boxes": [[60, 0, 100, 40]], "image": "emoji:U+1F941"},
        ],
        "distractors": [{"boxes": [[0, 60, 40, 100]]}],
    }
    centres = np.array([[20, 20], [80, 20], [20, 80], [80, 80]], float)
    kinds = bench.cell_kinds(centres, meta, 0, [True, False]).tolist()
    assert kinds == ["instrument", "resting instrument", "distractor", "background"]
    rule = bench.RULES["sounding instruments"]
    assert [rule.get(k) for k in kinds] == [True, None, False, False]  # resting: left out
