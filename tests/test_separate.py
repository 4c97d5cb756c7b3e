"""`pixelplayer separate` and the Separator API, with a tiny untrained PixelPlayer."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from pixelplayer.audio import load_audio
from pixelplayer.cli import main
from pixelplayer.cli.separate import output_dirs, parse_points
from pixelplayer.errors import MediaError, PixelPlayerError
from pixelplayer.precision import autocast
from pixelplayer.separation import Separator
from pixelplayer.separation.regions import group_cells, otsu_threshold, sounding_cells
from pixelplayer.separation.windows import overlap_add_weights, window_starts
from pixelplayer.video import probe, write_video
from tests.helpers import tone, untrained_run

TINY = [
    "model_kwargs={k: 8, frame: {width: 8}, sound: {ngf: 4, levels: 5}}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
]
SR = 11025


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny nets are far too small for two threads: on a loaded machine their OpenMP
    barriers made each call ~100x slower (250 ms instead of 3 ms)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with an untrained tiny PixelPlayer (config.yaml + best.pt)."""
    return untrained_run(tmp_path_factory.mktemp("run"), TINY)


@pytest.fixture(scope="module")
def separator(run):
    return Separator.from_run(run, device="cpu")


def _frames(seconds: float, fps: float, w: int, h: int) -> np.ndarray:
    """A bright square moving over a gradient: (T, h, w, 3) uint8."""
    n = int(round(seconds * fps))
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 60)], -1)
        x = (i * 3) % max(1, w - 20)
        frames[i, h // 4 : h // 4 + 20, x : x + 20] = (250, 220, 30)
    return frames


def _odd_video(path, frames: np.ndarray, fps: float, audio: np.ndarray, sr: int):
    """write_video needs even sizes (yuv420p); odd ones go through 4:4:4 RGB H.264 + PCM."""
    t, h, w, _ = frames.shape
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264rgb", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = w, h, "rgb24"
        as_ = c.add_stream("pcm_s16le", rate=sr)
        as_.layout = "mono"
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None]
        af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        af.sample_rate, af.pts = sr, 0
        for p in as_.encode(af):
            c.mux(p)
        for p in as_.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    short = _odd_video(d / "short.mkv", _frames(2.5, 30, 171, 97), 30, tone(2.5, 8000), 8000)
    long = d / "long.mp4"
    write_video(long, _frames(9, 25, 200, 150), 25, tone(9, 44100, 330), 44100)
    mute = d / "mute.mp4"
    write_video(mute, _frames(1, 25, 64, 48), 25)
    silent = d / "silent.mp4"
    write_video(silent, _frames(1, 25, 64, 48), 25, np.zeros(44100, np.float32), 44100)
    tiny = d / "tiny.mp4"  # shorter than one 0.74 s window
    write_video(tiny, _frames(0.5, 30, 96, 64), 30, tone(0.5, 22050, 500), 22050)
    return {"short": short, "long": long, "mute": mute, "silent": silent, "tiny": tiny}


def _check_manifest(out, result, video_sr: int):
    m = json.loads((out / "manifest.json").read_text())
    files = [m[k] for k in ("frame", "energy", "energy_png", "overlay", "mixture")]
    for s in m["sources"]:
        files += [s["wav"], s["png"], s["spectrogram"]]
    for p in m["points"]:
        files += [p["wav"], p["spectrogram"]]
    files += [c["wav"] for c in m["cells"]]
    missing = [f for f in files if not (out / f).is_file()]
    assert not missing, missing
    assert m["grid"] == list(result.labels.shape)
    assert (m["width"], m["height"], m["sr"]) == (result.width, result.height, SR)
    assert len(m["sources"]) == len(result.source_waves)
    assert len(m["cells"]) == result.grid**2
    assert np.load(out / m["energy"]).shape == result.energy.shape
    overlay = probe(out / m["overlay"])
    assert overlay.has_audio and overlay.sample_rate == video_sr  # the original track
    assert overlay.fps == pytest.approx(result.fps)
    return m


# --- pure functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length,win,align", [(100, 100, 1), (37, 100, 1), (8191 * 5 + 7, 8191, 256), (1000, 63, 8)]
)
def test_overlap_add_weights_sum_to_one(length, win, align):
    starts = window_starts(length, win, align)
    assert starts[0] == 0 and starts[-1] + win >= length
    assert len(starts) == 1 or starts[-1] < length  # no window only of padding
    assert np.all(starts % align == 0)
    weights = overlap_add_weights(starts, win)
    total = np.zeros(starts[-1] + win)
    for s, w in zip(starts, weights, strict=True):
        total[s : s + win] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_otsu_splits_a_bimodal_sample_and_keeps_a_constant_one():
    values = np.r_[np.full(10, -6.0), np.full(5, -1.0)]
    thr, gap = otsu_threshold(values)
    assert -6 < thr < -1 and gap == pytest.approx(5)
    assert otsu_threshold(np.ones(4)) == (1.0, 0.0)
    sound, _ = sounding_cells(np.full((3, 4), 0.5))
    assert sound.all()  # no silent group: everything sounds


def test_group_cells_finds_two_sources_and_silence():
    rng = np.random.default_rng(0)
    feats = rng.uniform(0.4, 0.6, (6, 6, 8)) * 0.1
    energy = np.full((6, 6), 1e-6)
    feats[:2, :2] = [1, 0, 1, 0, 1, 0, 1, 0]
    feats[4:, 4:] = [0, 1, 0, 1, 0, 1, 0, 1]
    energy[:2, :2], energy[4:, 4:] = 2.0, 1.0
    labels, thr = group_cells(feats + rng.normal(0, 0.01, feats.shape), energy)
    assert 1e-6 < thr < 1.0
    assert (labels[:2, :2] == 0).all() and (labels[4:, 4:] == 1).all()  # loudest first
    assert (labels[2:4] == -1).all()
    one, _ = group_cells(feats, energy, sources=1)
    assert set(np.unique(one)) == {-1, 0}


def test_parse_points_and_output_dirs(tmp_path):
    assert parse_points("1,2; 30,40") == [(1, 2), (30, 40)]
    with pytest.raises(PixelPlayerError, match="x,y"):
        parse_points("1;2")
    a, b = tmp_path / "a" / "x.mp4", tmp_path / "b" / "x.mp4"
    assert output_dirs([a], "o") == [Path("o")]  # one video: DIR itself
    assert [d.name for d in output_dirs([a, b], "o")] == ["x", "x-2"]
    assert output_dirs([a], None)[0].parts[-2:] == ("separated", "x")


# --- separating videos ------------------------------------------------------------------------


def test_short_odd_video_lengths_energy_and_files(separator, videos, tmp_path):
    path = videos["short"]
    out = tmp_path / "out"
    points, boxes = [(0, 0), (170, 96)], [(0, 0, 171, 97), (100, 50, 101, 51)]
    r = separator.separate_video(path, points=points, boxes=boxes, out=out, progress=False)
    mix, _ = load_audio(path, sr=SR)
    assert r.mixture.shape == mix.shape == (len(mix),)
    for waves, n in ((r.source_waves, len(r.source_waves)), (r.point_waves, 2), (r.cell_waves, 49)):
        assert waves.shape == (n, len(mix)) and np.isfinite(waves).all()
    info = probe(path)
    assert abs(len(r.energy) - math.ceil(info.duration * r.fps)) <= 1
    # short side 97 -> 32 px: 56 x 32 frames, a 2 x 4 feature grid
    assert r.energy.shape[1:] == r.labels.shape == (2, 4)
    assert r.energy.dtype == np.float32 and (r.energy >= 0).all()
    assert r.labels.min() >= -1 and len(r.source_waves) == r.labels.max() + 1
    assert r.source_masks.shape == (len(r.source_waves), 2, 4)
    assert r.cell_at(170, 96) == (1, 3) and tuple(r.point_cells[1]) == (1, 3)
    assert r.box_waves.shape == (2, len(mix))
    m = _check_manifest(out, r, 8000)
    assert [b["box"] for b in m["boxes"]] == [list(b) for b in boxes]
    assert all((out / b["wav"]).is_file() for b in m["boxes"])
    assert m["points"][1]["x"] == 170 and m["cells"][-1]["row"] == 6
    assert m["cells"][-1]["x1"] <= 170 and m["cells"][-1]["y1"] <= 96  # frame.jpg is even-sized


def test_unit_masks_give_back_the_mixture(run, videos, monkeypatch):
    """Masks of one: every window's mask blends back to exactly one, so the waves are the mix."""
    sep = Separator.from_run(run, device="cpu")

    def certain(vis, sound):  # logits that every mask turns into exactly one
        return torch.full((*vis.shape[:2], *sound.shape[2:]), 60.0)

    monkeypatch.setattr(sep.model, "vector_logits", certain)
    r = sep.separate_video(videos["long"], sources=2, points=[(5, 5)], grid=2, progress=False)
    assert len(r.mixture) == len(load_audio(videos["long"], sr=SR)[0])
    np.testing.assert_allclose(r.point_waves[0], r.mixture, atol=1e-4)
    np.testing.assert_allclose(
        r.cell_waves, np.broadcast_to(r.mixture, (4, len(r.mixture))), atol=1e-4
    )
    # every cell of a frame then holds the mixture's energy over that frame's span
    flat = r.energy.reshape(len(r.energy), -1)
    np.testing.assert_allclose(flat, flat[:, :1].repeat(flat.shape[1], 1), rtol=1e-4)
    assert abs(len(r.energy) - 9 * r.fps) <= 1


def test_a_region_is_heard_as_the_model_was_trained(run, videos, monkeypatch):
    """A region's cells' features max-pooled into one vector, as training pools a clip's: the
    separator asks the model for its regions' logits (`PixelPlayer.region_logits`), and a box
    over the whole frame is heard as one vector pooled over every cell."""
    sep = Separator.from_run(run, device="cpu")
    asked = []
    region_logits = sep.model.region_logits

    def spy(cells, regions, sound):  # cells (B, K, P), regions (V, P), sound (B, K, R, Tc)
        asked.append((cells, regions, sound))
        return region_logits(cells, regions, sound)

    monkeypatch.setattr(sep.model, "region_logits", spy)
    r = sep.separate_video(videos["short"], boxes=[(0, 0, 171, 97)], grid=1, progress=False)
    assert asked and all(c.shape[-1] == r.labels.size for c, _, _ in asked)
    whole = torch.ones(1, r.labels.size, dtype=torch.bool)  # the box: every cell
    assert any((regions == whole).all(1).any() for _, regions, _ in asked)
    cells, _, sound = asked[0]
    # inference tensors, under the separator's autocast (bfloat16 on CPUs that have it)
    with torch.inference_mode(), autocast(sep.device, sep.masker.dtype):
        pooled = sep.model.vector_logits(cells.amax(-1)[:, None], sound)  # one vector: all cells
        torch.testing.assert_close(sep.model.region_logits(cells, whole, sound), pooled)


def test_long_video_sources_and_points(separator, videos, tmp_path):
    r = separator.separate_video(videos["long"], sources=2, points=[(199, 149)], progress=False)
    n = len(load_audio(videos["long"], sr=SR)[0])
    assert r.source_waves.shape[1] == r.point_waves.shape[1] == r.cell_waves.shape[1] == n
    assert 1 <= len(r.source_waves) <= 2
    assert r.energy.shape == (len(r.frame_times), *r.labels.shape)
    assert r.frame_times[1] == pytest.approx(1 / r.fps)


def test_video_shorter_than_one_window_is_padded_and_trimmed(separator, videos):
    r = separator.separate_video(videos["tiny"], points=[(95, 63)], progress=False)
    n = len(load_audio(videos["tiny"], sr=SR)[0])
    assert n < separator.sample.audio_len
    assert r.mixture.shape == (n,) and r.point_waves.shape == (1, n)
    assert r.cell_waves.shape == (49, n) and np.isfinite(r.cell_waves).all()
    assert abs(len(r.energy) - 0.5 * r.fps) <= 1


def test_points_outside_the_frame_are_an_error(separator, videos):
    with pytest.raises(PixelPlayerError, match="171x97"):
        separator.separate_video(videos["short"], points=[(171, 5)], progress=False)
    with pytest.raises(PixelPlayerError, match="171x97"):
        separator.separate_video(videos["short"], points=[(3, -1)], progress=False)
    with pytest.raises(PixelPlayerError, match="171x97"):
        separator.separate_video(videos["short"], boxes=[(10, 10, 172, 20)], progress=False)


def test_no_audio_is_an_error_and_silent_audio_has_no_source(separator, videos):
    with pytest.raises(MediaError, match="no audio stream"):
        separator.separate_video(videos["mute"], progress=False)
    r = separator.separate_video(videos["silent"], progress=False)
    assert len(r.source_waves) == 0 and (r.labels == -1).all() and not r.energy.any()
    assert r.notes == ["the soundtrack is silent: nothing sounds, no source"]


def test_cli_separates_several_videos(run, videos, tmp_path, capsys):
    out = tmp_path / "sep"
    args = ["separate", str(videos["short"]), str(videos["long"]), "--model", str(run)]
    args += ["--out", str(out), "--points", "10,10;20,30", "--sources", "2", "--grid", "3"]
    assert main([*args, "--no-progress"]) == 0
    for stem in ("short", "long"):
        m = json.loads((out / stem / "manifest.json").read_text())
        assert len(m["points"]) == 2 and len(m["cells"]) == 9
        assert m["model"] == str(run)
    # a second run into the same folder leaves no files of the first behind
    again = ["separate", str(videos["short"]), "--model", str(run), "--out", str(out / "short")]
    assert main([*again, "--grid", "2", "--no-progress"]) == 0
    assert len(list((out / "short" / "cells").iterdir())) == 4
    assert not (out / "short" / "points").exists() or not any((out / "short" / "points").iterdir())
    printed = capsys.readouterr().out
    assert "manifest.json" in printed
    try:
        import pixelplayer.separation.page  # noqa: F401  (written by another engineer; may be absent)
    except ImportError:
        pass
    else:
        assert (out / "short" / "index.html").is_file() and "index.html" in printed
    bad = ["separate", str(videos["short"]), "--model", str(run), "--points", "500,5"]
    assert main([*bad, "--out", str(tmp_path / "bad"), "--no-progress"]) == 1
    assert "171x97" in capsys.readouterr().err
    assert main(["separate", str(videos["mute"]), "--model", str(run), "--no-progress"]) == 1
    assert "no audio stream" in capsys.readouterr().err


def test_the_run_config_is_read_once(run, videos, tmp_path, monkeypatch):
    """One `separate` reads RUN/config.yaml once (`Run.config`), however many parts need it."""
    reads = []
    read_text = Path.read_text

    def spy(self, *args, **kwargs):
        if self.name == "config.yaml":
            reads.append(self.resolve())
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", spy)
    argv = ["separate", str(videos["tiny"]), "--model", str(run), "--out", str(tmp_path / "o")]
    assert main([*argv, "--grid", "1", "--map-fps", "0", "--no-progress"]) == 0
    assert reads == [(run / "config.yaml").resolve()]


def test_real_duet_end_to_end(separator, real_data, tmp_path):
    path = real_data / "duets" / "guitar_violin.mp4"
    out = tmp_path / "duet"
    r = separator.separate_video(path, points=[(320, 180)], out=out, progress=False)
    info = probe(path)
    assert abs(len(r.energy) - math.ceil(info.duration * r.fps)) <= 1
    assert r.source_waves.shape[1] == len(load_audio(path, sr=SR)[0])
    _check_manifest(out, r, info.sample_rate)
