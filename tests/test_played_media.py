"""Videos as phones and cameras write them, seen and heard as players show them.

Each input is made in the test (`tests/helpers.py`) and goes through `data prepare` (one
batch over a folder holding all of them) and `separate` (the command line): a portrait video
stored landscape with a display matrix, audio that starts 2 s after the picture, stereo in
opposite phase, a constant DC offset, one frame under 3 s of sound, two audio streams of which
the first is silent. See docs/reliability.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from pixelplayer.audio import load_soundtrack, rms
from pixelplayer.cli import main
from pixelplayer.video import iter_frames, probe
from tests.helpers import FPS, H, W, marked_frames, prepare_quietly, tone, untrained_run, write_clip
from tests.helpers import TINY_SEPARATOR as TINY

SR = 11025
RATE = 48000  # the rate phones and cameras record at
LATE = 2.0  # s the late audio starts after the picture
CLICK = 0.5  # s into the late audio: at LATE + CLICK = 2.5 s on the video's clock


def _stereo(mono: np.ndarray) -> np.ndarray:
    return np.stack([mono, mono], axis=1)


def _late_audio(path: Path) -> Path:
    """4 s of picture; 48 kHz stereo from 2 s on, a quiet tone with a click 0.5 s into it."""
    audio = tone(2.0, RATE, amp=0.05)
    i = int(CLICK * RATE)
    audio[i : i + 240] = 0.9
    return write_clip(path, marked_frames(4.0), [(_stereo(audio), RATE, LATE)])


def _early_audio(path: Path) -> Path:
    """Audio from 0 s, the first frame at 1 s (a camera that starts the picture late); a click
    1.5 s into the audio: at 0.5 s on the video's clock."""
    audio = tone(3.0, RATE, amp=0.05)
    i = int(1.5 * RATE)
    audio[i : i + 240] = 0.9
    return write_clip(path, marked_frames(2.0), [(audio[:, None], RATE, 0.0)], video_start=1.0)


def _phase_inverted(path: Path) -> Path:
    left = tone(1.5, RATE)
    return write_clip(path, marked_frames(1.5), [(np.stack([left, -left], 1), RATE, 0.0)])


def _dc_offset(path: Path) -> Path:
    """A constant 0.25 on both channels (PCM: no codec rings at its edges)."""
    dc = np.full((int(1.5 * RATE), 2), 0.25, np.float32)
    return write_clip(path, marked_frames(1.5), [(dc, RATE, 0.0)], acodec="pcm_s16le")


def _one_frame(path: Path) -> Path:
    return write_clip(path, marked_frames(1 / FPS), [(tone(3.0, RATE)[:, None], RATE, 0.0)])


def _two_streams(path: Path) -> Path:
    silent = np.zeros((int(1.5 * RATE), 1), np.float32)
    sound = tone(1.5, RATE)[:, None]
    return write_clip(path, marked_frames(1.5), [(silent, RATE, 0.0), (sound, RATE, 0.0)])


def _portrait(path: Path) -> Path:
    """Stored 64x36, turned 90 degrees clockwise by players: 36x64 portrait."""
    audio = _stereo(tone(1.5, RATE))
    return write_clip(path, marked_frames(1.5), [(audio, RATE, 0.0)], rotation=90)


MEDIA = {
    "portrait_phone.mp4": _portrait,
    "late_audio.mp4": _late_audio,
    "early_audio.mp4": _early_audio,
    "phase_inverted.mp4": _phase_inverted,
    "dc_offset.mkv": _dc_offset,
    "one_frame.mp4": _one_frame,
    "two_streams_first_silent.mp4": _two_streams,
}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("phone") / "videos" / "violin"
    folder.mkdir(parents=True)
    return {name: make(folder / name) for name, make in MEDIA.items()}


@pytest.fixture(scope="module")
def prepared(media, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("prepared")
    argv = ["data", "prepare", str(media["late_audio.mp4"].parent.parent), str(out)]
    argv += ["--workers", "1", "--min-seconds", "1", "--short-side", "32"]
    return out, prepare_quietly(argv)[0]


def _marker(out: Path, name: str) -> dict:
    return json.loads((out / "done" / "violin" / f"{Path(name).stem}.json").read_text())


def _clip(out: Path, name: str) -> tuple[np.ndarray, list[Path]]:
    stem = Path(name).stem
    wav, rate = sf.read(out / "audio" / "violin" / f"{stem}.wav", dtype="float32")
    assert rate == SR
    return wav, sorted((out / "frames" / "violin" / stem).glob("*.jpg"))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return untrained_run(tmp_path_factory.mktemp("run"), TINY)


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny nets are far too small for two threads
    yield
    torch.set_num_threads(before)


def _separate(run: Path, video: Path, out: Path, capsys, *extra) -> tuple[int, str, str]:
    argv = ["separate", str(video), "--model", str(run), "--out", str(out), *extra]
    code = main([*argv, "--grid", "2", "--map-fps", "0", "--no-progress"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def _one_line_error(err: str, phrase: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pixelplayer: error:"), err
    assert phrase in lines[0], lines[0]


# --- a portrait phone video stored landscape -----------------------------------------------------


def test_portrait_frames_are_turned_as_players_show_them(media):
    path = media["portrait_phone.mp4"]
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (H, W, 90)
    frames = np.stack(list(iter_frames(path, FPS)))
    assert frames.shape[1:] == (W, H, 3)  # 64 high, 36 wide
    # the stored top-left block is at the top right once turned clockwise
    assert frames[0, :8, -6:].mean() > 200 and frames[0, :8, :6].mean() < 150
    small = next(iter(iter_frames(path, FPS, size=(18, 32))))
    assert small.shape == (32, 18, 3) and small[:4, -3:].mean() > 200


# degrees clockwise, mirrored -> (shown width, height), corner the stored top-left block is in
TURNS = {
    (0, False): ((W, H), "top left"),
    (90, False): ((H, W), "top right"),
    (180, False): ((W, H), "bottom right"),
    (270, False): ((H, W), "bottom left"),
    (0, True): ((W, H), "top right"),  # a front camera's mirror
    (90, True): ((H, W), "top left"),
}


@pytest.mark.parametrize("turn", list(TURNS), ids=lambda t: f"{t[0]}{'-mirrored' * t[1]}")
def test_every_display_matrix_is_applied(tmp_path, turn):
    (size, corner) = TURNS[turn]
    path = write_clip(tmp_path / "v.mp4", marked_frames(0.25), rotation=turn[0], mirror=turn[1])
    info = probe(path)
    assert (info.width, info.height, info.rotation, info.flipped) == (*size, *turn)
    frame = next(iter(iter_frames(path, FPS)))
    assert frame.shape[1::-1] == size
    corners = {
        "top left": frame[:4, :4],
        "top right": frame[:4, -4:],
        "bottom left": frame[-4:, :4],
        "bottom right": frame[-4:, -4:],
    }
    assert max(corners, key=lambda k: corners[k].mean()) == corner


def test_portrait_prepare_stores_portrait_frames(prepared):
    out, rejected = prepared
    assert "portrait_phone.mp4" not in rejected
    _, frames = _clip(out, "portrait_phone.mp4")
    with Image.open(frames[0]) as im:
        assert im.size == (32, round(32 * W / H))  # portrait, short side 32
        top = np.asarray(im)[:8]
    assert top[:, -5:].mean() > 200 and top[:, :5].mean() < 150
    assert _marker(out, "portrait_phone.mp4")["input"]["rotation"] == 90


def test_portrait_separate_gives_a_portrait_page_with_portrait_points(
    media, run, threads, tmp_path, capsys
):
    out = tmp_path / "out"
    # y = 60 lies inside the 36x64 portrait frame, outside the stored 64x36 one
    code, _, err = _separate(run, media["portrait_phone.mp4"], out, capsys, "--points", "30,60")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["width"], manifest["height"]) == (H, W)
    assert manifest["points"][0]["x"] == 30 and manifest["points"][0]["y"] == 60
    with Image.open(out / "frame.jpg") as im:
        assert im.height > im.width
    overlay = probe(out / "overlay.mp4")
    assert overlay.height > overlay.width and overlay.rotation == 0
    assert f"{H}×{W}" in (out / "index.html").read_text(encoding="utf-8")
    # a point outside the portrait frame is refused with the portrait range
    code, _, err = _separate(run, media["portrait_phone.mp4"], out, capsys, "--points", "50,10")
    assert code == 1
    _one_line_error(err, f"x must be in 0..{H - 1} and y in 0..{W - 1}")


# --- audio that starts 2 s after the picture ----------------------------------------------------


def _click_at(wav: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(wav if wav.ndim == 1 else wav.mean(1))) / rate)


def test_late_audio_is_placed_on_the_video_clock(media):
    track = load_soundtrack(media["late_audio.mp4"], sr=SR)
    assert track.offset == pytest.approx(LATE, abs=0.03)
    assert any("after the video" in n for n in track.notes)
    assert len(track.wav) / SR == pytest.approx(4.0, abs=0.05)
    assert _click_at(track.wav, SR) == pytest.approx(LATE + CLICK, abs=0.01)


def test_late_audio_prepare_pairs_frames_with_shifted_audio(prepared):
    out, rejected = prepared
    assert "late_audio.mp4" not in rejected
    wav, frames = _clip(out, "late_audio.mp4")
    assert abs(len(frames) - 32) <= 1  # 4 s at 8 fps (the AAC tail: 4.005 s)
    assert len(wav) / SR == pytest.approx(4.0, abs=0.05)
    assert _click_at(wav, SR) == pytest.approx(LATE + CLICK, abs=0.01)
    audio = _marker(out, "late_audio.mp4")["audio"]
    assert audio["offset"] == pytest.approx(LATE, abs=0.03)
    assert any("silence put before it" in n for n in audio["notes"])


def test_late_audio_overlay_is_in_sync_within_one_frame(media, run, threads, tmp_path, capsys):
    out = tmp_path / "out"
    code, printed, err = _separate(run, media["late_audio.mp4"], out, capsys)
    assert code == 0, err
    assert "note: the audio starts" in printed
    heard = load_soundtrack(out / "overlay.mp4", mono=False)
    assert heard.offset == pytest.approx(0.0, abs=0.03)  # the overlay's audio starts with it
    assert abs(_click_at(heard.wav, heard.sr) - (LATE + CLICK)) <= 1 / FPS
    mixture, rate = sf.read(out / "mixture.wav", dtype="float32")
    assert abs(_click_at(mixture, rate) - (LATE + CLICK)) <= 1 / FPS
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["audio"]["offset"] == pytest.approx(LATE, abs=0.03)
    assert manifest["duration"] == pytest.approx(4.0, abs=0.05)


def test_early_audio_is_cut_to_the_video_clock(media, prepared):
    track = load_soundtrack(media["early_audio.mp4"], sr=SR)
    assert track.offset == pytest.approx(-1.0, abs=0.01)
    assert _click_at(track.wav, SR) == pytest.approx(0.5, abs=0.01)
    out, rejected = prepared
    assert "early_audio.mp4" not in rejected
    wav, frames = _clip(out, "early_audio.mp4")
    assert _click_at(wav, SR) == pytest.approx(0.5, abs=0.01)
    assert abs(len(frames) - 16) <= 1 and len(wav) / SR == pytest.approx(2.0, abs=0.05)
    audio = _marker(out, "early_audio.mp4")["audio"]
    assert audio["offset"] == pytest.approx(-1.0, abs=0.01)
    assert any("first 1.00 s cut" in n for n in audio["notes"])


# --- stereo in opposite phase, DC, one frame, two streams ---------------------------------------


def _db(a: float, b: float) -> float:
    return abs(20 * np.log10(a / b))


def test_phase_inverted_stereo_keeps_its_level(media, prepared, run, threads, tmp_path, capsys):
    path = media["phase_inverted.mp4"]
    left = load_soundtrack(path, sr=SR, mono=False).wav[:, 0]
    track = load_soundtrack(path, sr=SR)
    assert _db(rms(track.wav), rms(left)) < 1.0  # was 1/200 of it (-46 dB)
    assert any("cancel" in n for n in track.notes)
    out, rejected = prepared
    assert "phase_inverted.mp4" not in rejected
    wav, _ = _clip(out, "phase_inverted.mp4")
    assert _db(rms(wav), rms(left)) < 1.0
    assert any("cancel" in n for n in _marker(out, "phase_inverted.mp4")["audio"]["notes"])
    code, printed, err = _separate(run, path, tmp_path / "out", capsys)
    assert code == 0, err
    assert "note: the channels cancel" in printed
    mixture, _ = sf.read(tmp_path / "out" / "mixture.wav", dtype="float32")
    assert _db(rms(mixture), rms(left)) < 1.0


def test_dc_offset_is_no_sound(media, prepared, run, capsys, tmp_path):
    out, rejected = prepared
    assert rejected["dc_offset.mkv"]["reason"] == "silent"
    assert "only a constant DC offset of 0.25" in rejected["dc_offset.mkv"]["detail"]
    code, printed, err = _separate(run, media["dc_offset.mkv"], tmp_path / "out", capsys)
    assert code == 0, err  # heard, and nothing sounds
    assert "note: the soundtrack is silent" in printed
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"] == []


def test_one_frame_under_longer_audio_lasts_as_long_as_the_audio(
    media, prepared, run, threads, tmp_path, capsys
):
    assert probe(media["one_frame.mp4"]).duration == pytest.approx(3.0, abs=0.05)
    out, rejected = prepared
    assert "one_frame.mp4" not in rejected  # was: too short (0.12 s)
    wav, frames = _clip(out, "one_frame.mp4")
    assert abs(len(frames) - 24) <= 1 and len(wav) / SR == pytest.approx(3.0, abs=0.05)
    assert _marker(out, "one_frame.mp4")["duration"] == pytest.approx(3.0, abs=0.05)
    code, _, err = _separate(run, media["one_frame.mp4"], tmp_path / "out", capsys)
    assert code == 0, err
    energy = np.load(tmp_path / "out" / "energy.npy")
    assert len(energy) >= 24  # a map for every frame the sound plays under
    assert probe(tmp_path / "out" / "overlay.mp4").duration == pytest.approx(3.0, abs=0.15)


def test_the_audible_stream_is_chosen(media, prepared, run, threads, tmp_path, capsys):
    path = media["two_streams_first_silent.mp4"]
    track = load_soundtrack(path, sr=SR)
    assert (track.stream, track.streams) == (1, 2) and rms(track.wav) > 0.05
    out, rejected = prepared
    assert "two_streams_first_silent.mp4" not in rejected  # was: silent
    assert _marker(out, "two_streams_first_silent.mp4")["audio"]["stream"] == 1
    code, printed, err = _separate(run, path, tmp_path / "out", capsys)
    assert code == 0, err
    assert "took stream 1 of 2" in printed
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["audio"]["stream"] == 1
    assert rms(load_soundtrack(tmp_path / "out" / "overlay.mp4").wav) > 0.05
    # by hand: the silent one is heard as silence, one that is not there is refused
    code, printed, err = _separate(run, path, tmp_path / "out", capsys, "--audio-stream", "0")
    assert code == 0 and "note: the soundtrack is silent" in printed, err
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"] == []
    code, _, err = _separate(run, path, tmp_path / "out", capsys, "--audio-stream", "2")
    assert code == 1
    _one_line_error(err, "the file has 2 audio streams, numbered 0..1")
