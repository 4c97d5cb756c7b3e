"""The ground truth localization is scored against (pixelplayer.localization)."""

import numpy as np
import pytest

from pixelplayer.localization import RULES, accuracy, cell_kinds, grid_centres, sounding_sources


def test_an_instrument_sounds_only_where_its_stem_holds_its_share():
    sr, fps = 100, 2.0  # frames of 50 samples
    a = np.r_[np.ones(100), np.zeros(100)]  # plays, then rests
    b = np.r_[np.full(50, 0.05), np.ones(150)]  # 0.25 % of frame 0's energy, then plays
    flags = sounding_sources(np.stack([a, b]), sr, np.arange(4) / fps, fps)
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
    kinds = cell_kinds(centres, meta, 0, [True, False]).tolist()
    assert kinds == ["instrument", "resting instrument", "distractor", "background"]
    rule = RULES["sounding instruments"]
    assert [rule.get(k) for k in kinds] == [True, None, False, False]  # resting: left out


def test_grid_centres_spread_over_the_whole_frame():
    centres = grid_centres(100, 200, (2, 4))  # height, width; rows, columns
    assert centres[:4].tolist() == [[25, 25], [75, 25], [125, 25], [175, 25]]
    assert centres[4:, 1].tolist() == [75] * 4


def test_accuracy_splits_at_the_median_and_counts_each_kind():
    values = [0.9, 0.8, 0.1, 0.7, 0.2, 0.3]
    truth = [True, True, True, False, False, False]
    kinds = ["instrument", "instrument", "instrument", "distractor", "background", "background"]
    right, count, per_kind = accuracy(values, truth, kinds)
    assert (right, count) == (pytest.approx(4 / 6), 6)
    assert per_kind == {"instrument": pytest.approx(2 / 3), "distractor": 1.0, "background": 0.0}
