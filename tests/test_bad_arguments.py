"""Mistyped arguments, paths that are not files, and batches with a bad input in them.

Every number given on the command line is checked for range and finiteness, the device against
this torch build, output paths before any work, and a path that is not a regular file is named
as what it is (folder, FIFO, device, link loop). Each case must give exit code 1 and one line on
stderr, never a traceback. `separate` over several videos goes on past a bad one, counts it and
exits 1 naming it. See docs/reliability.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from pixelplayer.cli import main
from tests.helpers import TINY_SEPARATOR as TINY
from tests.helpers import marked_frames, tone, untrained_run, write_clip


def _fails(capsys, argv: list, phrase: str) -> str:
    """The CLI fails with exit code 1 and one line on stderr holding `phrase`."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.out + captured.err
    assert code == 1, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("pixelplayer: error:") and phrase in lines[0], lines[0]
    return lines[0]


def _good(path: Path) -> Path:
    return write_clip(path, marked_frames(1.5), [(tone(1.5, 44100)[:, None], 44100, 0.0)])


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return untrained_run(tmp_path_factory.mktemp("run"), TINY)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return _good(tmp_path_factory.mktemp("videos") / "good.mp4")


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- numbers ------------------------------------------------------------------------------------

# separate's options -> (value, phrase of the one-line error)
SEPARATE_NUMBERS = [
    ("--points", "inf,5", "inf is not a pixel coordinate"),
    ("--points", "5,nan", "nan is not a pixel coordinate"),
    ("--points", "1e400,5", "1e400 is not a pixel coordinate"),
    ("--points", "1e300,5", "give finite pixels in 0..1048576"),
    ("--points", "5,-inf", "-inf is not a pixel coordinate"),
    ("--boxes", "0,0,inf,10", "inf is not a pixel coordinate"),
    ("--boxes", "0,0,10,1e30", "1e30 is not a pixel coordinate"),
    ("--sources", "0", "--sources 0: out of range; give a whole number >= 1 and <= 64"),
    ("--sources", "-3", "--sources -3: out of range"),
    ("--sources", "100000", "--sources 100000: out of range"),
    ("--grid", "0", "--grid 0: out of range; give a whole number >= 1 and <= 64"),
    ("--grid", "100000", "--grid 100000: out of range"),
    ("--map-fps", "nan", "--map-fps nan: not a finite number; give a number >= 0 and <= 1000"),
    ("--map-fps", "inf", "--map-fps inf: not a finite number"),
    ("--map-fps", "-1", "--map-fps -1: out of range"),
    ("--map-fps", "1e9", "out of range"),
    ("--audio-stream", "-1", "--audio-stream -1: out of range; give a whole number >= 0"),
]


@pytest.mark.parametrize("option, value, phrase", SEPARATE_NUMBERS)
def test_separate_numbers(run, video, tmp_path, capsys, option, value, phrase):
    argv = ["separate", video, "--model", run, "--out", tmp_path / "out", option, value]
    _fails(capsys, [*argv, "--no-progress"], phrase)
    assert not (tmp_path / "out").exists()  # refused before any work


PREPARE_NUMBERS = [
    ("--fps", "nan", "--fps nan: not a finite number; give a number > 0 and <= 1000"),
    ("--fps", "inf", "--fps inf: not a finite number"),
    ("--fps", "0", "--fps 0: out of range; give a number > 0"),
    ("--fps", "-8", "--fps -8: out of range"),
    ("--sr", "0", "--sr 0: out of range; give a whole number >= 1000 and <= 384000"),
    ("--sr", "100000000", "--sr 100000000: out of range"),
    ("--short-side", "-1", "--short-side -1: out of range; give a whole number >= 0 and <= 4096"),
    ("--short-side", "100000", "--short-side 100000: out of range"),
    ("--min-seconds", "nan", "--min-seconds nan: not a finite number"),
    ("--min-seconds", "inf", "--min-seconds inf: not a finite number"),
    ("--min-seconds", "-1", "--min-seconds -1: out of range"),
    ("--workers", "0", "--workers 0: out of range; give a whole number >= 1"),
    ("--workers", "-2", "--workers -2: out of range"),
    ("--audio-stream", "-1", "--audio-stream -1: out of range"),
]


@pytest.mark.parametrize("option, value, phrase", PREPARE_NUMBERS)
def test_prepare_numbers(video, tmp_path, capsys, option, value, phrase):
    argv = ["data", "prepare", video.parent, tmp_path / "out", option, value]
    _fails(capsys, argv, phrase)
    assert not (tmp_path / "out").exists()


EVAL_NUMBERS = [
    ("--n", "10000000", "--n 10000000: out of range; give a whole number >= 1 and <= 1000000"),
    ("--num-mix", "1000", "--num-mix 1000: out of range"),
    ("--batch-size", "10000000", "--batch-size 10000000: out of range"),
    ("--html", "-1", "--html -1: out of range; give a whole number >= 0"),
    ("--threshold", "nan", "--threshold nan: not a finite number; give a number >= 0 and <= 1"),
    ("--threshold", "2", "--threshold 2: out of range"),
    ("--threshold", "-inf", "--threshold -inf: not a finite number"),
]


@pytest.mark.parametrize("option, value, phrase", EVAL_NUMBERS)
def test_eval_numbers(run, tmp_path, capsys, option, value, phrase):
    _fails(capsys, ["eval", run, "--data", tmp_path, f"{option}={value}"], phrase)


def test_prepare_from_index_numbers(tmp_path, capsys):
    index = tmp_path / "old.csv"
    index.write_text("a.wav,frames/a,10\n")
    argv = ["data", "prepare", "--from-index", index, tmp_path / "out"]
    _fails(capsys, [*argv, "--fps", "inf"], "--fps inf: not a finite number")
    _fails(capsys, [*argv, "--audio-stream", "1"], "--audio-stream chooses a video's stream")


# --- a run folder whose config asks for too much ------------------------------------------------

BAD_RUN_CONFIGS = [
    ({"sample": {"frame_size": 100000}}, "sample.frame_size: 100000 is out of range; give at most"),
    ({"sample": {"sr": 10**9}}, "sample.sr: 1000000000 is out of range"),
    ({"sample": {"fps": float("inf")}}, "sample.fps: inf is not a finite number"),
    ({"train": {"lr_frame": float("nan")}}, "train.lr_frame: nan is not a finite number"),
    ({"spec": {"n_fft": 1 << 20}}, "spec.n_fft: 1048576 is out of range"),
]


@pytest.mark.parametrize("change, phrase", BAD_RUN_CONFIGS)
def test_run_config_out_of_range(run, video, tmp_path, capsys, change, phrase):
    bad = tmp_path / "run"
    bad.mkdir()
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    for section, values in change.items():
        cfg[section].update(values)
    (bad / "config.yaml").write_text(yaml.safe_dump(cfg))
    (bad / "best.pt").symlink_to(run / "best.pt")
    _fails(capsys, ["separate", video, "--model", bad, "--out", tmp_path / "o"], phrase)
    _fails(capsys, ["eval", bad, "--data", tmp_path, "--no-progress"], phrase)


def test_train_set_out_of_range(tmp_path, capsys):
    argv = ["train", "--data", tmp_path, "--out", tmp_path / "o", "--no-progress"]
    _fails(capsys, [*argv, "--set", "sample.frame_size=100000"], "give at most 4096")
    _fails(capsys, [*argv, "--set", "train.lr_sound=.inf"], "is not a finite number")


# --- devices ------------------------------------------------------------------------------------

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this build has CUDA")
DEVICES = [
    pytest.param("cuda", "has no CUDA", marks=no_cuda),
    pytest.param("cuda:1", "has no CUDA", marks=no_cuda),
    ("gpu0", "--device 'gpu0': not a device name; give cpu"),
    ("", "not a device name"),
    ("cuda:-1", "not a device name"),
    ("meta", "--device 'meta': not available here"),
]


@pytest.mark.parametrize("device, phrase", DEVICES)
def test_device(run, video, tmp_path, capsys, device, phrase):
    out = tmp_path / "out"
    _fails(capsys, ["separate", video, "--model", run, "--out", out, "--device", device], phrase)
    _fails(capsys, ["eval", run, "--data", tmp_path, "--device", device], phrase)
    _fails(capsys, ["train", "--data", tmp_path, "--out", out, "--device", device], phrase)
    assert not out.exists()


# --- output paths, before any work --------------------------------------------------------------


def test_out_naming_an_existing_file_is_refused_before_any_work(video, tmp_path, capsys):
    taken = tmp_path / "result.txt"
    taken.write_text("keep me\n")
    missing_run = tmp_path / "no-run"  # the run is loaded after the check: never reached
    opts = ["--model", missing_run, "--no-progress"]
    _fails(capsys, ["separate", video, *opts, "--out", taken], f"--out {taken}: a file; give a")
    _fails(capsys, ["separate", video, *opts, "--out", taken / "sub"], f"(in the way: {taken})")
    two = ["separate", video, video, *opts, "--out", taken]  # two videos: OUT/<stem>
    _fails(capsys, two, "a file (in the way")
    _fails(capsys, ["separate", video, *opts, "--out", video], "a file; give a folder")
    assert taken.read_text() == "keep me\n"
    _fails(capsys, ["data", "prepare", video.parent, taken], f"OUT {taken}: a file")
    index = tmp_path / "old.csv"
    index.write_text("a.wav,frames/a,10\n")
    _fails(capsys, ["data", "prepare", "--from-index", index, taken], "a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_in_a_read_only_folder(video, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    argv = ["separate", video, "--model", tmp_path, "--out", locked / "out"]
    _fails(capsys, argv, "is not writable")


# --- paths that are not files -------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _loop(path: Path) -> Path:
    path.symlink_to(path.name)
    return path


def _broken(path: Path) -> Path:
    path.symlink_to("nowhere.mp4")
    return path


def _dev_null(path: Path) -> Path:
    path.symlink_to("/dev/null")
    return path


# a path -> (how to make it, reason in rejected.csv, phrase of the error)
PATHS = {
    "fifo.mp4": (_fifo, "not a file", "not a file (a FIFO (named pipe): save the stream"),
    "folder.mp4": (_folder, "", "not a file (a folder: give a file inside it)"),
    "loop.mp4": (_loop, "unreadable", "unreadable (a symbolic link loop"),
    "broken.mp4": (_broken, "missing", "missing (a broken symbolic link (to nowhere.mp4))"),
    "null.mp4": (_dev_null, "not a file", "not a file (a character device"),
}


@pytest.mark.parametrize("name", list(PATHS))
def test_path_kinds_at_separate(run, tmp_path, capsys, name):
    make, _, phrase = PATHS[name]
    path = make(tmp_path / name)
    _fails(capsys, ["separate", path, "--model", run, "--out", tmp_path / "o"], phrase)


def test_dev_null_itself(run, tmp_path, capsys):
    _fails(
        capsys,
        ["separate", "/dev/null", "--model", run, "--out", tmp_path / "o"],
        "/dev/null: not a file (a character device: give a video file)",
    )


def test_path_kinds_at_prepare(video, tmp_path, capsys):
    import csv

    folder = tmp_path / "videos" / "violin"
    folder.mkdir(parents=True)
    (folder / "good.mp4").write_bytes(video.read_bytes())
    for name, (make, _, _) in PATHS.items():
        make(folder / name)
    out = tmp_path / "out"
    argv = ["data", "prepare", tmp_path / "videos", out, "--workers", "1", "--min-seconds", "1"]
    assert main([str(a) for a in argv]) == 0  # a batch: never stops on one file
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    with open(out / "rejected.csv", newline="") as f:
        rejected = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    for name, (_, reason, phrase) in PATHS.items():
        if reason:  # a folder named x.mp4 is a folder to look into, not a file to reject
            assert rejected[name]["reason"] == reason, rejected[name]
            detail = phrase.split(" (", 1)[1].rstrip(")")
            assert detail in rejected[name]["detail"], rejected[name]
    assert "prepared 1 videos" in captured.out


# --- batches go on ------------------------------------------------------------------------------


def _gif(path: Path) -> Path:
    """An animated GIF: a picture without sound."""
    frames = [Image.fromarray(f) for f in marked_frames(1.0)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=125)
    return path


def test_separate_batch_goes_on_past_a_bad_input(run, video, threads, tmp_path, capsys):
    bad = _gif(tmp_path / "b.gif")
    fifo = _fifo(tmp_path / "pipe.mp4")
    c = tmp_path / "c.mp4"
    c.write_bytes(video.read_bytes())
    out = tmp_path / "out"
    argv = ["separate", video, bad, fifo, c, "--model", run, "--out", out]
    code = main([str(a) for a in [*argv, "--grid", "2", "--map-fps", "0", "--no-progress"]])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.out + captured.err
    assert (out / "good" / "manifest.json").is_file() and (out / "c" / "manifest.json").is_file()
    assert not (out / "b").exists() and not (out / "pipe").exists()
    lines = captured.err.splitlines()
    errors = [line for line in lines if line.startswith("pixelplayer: error:")]
    assert len(errors) == 2
    assert "b.gif: no audio stream" in errors[0] and "pipe.mp4: not a file" in errors[1]
    assert lines[-1] == f"pixelplayer: separated 2 of 4 videos; 2 failed: {bad}, {fifo}"


def test_one_bad_video_alone_is_one_line(run, tmp_path, capsys):
    bad = _gif(tmp_path / "b.gif")
    argv = ["separate", bad, "--model", run, "--out", tmp_path / "o"]
    _fails(capsys, argv, "b.gif: no audio stream")


@pytest.mark.parametrize(
    "argv, option",
    [
        (["data", "cache", "X", "--size=100000"], "--size"),
        (["data", "cache", "X", "--sr=-1"], "--sr"),
        (["data", "cache", "X", "--workers=0"], "--workers"),
        (["data", "music", "--json", "X", "--out", "Y", "--limit=-1"], "--limit"),
        (["data", "music", "--json", "X", "--out", "Y", "--max-height=0"], "--max-height"),
    ],
)
def test_cache_and_music_numbers(argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is made: refused before any work
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert option in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())
