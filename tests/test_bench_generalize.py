"""The generalization benchmark (benchmarks/bench_generalize.py) on a tiny dataset made here."""

import importlib.util
import json
from pathlib import Path

import pytest
import soundfile as sf
from PIL import Image

from pixelplayer.baselines import NmfKmeansSeparator
from pixelplayer.data.index import Clip, frame_path, write_index
from tests.helpers import tone, untrained_run

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generalize.py"
_spec = importlib.util.spec_from_file_location("bench_generalize", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

TINY = [
    "model_kwargs={k: 8, frame: {width: 8}, sound: {ngf: 4, levels: 5}}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
]
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


def run_bench(*args) -> dict:
    return bench.main([*args, "--no-progress", "--batch-size", "4"])


def test_runs_and_baselines_are_scored_on_the_same_kept_mixtures(
    data, tmp_path, capsys, monkeypatch
):
    def few_iterations(name, cfg, device=None):  # the plumbing is checked here, not the NMF
        return NmfKmeansSeparator(cfg.spec, iters=10, sr=cfg.sample.sr, device="cpu")

    monkeypatch.setattr(bench, "baseline", few_iterations)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    run_a = untrained_run(tmp_path / "a", TINY)
    run_b = untrained_run(tmp_path / "b", [*TINY, "spec.combine=independent"])
    real = tmp_path / "real"  # all clips (no test.csv)
    write_index(real / "all.csv", clips(real, {"x": 260.0, "y": 410.0}))
    out = tmp_path / "gen.json"
    argv = ["--run", str(run_a), "--run", str(run_b), "--in-dist", str(data)]
    report = run_bench(*argv, "--real", str(real), "--n", "2", "--out", str(out))
    assert list(report["sets"]) == ["in_dist", "real"]
    real_rows = list(report["sets"]["real"]["results"])
    assert real_rows == ["pixelplayer (a)", "pixelplayer (b)", "nmf-kmeans", "ibm"]
    assert list(report["sets"]["in_dist"]["results"]) == real_rows[:2]
    for s in report["sets"].values():
        for r in s["results"].values():
            assert r["count"] + sum(r["unscored"].values()) == 2
    ibm = report["sets"]["real"]["results"]["ibm"]["mean"]["sdr"]
    assert ibm > report["sets"]["real"]["results"]["pixelplayer (a)"]["mean"]["sdr"] + 5
    table = capsys.readouterr().out.split("| test set |")[1]
    assert table.count("\n|") == 1 + 6  # the rule, then a row per set and method
    assert json.loads(out.read_text())["sets"]["real"]["n"] == 2
    # the lists are kept beside the indexes, as `pixelplayer eval` keeps them, and reused
    kept = Path(report["sets"]["in_dist"]["mixture_list"])
    assert kept.parent == data / "mixtures" and kept.name.startswith("test-2mix-2-seed0-")
    assert Path(report["sets"]["real"]["mixture_list"]).name.startswith("all-2mix-2-")
    before = kept.read_text()
    again = run_bench(*argv, "--n", "2")
    assert kept.read_text() == before
    first, second = (r["sets"]["in_dist"]["results"] for r in (report, again))
    assert first["pixelplayer (a)"]["mean"] == second["pixelplayer (a)"]["mean"]
    for m in json.loads(before)["mixtures"]:  # two clips of different classes
        assert len({v.split("/")[0] for v in m["videos"]}) == 2


def test_input_errors_are_one_line(data, tmp_path):
    run_a = untrained_run(tmp_path, TINY)
    other = tmp_path / "other"
    other.mkdir()
    untrained_run(other, [*TINY, "sample.frame_size=48"])
    one = tmp_path / "one"
    write_index(one / "test.csv", clips(one, {"a": 220.0}))
    empty = tmp_path / "empty"
    write_index(empty / "test.csv", [])
    cases = {
        "frame_size 32 vs 48": ["--run", str(other), "--in-dist", str(data)],
        "of 1 class": ["--in-dist", str(one)],
        "no test clips": ["--in-dist", str(empty)],
        "no such prepared folder": ["--holdout-sounds", str(tmp_path / "nope")],
        "not a run folder": ["--run", str(data), "--in-dist", str(data)],
    }
    for message, args in cases.items():
        with pytest.raises(SystemExit) as exc:
            run_bench("--run", str(run_a), *args, "--n", "2")
        text = str(exc.value.code)
        assert message in text and "\n" not in text
