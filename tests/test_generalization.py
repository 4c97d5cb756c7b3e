"""Runs scored on the fixed test mixtures of several test sets (pixelplayer.generalization), on a
tiny dataset made here."""

import json
from pathlib import Path

import pytest
import soundfile as sf
from PIL import Image

from pixelplayer import generalization
from pixelplayer.baselines import NmfKmeansSeparator
from pixelplayer.data.index import Clip, frame_path, write_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.generalization import format_table, score_sets
from tests.helpers import TINY_SEPARATOR, tone, untrained_run

SR, FPS, SECONDS = 11025, 8, 1.5


def clips(root: Path, classes: dict[str, float], per_class: int = 2) -> list[Clip]:
    """`per_class` clips of each class (name -> tone frequency): a tone and flat frames."""
    out = []
    for k, (cls, freq) in enumerate(classes.items()):
        for j in range(per_class):
            vid = f"{cls}/{j}"
            audio, frames = root / "audio" / f"{vid}.wav", root / "frames" / vid
            audio.parent.mkdir(parents=True, exist_ok=True)
            frames.mkdir(parents=True)
            sf.write(audio, tone(SECONDS, SR, freq * (1 + j / 10), seed=j), SR)
            n = int(SECONDS * FPS)
            for i in range(n):
                colour = (60 * k, 100 + 40 * j, 20 * i % 256)
                Image.new("RGB", (40, 32), colour).save(frame_path(frames, i))
            out.append(Clip(audio, frames, n, cls, SECONDS, vid))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    write_index(root / "test.csv", clips(root, {"a": 220.0, "b": 330.0, "c": 500.0}))
    return root


def score(runs: list[Path], **sets: Path) -> dict:
    return score_sets([str(r) for r in runs], sets, n=2, batch_size=4, progress=False)


def test_runs_and_baselines_are_scored_on_the_same_kept_mixtures(data, tmp_path, monkeypatch):
    def few_iterations(name, cfg, device=None):  # the plumbing is checked here, not the NMF
        return NmfKmeansSeparator(cfg.spec, iters=10, sr=cfg.sample.sr, device="cpu")

    monkeypatch.setattr(generalization, "baseline", few_iterations)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    run_a = untrained_run(tmp_path / "a", TINY_SEPARATOR)
    run_b = untrained_run(tmp_path / "b", [*TINY_SEPARATOR, "spec.combine=independent"])
    real = tmp_path / "real"  # all clips (no test.csv)
    write_index(real / "all.csv", clips(real, {"x": 260.0, "y": 410.0}))
    report = score([run_a, run_b], real=real, in_dist=data)
    assert list(report["sets"]) == ["in_dist", "real"]  # in the order of the table
    real_rows = list(report["sets"]["real"]["results"])
    assert real_rows == ["pixelplayer (a)", "pixelplayer (b)", "nmf-kmeans", "ibm"]
    assert list(report["sets"]["in_dist"]["results"]) == real_rows[:2]
    for s in report["sets"].values():
        for r in s["results"].values():
            assert r["count"] + sum(r["unscored"].values()) == 2
    ibm = report["sets"]["real"]["results"]["ibm"]["mean"]["sdr"]
    assert ibm > report["sets"]["real"]["results"]["pixelplayer (a)"]["mean"]["sdr"] + 5
    table = format_table(report["sets"])
    assert table.startswith("| test set |") and table.count("\n|") == 1 + 6  # rule + rows
    assert "ideal binary mask (oracle)" in table
    json.dumps(report)  # the report is written as JSON as it is
    # the lists are kept beside the indexes, as `pixelplayer eval` keeps them, and reused
    kept = Path(report["sets"]["in_dist"]["mixture_list"])
    assert kept.parent == data / "mixtures" and kept.name.startswith("test-2mix-2-seed0-")
    assert Path(report["sets"]["real"]["mixture_list"]).name.startswith("all-2mix-2-")
    before = kept.read_text()
    again = score([run_a, run_b], in_dist=data)
    assert kept.read_text() == before
    first, second = (r["sets"]["in_dist"]["results"] for r in (report, again))
    assert first["pixelplayer (a)"]["mean"] == second["pixelplayer (a)"]["mean"]
    for m in json.loads(before)["mixtures"]:  # two clips of different classes
        assert len({v.split("/")[0] for v in m["videos"]}) == 2


def test_input_errors_are_one_line(data, tmp_path):
    run_a = untrained_run(tmp_path, TINY_SEPARATOR)
    other = tmp_path / "other"
    other.mkdir()
    untrained_run(other, [*TINY_SEPARATOR, "sample.frame_size=48"])
    one = tmp_path / "one"
    write_index(one / "test.csv", clips(one, {"a": 220.0}))
    empty = tmp_path / "empty"
    write_index(empty / "test.csv", [])
    cases = {
        "frame_size 32 vs 48": ([run_a, other], {"in_dist": data}),
        "of 1 class": ([run_a], {"in_dist": one}),
        "no test clips": ([run_a], {"in_dist": empty}),
        "no such prepared folder": ([run_a], {"holdout_sounds": tmp_path / "nope"}),
        "not a run folder": ([run_a, data], {"in_dist": data}),
        "give at least one test set": ([run_a], {}),
        "score runs: give --run": ([], {"in_dist": data}),
    }
    for message, (runs, sets) in cases.items():
        with pytest.raises(PixelPlayerError) as exc:
            score(runs, **sets)
        assert message in str(exc.value) and "\n" not in str(exc.value)
