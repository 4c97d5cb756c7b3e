"""Hostile media at every entry point that reads media, as one table of (entry point, input).

Entry points: `data prepare` (one batch over a folder holding every input next to good clips),
`separate` (the command line, per file), `Separator.separate_video` (the API, per file) and
`data synth --images / --soundfont`. Each input either gives a correct result (checked: finite,
audible audio at the working rate, frames at the working size) or a one-line error that names
the problem, with exit code 1 and no traceback; a batch records it in rejected.csv and goes on.
"""

from __future__ import annotations

import csv
import html
import json
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from pixelplayer.audio import SILENCE_RMS, load_audio, rms
from pixelplayer.cli import main
from pixelplayer.data.pictures import picture as _user_picture
from pixelplayer.data.synth import DEFAULT_SOUNDFONT
from pixelplayer.errors import MediaError
from pixelplayer.separation import Separator
from pixelplayer.video import iter_frames, probe
from tests.helpers import TINY_SEPARATOR as TINY
from tests.helpers import prepare_quietly, untrained_run

SR = 11025  # the working rate of prepare and of the tiny model
SECONDS = 1.5  # every clip that should work lasts this long
SHORT_SIDE = 48  # prepare's frame size in these tests
HTML_NAME = "<img src=x onerror=alert(1)>"

# --- making the media ---------------------------------------------------------------------------


def _frames(seconds: float, fps: float, w: int, h: int) -> np.ndarray:
    """A bright square moving over a gradient: (T, h, w, 3) uint8."""
    n = max(1, int(round(seconds * fps)))
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w, 1), yy * 255 // max(h, 1), np.full_like(xx, 60)], -1)
    frames = np.repeat(base[None].astype(np.uint8), n, axis=0)
    side = max(1, min(w, h) // 4)
    for i in range(n):
        x = (i * 7) % max(1, w - side)
        frames[i, h // 4 : h // 4 + side, x : x + side] = (250, 220, 30)
    return frames


def _tone(seconds: float, sr: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    """A harmonic tone, a different pitch per channel: (L, C) float32."""
    t = np.arange(int(seconds * sr)) / sr
    waves = [
        sum(amp / k * np.sin(2 * np.pi * (220 + 110 * c) * k * t) for k in (1, 2, 3))
        for c in range(channels)
    ]
    return np.stack(waves, axis=1).astype(np.float32)


def write_media(
    path: Path,
    frames: np.ndarray | None = None,
    fps: float = 8,
    audio: np.ndarray | None = None,
    sr: int = SR,
    vcodec: str = "libx264",
    acodec: str = "aac",
    pts_ms: np.ndarray | None = None,
) -> Path:
    """Any mix of streams: (T, H, W, 3) frames and/or (L, C) audio, with the codecs given.

    `pts_ms` gives each frame its own time (ms): a variable frame rate.
    """
    layouts = {1: "mono", 2: "stereo", 6: "5.1"}
    with av.open(str(path), "w") as c:
        vs = as_ = None
        if frames is not None:
            vs = c.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1001))
            vs.height, vs.width = frames.shape[1:3]
            vs.pix_fmt = "rgb24" if vcodec == "libx264rgb" else "yuv420p"
            vs.options = {"preset": "ultrafast", "crf": "30"}
            if pts_ms is not None:
                vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
        if audio is not None:
            layout = layouts[audio.shape[1]]
            as_ = c.add_stream(acodec, rate=sr)
            as_.layout = layout
        if vs is not None:
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                if pts_ms is not None:
                    vf.pts, vf.time_base = int(pts_ms[i]), Fraction(1, 1000)
                c.mux(vs.encode(vf))
            c.mux(vs.encode())
        if as_ is not None:
            fmt = as_.codec_context.format.name
            n = as_.codec_context.frame_size or 1024
            for s in range(0, len(audio), n):
                chunk = audio[s : s + n]  # (n, C)
                arr = chunk.T if fmt.endswith("p") else chunk.reshape(1, -1)
                if fmt.startswith("s16"):
                    arr = (np.clip(arr, -1, 1) * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(arr), format=fmt, layout=layout
                )
                af.sample_rate, af.pts = sr, s
                c.mux(as_.encode(af))
            c.mux(as_.encode())
    return path


def _good(path: Path, w: int = 64, h: int = 48, **kw) -> Path:
    kw.setdefault("audio", _tone(SECONDS, kw.get("sr", SR)))
    return write_media(path, _frames(SECONDS, 8, w, h), **kw)


def _truncated(path: Path) -> Path:
    """The first 60 %: an .mp4 loses its index (written last), an .mkv keeps a playable part."""
    whole = _good(path.with_name("whole" + path.suffix), **_PCM.get(path.suffix, {}))
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 5])
    whole.unlink()
    return path


_PCM = {".mkv": {"acodec": "pcm_s16le"}}


def _non_finite(value: float) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        audio = _tone(SECONDS, SR)
        audio[len(audio) // 2 :: 97] = value  # a few bad samples in a real soundtrack
        return _good(path, audio=audio, acodec="pcm_f32le")

    return make


def _vfr(path: Path) -> Path:
    """Frames 20..300 ms apart, 16 of them over about 2.5 s."""
    gaps = np.random.default_rng(1).uniform(20, 300, 15)
    pts = np.cumsum(np.r_[0.0, gaps])
    audio = _tone(pts[-1] / 1000 + 0.2, SR)
    return write_media(path, _frames(2.0, 8, 64, 48), audio=audio, pts_ms=pts)


def _uhd(path: Path) -> Path:
    return write_media(path, _frames(1.25, 8, 3840, 2160), audio=_tone(SECONDS, 44100), sr=44100)


# file name -> how to make it; every file lands in one class folder
MEDIA: dict[str, Callable[[Path], Path]] = {
    "empty.mp4": lambda p: (p.touch(), p)[1],
    "garbage.mp4": lambda p: (p.write_text("not a video\n" * 50), p)[1],
    "truncated.mp4": _truncated,
    "cut_short.mkv": _truncated,
    "no_audio.mp4": lambda p: write_media(p, _frames(SECONDS, 8, 64, 48)),
    "audio_only.mp4": lambda p: write_media(p, audio=_tone(SECONDS, SR)),
    "shorter_than_window.mp4": lambda p: write_media(
        p, _frames(0.4, 8, 64, 48), audio=_tone(0.4, SR)
    ),
    "one_pixel.mkv": lambda p: _good(p, 1, 1, vcodec="libx264rgb", acodec="pcm_s16le"),
    "uhd_3840x2160.mp4": _uhd,
    "vfr.mp4": _vfr,
    "surround_5.1.mp4": lambda p: _good(p, audio=_tone(SECONDS, 48000, 6), sr=48000),
    "rate_8k.mp4": lambda p: _good(p, audio=_tone(SECONDS, 8000), sr=8000),
    "rate_96k.mp4": lambda p: _good(p, audio=_tone(SECONDS, 96000), sr=96000),
    "silent.mp4": lambda p: _good(p, audio=np.zeros((int(SECONDS * SR), 1), np.float32)),
    "clipped.mp4": lambda p: _good(p, audio=np.clip(_tone(SECONDS, SR, amp=4.0), -1, 1)),
    "nan_audio.mkv": _non_finite(float("nan")),
    "inf_audio.mkv": _non_finite(float("inf")),
    "spaces ü 日本.mp4": _good,
    f"{HTML_NAME}.mp4": _good,
}

OK = "ok"
# input -> (outcome of prepare: "ok" or the rejected.csv reason, phrase in its detail)
PREPARE = {
    "empty.mp4": ("unreadable", "empty file"),
    "garbage.mp4": ("unreadable", "damaged or not a video"),
    "truncated.mp4": ("unreadable", "damaged or not a video"),
    "cut_short.mkv": ("too short", "< 1 s"),  # what decoded is kept: 0.9 s
    "no_audio.mp4": ("no audio stream", "soundtrack"),
    "audio_only.mp4": ("no video stream", "pictures"),
    "shorter_than_window.mp4": ("too short", "< 1 s"),
    "one_pixel.mkv": ("too small", "1x1"),
    "uhd_3840x2160.mp4": (OK, ""),
    "vfr.mp4": (OK, ""),
    "surround_5.1.mp4": (OK, ""),
    "rate_8k.mp4": (OK, ""),
    "rate_96k.mp4": (OK, ""),
    "silent.mp4": ("silent", "RMS"),
    "clipped.mp4": (OK, ""),
    "nan_audio.mkv": ("unreadable", "NaN or Inf"),
    "inf_audio.mkv": ("unreadable", "NaN or Inf"),
    "spaces ü 日本.mp4": (OK, ""),
    f"{HTML_NAME}.mp4": (OK, ""),
}
# input -> phrase of the one-line error of `separate` (OK: it separates; SILENT: it finds
# nothing to separate and says so)
SILENT = "silent soundtrack"
SEPARATE = {
    "empty.mp4": "empty file",
    "garbage.mp4": "damaged or not a video",
    "truncated.mp4": "damaged or not a video",
    "cut_short.mkv": OK,  # the part that decodes
    "no_audio.mp4": "no audio stream",
    "audio_only.mp4": "no video stream",
    "shorter_than_window.mp4": OK,  # padded to one window, trimmed back
    "one_pixel.mkv": "too small",
    "uhd_3840x2160.mp4": OK,
    "vfr.mp4": OK,
    "surround_5.1.mp4": OK,
    "rate_8k.mp4": OK,
    "rate_96k.mp4": OK,
    "silent.mp4": SILENT,  # heard: nothing sounds, no source, said on the page
    "clipped.mp4": OK,
    "nan_audio.mkv": "NaN or Inf",
    "inf_audio.mkv": "NaN or Inf",
    "spaces ü 日本.mp4": OK,
    f"{HTML_NAME}.mp4": OK,
}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Every input, plus two good clips, in VIDEOS/violin/ of a folder with a space in it."""
    folder = tmp_path_factory.mktemp("media") / "my videos" / "violin"
    folder.mkdir(parents=True)
    made = {name: make(folder / name) for name, make in MEDIA.items()}
    _good(folder / "good_a.mp4")
    _good(folder / "good_b.mp4", sr=44100, audio=_tone(SECONDS, 44100, 2))
    return made


def _assert_one_line_error(captured, phrase: str) -> None:
    out = captured.out + captured.err
    assert "Traceback" not in out
    errors = [line for line in captured.err.splitlines() if line.startswith("pixelplayer: error:")]
    assert len(errors) == 1, captured.err
    assert phrase in errors[0], errors[0]


def _assert_audible(wav: np.ndarray) -> None:
    assert wav.size and np.isfinite(wav).all()
    assert rms(wav) > SILENCE_RMS


# --- data prepare: one batch over every input -------------------------------------------------


@pytest.fixture(scope="module")
def prepared(media, tmp_path_factory) -> tuple[Path, dict[str, list[str]], str]:
    out = tmp_path_factory.mktemp("prepared")
    videos = media["empty.mp4"].parent.parent
    argv = ["data", "prepare", str(videos), str(out), "--workers", "1"]
    argv += ["--min-seconds", "1", "--short-side", str(SHORT_SIDE)]
    rejected, printed = prepare_quietly(argv)
    return out, rejected, printed


def prepared_source(out: Path, stem: str) -> Path:
    """The input file a prepared clip came from (its done marker names it)."""
    return Path(json.loads((out / "done" / "violin" / f"{stem}.json").read_text())["source"])


@pytest.mark.parametrize("name", list(PREPARE))
def test_prepare(prepared, name):
    out, rejected, printed = prepared
    reason, phrase = PREPARE[name]
    stem = Path(name).stem
    if reason == OK:
        assert name not in rejected, rejected.get(name)
        wav, rate = sf.read(out / "audio" / "violin" / f"{stem}.wav", dtype="float32")
        assert rate == SR and wav.ndim == 1  # resampled and downmixed
        _assert_audible(wav)
        frames = sorted((out / "frames" / "violin" / stem).glob("*.jpg"))
        assert len(frames) >= 8  # at least 1 s at 8 fps
        if name == "vfr.mp4":  # frames 20..300 ms apart over 2.5 s: 8 fps all the same
            assert abs(len(frames) - 8 * probe(prepared_source(out, stem)).duration) <= 2
        with Image.open(frames[0]) as im:
            assert min(im.size) == SHORT_SIDE
    else:
        assert name in rejected, sorted(rejected)
        assert rejected[name]["reason"] == reason
        assert phrase in rejected[name]["detail"]
        assert not (out / "done" / "violin" / f"{stem}.json").exists()


def test_prepare_batch_goes_on_and_counts(prepared):
    out, rejected, printed = prepared
    bad = [n for n, (reason, _) in PREPARE.items() if reason != OK]
    assert sorted(rejected) == sorted(bad)
    assert f"rejected {len(bad)} files" in printed
    good = len(PREPARE) - len(bad) + 2
    with open(out / "all.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == good


def test_prepare_from_index_rejects_a_nan_wav(tmp_path, capsys):
    """A float WAV (the audio of an existing dataset) holding NaN or Inf is rejected."""
    rows = []
    for name, bad in (("good", None), ("nan", np.nan), ("inf", -np.inf)):
        wav = _tone(4.0, SR)[:, 0]
        if bad is not None:
            wav[100::1000] = bad
        audio = tmp_path / "audio" / f"{name}.wav"
        audio.parent.mkdir(exist_ok=True)
        sf.write(audio, wav, SR, subtype="FLOAT")
        frames = tmp_path / "frames" / "violin" / name
        frames.mkdir(parents=True)
        for i in range(1, 33):
            Image.new("RGB", (32, 32), (i * 7, 10, 10)).save(frames / f"{i:06d}.jpg")
        rows.append(f"{audio},{frames},32")
    (tmp_path / "old.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    argv = ["data", "prepare", "--from-index", str(tmp_path / "old.csv"), str(out)]
    assert main([*argv, "--workers", "1"]) == 0
    assert "rejected 2 files" in capsys.readouterr().out
    with open(out / "rejected.csv", newline="") as f:
        found = {Path(r["path"]).stem: r for r in csv.DictReader(f)}
    assert sorted(found) == ["inf", "nan"]
    assert all("NaN or Inf" in r["detail"] for r in found.values())


# --- separate: the command line and the API ----------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder with an untrained tiny PixelPlayer (config.yaml + best.pt)."""
    return untrained_run(tmp_path_factory.mktemp("run"), TINY)


@pytest.fixture(scope="module")
def separator(run):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny nets are far too small for two threads
    yield Separator.from_run(run, device="cpu")
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(SEPARATE))
def test_separate_cli(media, run, separator, name, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["separate", str(media[name]), "--model", str(run), "--out", str(out)]
    code = main([*argv, "--grid", "2", "--map-fps", "0", "--no-progress"])
    captured = capsys.readouterr()
    if SEPARATE[name] == SILENT:
        assert code == 0 and "Traceback" not in captured.out + captured.err, captured.err
        assert "note: the soundtrack is silent" in captured.out
        assert json.loads((out / "manifest.json").read_text())["sources"] == []
        page = (out / "index.html").read_text(encoding="utf-8")
        assert "Nothing sounds here" in page and "the soundtrack is silent" in page
    elif SEPARATE[name] == OK:
        assert code == 0, captured.err
        assert "Traceback" not in captured.out + captured.err
        wav, rate = sf.read(out / "sources" / "source_0.wav", dtype="float32")
        assert rate == SR
        _assert_audible(wav)
        page = (out / "index.html").read_text(encoding="utf-8")
        assert (out / "overlay.mp4").is_file() and "<img src=x" not in page
        assert html.escape(Path(name).stem) in page  # a name shows as text
        overlay = probe(out / "overlay.mp4")
        assert overlay.has_audio and max(overlay.width, overlay.height) <= 640
    else:
        assert code == 1
        _assert_one_line_error(captured, SEPARATE[name])
        assert not (out / "manifest.json").exists()


def test_a_newline_in_a_file_name_keeps_the_error_on_one_line(run, tmp_path, capsys):
    path = tmp_path / "two\nlines.mp4"
    path.write_bytes(b"")
    code = main(["separate", str(path), "--model", str(run), "--no-progress"])
    assert code == 1
    _assert_one_line_error(capsys.readouterr(), "two\\nlines.mp4: unreadable (empty file")


@pytest.mark.parametrize("name", list(SEPARATE))
def test_separate_api(media, separator, name):
    if SEPARATE[name] == SILENT:
        r = separator.separate_video(media[name], progress=False, grid=2, map_fps=0)
        assert len(r.source_waves) == 0 and (r.energy == 0).all()
        assert (r.labels == -1).all() and any("silent" in n for n in r.notes)
        return
    if SEPARATE[name] != OK:
        with pytest.raises(MediaError, match=SEPARATE[name].replace(".", r"\.")) as info:
            separator.separate_video(media[name], progress=False, grid=2, map_fps=0)
        assert "\n" not in str(info.value)
        return
    r = separator.separate_video(media[name], progress=False, grid=2, map_fps=0)
    expected, _ = load_audio(media[name], sr=SR)
    assert r.sr == SR and r.mixture.shape == expected.shape
    _assert_audible(r.mixture)
    assert r.source_waves.shape[1] == len(r.mixture) and np.isfinite(r.source_waves).all()
    _assert_audible(r.source_waves[0])
    assert np.isfinite(r.energy).all() and len(r.energy) >= 3  # at least 0.4 s at 8 fps
    info = probe(media[name])
    assert (r.width, r.height) == (info.width, info.height)


def test_uhd_frames_are_scaled_while_decoding(media):
    """A 3840x2160 video yields frames at the working size; no full-size RGB frame is made."""
    path = media["uhd_3840x2160.mp4"]
    tracemalloc.start()
    try:
        shapes = {f.shape for f in iter_frames(path, 8, (456, 256))}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert shapes == {(256, 456, 3)}
    assert peak < 3840 * 2160 * 3 / 2  # well under one full-size RGB frame (24.9 MB)


# --- data synth: pictures and SoundFonts --------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height pixels (a decompression bomb) with no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def _picture(array: np.ndarray) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        Image.fromarray(array).save(path)
        return path

    return make


def _truncated_png(path: Path) -> Path:
    rng = np.random.default_rng(0)
    _picture(rng.integers(0, 255, (64, 64, 3), np.uint8))(path)
    path.write_bytes(path.read_bytes()[:400])
    return path


def _cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (40, 30), (0, 200, 200, 0)).save(path.with_suffix(".jpg"))
    return path.with_suffix(".jpg")


_GREY16 = (np.arange(48 * 48).reshape(48, 48) * 28).astype(np.uint16)  # 0..64484
_OPAQUE = np.full((40, 30, 3), (30, 120, 220), np.uint8)

# picture -> (how to make it, phrase of the error or OK)
PICTURES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty.png": (lambda p: (p.touch(), p)[1], "unreadable image"),
    "text.png": (lambda p: (p.write_text("hello"), p)[1], "unreadable image"),
    "truncated.png": (_truncated_png, "unreadable image"),
    "transparent.png": (_picture(np.zeros((20, 20, 4), np.uint8)), "fully transparent"),
    "huge.png": (lambda p: _png_header_only(p, 8000, 8000), "megapixels"),
    "bomb.png": (lambda p: _png_header_only(p, 30000, 30000), "decompression bomb"),
    "one_pixel.png": (_picture(np.full((1, 1, 3), 200, np.uint8)), OK),
    "grey16.png": (_picture(_GREY16), OK),
    "cmyk.jpg": (_cmyk_jpeg, OK),
    "spaces ü 日本.png": (_picture(_OPAQUE), OK),
}
SYNTH_ARGS = ["--classes", "violin", "--clips", "1", "--seconds", "1", "--size", "32"]


@pytest.mark.parametrize("name", list(PICTURES))
def test_synth_images(name, tmp_path, capsys):
    make, expected = PICTURES[name]
    folder = tmp_path / "pictures ü" / "violin"
    folder.mkdir(parents=True)
    picture = make(folder / name)
    out = tmp_path / "synth"
    code = main(["data", "synth", str(out), "--images", str(folder.parent), *SYNTH_ARGS])
    captured = capsys.readouterr()
    if expected != OK:
        assert code == 1
        _assert_one_line_error(captured, expected)
        assert picture.name in captured.err
        return
    assert code == 0, captured.err
    video = out / "videos" / "violin" / "violin_0000.mp4"
    wav, rate = load_audio(video, sr=SR)
    _assert_audible(wav)
    frames = np.stack(list(iter_frames(video, 8)))
    assert frames.shape[1:] == (32, 32, 3)
    if name == "grey16.png":  # 16-bit grey is scaled to 8 bits, not saturated to white
        sprite = np.asarray(_user_picture(str(picture)), np.float64)[..., :3]
        assert 80 < sprite.mean() < 180  # the ramp 0..64484 of 65535 averages 125


def _truncated_soundfont(path: Path) -> Path:
    with open(DEFAULT_SOUNDFONT, "rb") as f:
        path.write_bytes(f.read(64 * 1024))
    return path


def _linked_soundfont(path: Path) -> Path:
    path.symlink_to(DEFAULT_SOUNDFONT.resolve())
    return path


def _wav_as_soundfont(path: Path) -> Path:
    sf.write(path, _tone(0.2, SR)[:, 0], SR, format="WAV")
    return path


# SoundFont -> (how to make it, phrase of the error or OK)
SOUNDFONTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty.sf2": (lambda p: (p.touch(), p)[1], "not a SoundFont"),
    "sound.sf2": (_wav_as_soundfont, "not a SoundFont"),
    "truncated.sf2": (_truncated_soundfont, "cannot load"),
    "folder.sf2": (lambda p: (p.mkdir(), p)[1], "no such SoundFont"),
    "spaces ü 日本.sf2": (_linked_soundfont, OK),
}


@pytest.mark.parametrize("name", list(SOUNDFONTS))
def test_synth_soundfont(name, tmp_path, capsys):
    if not DEFAULT_SOUNDFONT.is_file():
        pytest.skip(f"{DEFAULT_SOUNDFONT} not installed (apt-get install fluid-soundfont-gm)")
    make, expected = SOUNDFONTS[name]
    font = make(tmp_path / name)
    out = tmp_path / "synth"
    code = main(
        ["data", "synth", str(out), "--soundfont", str(font), "--workers", "1", *SYNTH_ARGS]
    )
    captured = capsys.readouterr()
    if expected != OK:
        assert code == 1
        _assert_one_line_error(captured, expected)
        return
    assert code == 0, captured.err
    wav, _ = load_audio(out / "videos" / "violin" / "violin_0000.mp4", sr=SR)
    _assert_audible(wav)


def test_every_input_has_a_row():
    assert set(PREPARE) == set(SEPARATE) == set(MEDIA)
