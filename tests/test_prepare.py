"""`pixelplayer data prepare` / `data info` and the index format, on videos made here."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from pixelplayer.audio import save_audio
from pixelplayer.cli import main
from pixelplayer.data.index import (
    COLUMNS,
    Clip,
    frame_path,
    parse_index,
    read_index,
    resolve_index,
    write_index,
)
from pixelplayer.data.info import dataset_info
from pixelplayer.data.splits import split_clips, split_counts
from pixelplayer.errors import PixelPlayerError
from pixelplayer.video import probe, write_video
from tests.helpers import REAL_DATA

FLUTE = REAL_DATA / "solo" / "flute_unRA0xR-XWc.mp4"
CLASSES = ("accordion", "cello", "flute")
SECONDS = 4.0
# (input fps, audio rate, stereo) per clip index: every class gets every kind
KINDS = [(25, 44100, True), (30, 22050, False), (8, 44100, False)]
BROKEN = {
    "accordion/empty.mp4": "unreadable",
    "accordion/truncated.mp4": "unreadable",
    "cello/mute.mp4": "no audio stream",
    "cello/notes.mp4": "unreadable",
    "flute/silent.mp4": "silent",
    "flute/short.mp4": "too short",
}


def _frames(seconds: float, fps: float, seed: int, w: int = 224, h: int = 160) -> np.ndarray:
    """A bright square moving over a coloured background: (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    out = np.empty((n, h, w, 3), np.uint8)
    out[:] = rng.integers(40, 200, size=3, dtype=np.uint8)
    for t in range(n):
        x = int((w - 32) * t / max(n - 1, 1))
        out[t, 60:92, x : x + 32] = 255
    return out


def _audio(seconds: float, sr: int, stereo: bool, seed: int, amp: float = 0.3) -> np.ndarray:
    """A harmonic tone plus a little noise: (L,) or (L, 2) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    freq = 220.0 * (1 + seed % 5)
    wav = sum(amp / k * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3))
    wav = (wav + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
    return np.stack([wav, 0.5 * wav], axis=1) if stereo else wav


def _make_video(path: Path, seconds: float, fps: float, sr: int, stereo: bool, seed: int):
    write_video(path, _frames(seconds, fps, seed), fps, _audio(seconds, sr, stereo, seed), sr)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """3 classes x 3 good 4 s clips (25/30/8 fps, 44.1 kHz stereo or mono, 22.05 kHz mono),
    plus one broken file of every kind."""
    root = tmp_path_factory.mktemp("videos")
    seed = 0
    for cls in CLASSES:
        for i, (fps, sr, stereo) in enumerate(KINDS):
            _make_video(root / cls / f"{cls}{i}.mp4", SECONDS, fps, sr, stereo, seed)
            seed += 1
    good = (root / "accordion" / "accordion0.mp4").read_bytes()
    (root / "accordion" / "empty.mp4").write_bytes(b"")
    (root / "accordion" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    write_video(root / "cello" / "mute.mp4", _frames(SECONDS, 25, 1), 25)
    (root / "cello" / "notes.mp4").write_text("not a video\n")
    silence = np.zeros(int(SECONDS * 22050), np.float32)
    write_video(root / "flute" / "silent.mp4", _frames(SECONDS, 25, 2), 25, silence, 22050)
    _make_video(root / "flute" / "short.mp4", 2.0, 25, 22050, False, 7)
    return root


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("prepared")
    code, text = _run_cli(["data", "prepare", str(videos), str(out), "--workers", "2"])
    assert code == 0
    return out, text


def _run_cli(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- prepare --------------------------------------------------------------------------------


def test_frames_and_audio_match_duration(prepared):
    out, _ = prepared
    clips = read_index(out / "all.csv")
    assert len(clips) == len(CLASSES) * len(KINDS)
    for c in clips:
        frames = sorted(c.frames_dir.glob("*.jpg"))
        assert len(frames) == c.num_frames
        assert abs(c.num_frames - SECONDS * 8) <= 1, c
        assert frames[0].name == "000001.jpg" and frame_path(c.frames_dir, 0) == frames[0]
        with Image.open(frames[0]) as im:
            assert min(im.size) == 256 and im.size[0] > im.size[1]  # aspect kept (224x160)
        info = sf.info(str(c.audio_path))
        assert info.samplerate == 11025 and info.channels == 1
        assert abs(info.frames / 11025 - SECONDS) < 0.1
        assert abs(c.duration - min(info.frames / 11025, c.num_frames / 8)) < 1e-3
        assert c.audio_path.parent.name == c.cls == c.frames_dir.parent.name
        assert c.video_id == f"{c.cls}/{c.frames_dir.name}"


def test_index_files_and_splits(prepared):
    out, text = prepared
    assert f"prepared {len(CLASSES) * len(KINDS)} videos" in text
    ids = {}
    for split in ("train", "val", "test", "all"):
        rows = _read_csv(out / f"{split}.csv")
        assert rows and list(rows[0]) == COLUMNS
        assert not Path(rows[0]["audio_path"]).is_absolute()  # relative to the index's folder
        ids[split] = {r["video_id"] for r in rows}
        # stratified: with 3 videos per class, every class shows up in every split
        assert {r["class"] for r in rows} == set(CLASSES)
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert ids["train"] | ids["val"] | ids["test"] == ids["all"]
    assert len(ids["all"]) == len(CLASSES) * len(KINDS)


def test_broken_inputs_are_listed_with_reasons(prepared, videos):
    out, text = prepared
    rows = _read_csv(out / "rejected.csv")
    assert list(rows[0]) == ["path", "reason", "detail"]
    got = {Path(r["path"]).relative_to(videos).as_posix(): r["reason"] for r in rows}
    assert got == BROKEN
    assert f"rejected {len(BROKEN)} files" in text and "rejected.csv" in text


def test_second_run_skips_done_videos(prepared, videos):
    out, _ = prepared
    files = [*out.glob("audio/*/*.wav"), *out.glob("frames/*/*/000001.jpg")]
    before = {f: f.stat().st_mtime_ns for f in files}
    code, text = _run_cli(["data", "prepare", str(videos), str(out), "--workers", "2"])
    assert code == 0
    assert f"prepared 0 videos, skipped {len(CLASSES) * len(KINDS)} already done" in text
    assert {f: f.stat().st_mtime_ns for f in files} == before
    assert len(_read_csv(out / "rejected.csv")) == len(BROKEN)


def test_killed_run_redoes_only_the_unfinished_clip(videos, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(videos / "cello", src / "cello")
    out = tmp_path / "out"
    assert main(["data", "prepare", str(src), str(out), "--workers", "1"]) == 0
    # a run killed after moving the frames but before writing the marker, with temp leftovers
    (out / "done" / "cello" / "cello1.json").unlink()
    (out / ".tmp" / "cello" / "cello2.123" / "frames").mkdir(parents=True)
    kept = (out / "audio" / "cello" / "cello0.wav").stat().st_mtime_ns
    code, text = _run_cli(["data", "prepare", str(src), str(out), "--workers", "1"])
    assert code == 0 and "prepared 1 videos, skipped 2 already done" in text
    assert (out / "audio" / "cello" / "cello0.wav").stat().st_mtime_ns == kept
    assert not (out / ".tmp").exists()
    assert len(read_index(out / "all.csv")) == 3


def test_other_settings_into_the_same_folder_are_refused(prepared, videos, capsys):
    out, _ = prepared
    assert main(["data", "prepare", str(videos), str(out), "--fps", "4"]) == 1
    assert "other settings" in capsys.readouterr().err


def test_bad_arguments_are_one_line_errors(videos, tmp_path, capsys):
    synth = tmp_path / "synth"
    (synth / "videos").mkdir(parents=True)
    (synth / "synth.json").write_text("{}")
    assert main(["data", "prepare", str(synth), str(tmp_path / "out")]) == 1
    assert "give its solo videos" in capsys.readouterr().err
    assert main(["data", "prepare", str(tmp_path / "absent"), str(tmp_path / "out")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main(["data", "prepare", str(videos), str(videos / "out")]) == 1
    assert "must not be inside" in capsys.readouterr().err
    assert main(["data", "prepare", str(tmp_path / "out")]) == 1
    assert "--from-index" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "prepare", str(videos), str(tmp_path / "out"), "--split", "0.5,0.5"])


def test_split_is_deterministic_and_stratified():
    clips = [
        Clip(Path(f"{c}{i}.wav"), Path(f"{c}{i}"), 10, c, 5.0, f"{c}/{i}")
        for c in ("a", "b")
        for i in range(10)
    ]
    first = split_clips(clips, (0.8, 0.1, 0.1), seed=3)
    shuffled = clips[:]
    random.Random(1).shuffle(shuffled)
    assert split_clips(shuffled, (0.8, 0.1, 0.1), seed=3) == first
    assert [len(first[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert split_clips(clips, (0.8, 0.1, 0.1), seed=4) != first
    assert split_counts(3, (0.8, 0.1, 0.1)) == [1, 1, 1]
    assert split_counts(2, (0.8, 0.1, 0.1)) == [1, 1, 0]
    assert split_counts(5, (1, 0, 0)) == [5, 0, 0]


# --- legacy Sound-of-Pixels index -----------------------------------------------------------


def test_legacy_index_import(prepared, tmp_path):
    out, _ = prepared
    legacy = tmp_path / "legacy"
    lines = []
    for c in read_index(out / "all.csv"):
        frames = legacy / "frames" / c.cls / f"{c.frames_dir.name}.mp4"  # the original naming
        audio = legacy / "audio" / c.cls / f"{c.frames_dir.name}.wav"
        shutil.copytree(c.frames_dir, frames)
        audio.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(c.audio_path, audio)
        lines.append(f"{audio},{frames},{c.num_frames}")  # absolute paths
    # relative paths, one clip with silent audio, one whose audio is gone
    frames = legacy / "frames" / "flute" / "quiet.mp4"
    shutil.copytree(read_index(out / "all.csv")[0].frames_dir, frames)
    save_audio(legacy / "audio" / "flute" / "quiet.wav", np.zeros(11025 * 4), 11025)
    lines.append("audio/flute/quiet.wav,frames/flute/quiet.mp4,32")
    lines.append("audio/flute/gone.wav,frames/flute/gone.mp4,32")
    (legacy / "index.csv").write_text("\n".join(lines) + "\n")

    clips = parse_index(legacy / "index.csv")
    assert clips[-2].cls == "flute" and clips[-2].video_id == "flute/quiet"
    assert abs(clips[0].duration - SECONDS) < 0.1  # from the wav header

    new = tmp_path / "new"
    code, text = _run_cli(["data", "prepare", "--from-index", str(legacy / "index.csv"), str(new)])
    assert code == 0 and "indexed 9 clips" in text
    assert len(read_index(new / "all.csv")) == 9
    reasons = sorted(r["reason"] for r in _read_csv(new / "rejected.csv"))
    assert reasons == ["missing", "silent"]
    assert read_index(new / "train.csv")[0].frames_dir.is_relative_to(legacy)  # not re-encoded


# --- index format ---------------------------------------------------------------------------


def test_index_round_trip_and_resolve(prepared, tmp_path):
    out, _ = prepared
    clips = read_index(out / "all.csv")
    write_index(tmp_path / "sub" / "copy.csv", clips)
    assert read_index(tmp_path / "sub" / "copy.csv") == clips
    assert resolve_index(out, "val") == out / "val.csv"
    assert resolve_index(out / "test.csv", "train") == out / "test.csv"
    with pytest.raises(PixelPlayerError, match="no nope.csv"):
        resolve_index(out, "nope")


@pytest.mark.parametrize(
    "text, match",
    [
        ("audio_path,frames_dir,num_frames,class\na.wav,f,3,x\n", "expected columns"),
        ("a.wav,f\n", "expected a header row"),
        ("a.wav,frames/x/f.mp4,many\n", "not an integer"),
        (",".join(COLUMNS) + "\na.wav,f,3.5,x,1.0,x/f\n", "not an integer"),
        ("", "empty"),
    ],
)
def test_bad_index_files(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PixelPlayerError, match=match):
        read_index(path)


def test_missing_files_raise_or_are_skipped(prepared, tmp_path):
    out, _ = prepared
    with pytest.raises(PixelPlayerError, match="no such index"):
        read_index(tmp_path / "absent.csv")
    clips = read_index(out / "all.csv")
    gone = Clip(tmp_path / "x.wav", tmp_path / "x", 5, "flute", 4.0, "flute/x")
    write_index(tmp_path / "idx.csv", [*clips, gone])
    with pytest.raises(PixelPlayerError, match=r"1 of 10 clips have missing files .*x\.wav"):
        read_index(tmp_path / "idx.csv")
    good, missing = read_index(tmp_path / "idx.csv", skip_missing=True)
    assert good == clips and missing == 1


# --- info -----------------------------------------------------------------------------------


def test_info_on_prepared_folder(prepared):
    out, _ = prepared
    code, text = _run_cli(["data", "info", str(out)])
    assert code == 0
    for cls in CLASSES:
        assert cls in text
    assert f"rejected: {len(BROKEN)}" in text
    info = dataset_info(out)
    assert info["total"]["clips"] == 9 and set(info["splits"]) == {"train", "val", "test"}
    assert info["splits"]["train"]["classes"]["cello"]["clips"] == 1
    assert abs(info["total"]["hours"] * 3600 - 9 * SECONDS) < 1.0
    assert dataset_info(out / "val.csv")["total"]["clips"] == 3


def test_info_on_raw_videos(videos, tmp_path):
    # the layout `data synth` writes: DIR/videos/<class>/*.mp4 and DIR/meta
    raw = tmp_path / "synth"
    shutil.copytree(videos / "flute", raw / "videos" / "flute", ignore=lambda d, n: ["short.mp4"])
    (raw / "meta").mkdir()
    for i in range(3):  # as synth writes them: meta/<id>.json
        meta = {"id": f"flute{i}", "video": f"videos/flute/flute{i}.mp4", "duration": 60.0}
        (raw / "meta" / f"flute{i}.json").write_text(json.dumps(meta))
    (raw / "duets").mkdir()
    shutil.copy(videos / "flute" / "flute0.mp4", raw / "duets" / "duet_0000.mp4")
    info = dataset_info(raw)
    assert info["splits"]["videos"]["classes"]["flute"]["clips"] == 4  # silent.mp4 probes fine
    # three durations from the meta, the fourth probed
    assert abs(info["total"]["hours"] * 3600 - (3 * 60 + SECONDS)) < 0.5
    assert info["duets"] == 1
    code, text = _run_cli(["data", "info", str(raw)])
    assert code == 0 and "flute" in text and "duets: 1" in text


# --- real footage ---------------------------------------------------------------------------


def test_real_flute_video(tmp_path):
    if not FLUTE.is_file():
        pytest.skip(f"real footage not present ({FLUTE})")
    (tmp_path / "in" / "flute").mkdir(parents=True)
    os.symlink(FLUTE, tmp_path / "in" / "flute" / "unRA0xR-XWc.mp4")
    t0 = time.monotonic()
    code, text = _run_cli(["data", "prepare", str(tmp_path / "in"), str(tmp_path / "out")])
    elapsed = time.monotonic() - t0
    assert code == 0, text
    (clip,) = read_index(tmp_path / "out" / "all.csv")
    assert abs(clip.num_frames - 93 * 8) <= 2, clip.num_frames
    info = sf.info(str(clip.audio_path))
    assert info.samplerate == 11025
    assert abs(info.frames / 11025 - probe(FLUTE).duration) < 0.05  # about 93.16 s
    assert clip.video_id == "flute/unRA0xR-XWc" and len(list(clip.frames_dir.glob("*.jpg"))) > 700
    print(f"real flute: {clip.num_frames} frames, {info.frames / 11025:.2f} s, {elapsed:.1f} s")
