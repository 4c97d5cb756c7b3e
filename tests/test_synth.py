"""`pixelplayer data synth`: streams, audio, boxes, determinism, duets, user pictures, motion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from pixelplayer.audio import load_audio
from pixelplayer.cli import main
from pixelplayer.data import pictures
from pixelplayer.data.synth import soundfont
from pixelplayer.data.synth.clip import DISTRACTORS, Clip, render_clip
from pixelplayer.data.synth.instruments import CLASSES
from pixelplayer.data.synth.scene import picture_alpha
from pixelplayer.data.synth.world import synthesize
from pixelplayer.errors import PixelPlayerError
from pixelplayer.video import probe, read_frames

SECONDS, FPS, SR, SIZE = 3.0, 8, 11025, 224
ARGS = ["--seconds", str(SECONDS), "--fps", str(FPS), "--sr", str(SR), "--size", str(SIZE)]


def _metas(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "meta").glob("*.json"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """2 classes x 2 solo clips + 1 duet, made by two worker processes."""
    out = tmp_path_factory.mktemp("synth")
    argv = ["data", "synth", str(out), "--classes", "violin,drums", "--clips", "2"]
    assert main([*argv, "--duets", "1", "--seed", "3", "--workers", "2", *ARGS]) == 0
    return out


def _rerender(meta: dict, draw_sources: bool) -> Clip:
    return render_clip(
        meta["classes"], meta["seed"], meta["seconds"], meta["fps"], meta["size"], meta["sr"],
        meta["soundfont"], meta["images"], draw_sources=draw_sources,
    )  # fmt: skip


def _frame_rms(wav: np.ndarray, n_frames: int) -> np.ndarray:
    hop = SR / FPS
    return np.array(
        [
            np.sqrt(np.mean(wav[max(0, int((k - 0.5) * hop)) : int((k + 0.5) * hop)] ** 2))
            for k in range(n_frames)
        ]
    )


def test_layout_streams_and_audio(dataset: Path):
    metas = _metas(dataset)
    assert sorted(metas) == ["drums_0000", "drums_0001", "duet_0000", "violin_0000", "violin_0001"]
    n_frames = int(SECONDS * FPS)
    for vid, meta in metas.items():
        assert meta["id"] == vid and meta["fps"] == FPS and meta["sr"] == SR
        video = dataset / meta["video"]
        if meta["kind"] == "solo":
            assert video == dataset / "videos" / meta["class"] / f"{vid}.mp4"
            assert meta["stems"] == [f"stems/{vid}.wav"]
        info = probe(video)
        assert info.has_video and info.has_audio
        assert info.fps == pytest.approx(FPS) and (info.width, info.height) == (SIZE, SIZE)
        assert info.sample_rate == SR
        assert info.duration == pytest.approx(SECONDS, abs=0.15)
        assert read_frames(video, fps=FPS).shape == (n_frames, SIZE, SIZE, 3)
        audio, rate = load_audio(video)  # raises MediaError when silent
        assert rate == SR and len(audio) >= SECONDS * SR
        for rel in meta["stems"]:
            stem, rate = load_audio(dataset / rel)
            assert rate == SR and len(stem) == int(SECONDS * SR)
            assert np.sqrt(np.mean(stem**2)) > 0.01 and 0.2 < np.abs(stem).max() <= 0.95
        for obj in meta["sources"] + meta["distractors"]:
            assert len(obj["boxes"]) == n_frames
        assert 1 <= len(meta["distractors"]) <= 3
        assert all(d["silent"] for d in meta["distractors"])
    assert metas["drums_0000"]["sources"][0]["percussion"] is True
    assert metas["violin_0000"]["program"] == 40


def test_boxes_are_where_the_instrument_is_drawn(dataset: Path):
    for meta in _metas(dataset).values():
        full, bare = _rerender(meta, True), _rerender(meta, False)
        # the file holds what render_clip draws (up to H.264 loss)
        decoded = read_frames(dataset / meta["video"], fps=FPS).astype(float)
        mse = np.mean((decoded - full.frames) ** 2)
        assert 10 * np.log10(255**2 / mse) > 24  # fine textures cost H.264 a few dB
        changed = np.abs(full.frames.astype(int) - bare.frames).max(-1) > 8  # (T, H, W)
        for k in range(meta["num_frames"]):
            inside = np.zeros((SIZE, SIZE), bool)
            for source in meta["sources"]:
                x0, y0, x1, y1 = source["boxes"][k]
                inside[y0:y1, x0:x1] = True
                ys, xs = np.nonzero(changed[k, y0:y1, x0:x1])
                drawn = [xs.min() + x0, ys.min() + y0, xs.max() + x0 + 1, ys.max() + y0 + 1]
                if not meta["occluders"]:  # a shape in front hides a side of the box
                    assert np.abs(np.subtract(drawn, [x0, y0, x1, y1])).max() <= 4, (drawn, k)
            assert not (changed[k] & ~inside).any()  # nothing drawn outside the boxes


def test_same_seed_same_audio_any_workers(dataset: Path, tmp_path: Path):
    # the fixture ran 2 workers; one worker and a class subset make the same clip
    argv = ["data", "synth", str(tmp_path / "a"), "--classes", "violin", "--clips", "1"]
    assert main([*argv, "--seed", "3", "--workers", "1", *ARGS]) == 0
    first, _ = sf.read(dataset / "stems/violin_0000.wav", dtype="int16")
    again, _ = sf.read(tmp_path / "a/stems/violin_0000.wav", dtype="int16")
    assert np.array_equal(first, again)
    # and the same pictures, poses, sounds and boxes
    keep = ("sources", "distractors", "occluders", "background")
    made, remade = _metas(dataset)["violin_0000"], _metas(tmp_path / "a")["violin_0000"]
    assert {k: made[k] for k in keep} == {k: remade[k] for k in keep}
    argv[2] = str(tmp_path / "b")
    assert main([*argv, "--seed", "4", "--workers", "1", *ARGS]) == 0
    other, _ = sf.read(tmp_path / "b/stems/violin_0000.wav", dtype="int16")
    assert not np.array_equal(first, other)
    # two clips of one class differ too
    second, _ = sf.read(dataset / "stems/violin_0001.wav", dtype="int16")
    assert not np.array_equal(first, second)


def test_second_run_keeps_clips(dataset: Path, capsys):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*.mp4")}
    argv = ["data", "synth", str(dataset), "--classes", "violin,drums", "--clips", "2"]
    assert main([*argv, "--duets", "1", "--seed", "3", *ARGS]) == 0
    assert "made 0 clips" in capsys.readouterr().out
    assert before == {p: p.stat().st_mtime_ns for p in dataset.rglob("*.mp4")}


def test_duet_two_boxes_and_stems_that_sum_to_the_audio(dataset: Path):
    meta = _metas(dataset)["duet_0000"]
    assert meta["kind"] == "duet" and sorted(meta["classes"]) == ["drums", "violin"]
    assert meta["video"] == "duets/duet_0000.mp4"
    assert meta["stems"] == ["stems/duet_0000_0.wav", "stems/duet_0000_1.wav"]
    assert len(meta["sources"]) == 2
    for a, b in zip(meta["sources"][0]["boxes"], meta["sources"][1]["boxes"], strict=True):
        apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert apart, (a, b)
    stems = [load_audio(dataset / rel)[0] for rel in meta["stems"]]
    total = stems[0] + stems[1]
    assert np.abs(total).max() <= 1.0
    mix, _ = load_audio(dataset / meta["video"])
    mix = mix[: len(total)]
    snr = 10 * np.log10(np.sum(total**2) / np.sum((mix - total) ** 2))
    assert snr > 15  # AAC at 96 kb/s
    # each part moves with its own sound: its box size follows its own envelope
    for source, stem in zip(meta["sources"], stems, strict=True):
        area = [(b[2] - b[0]) * (b[3] - b[1]) for b in source["boxes"]]
        assert np.corrcoef(area, _frame_rms(stem, meta["num_frames"]))[0, 1] > 0.5


def test_trio_three_boxes_apart_and_stems_that_sum_to_the_audio(tmp_path: Path):
    argv = ["data", "synth", str(tmp_path), "--classes", "violin,drums,flute", "--clips", "0"]
    assert main([*argv, "--trios", "1", "--workers", "1", *ARGS]) == 0
    meta = json.loads((tmp_path / "meta/trio_0000.json").read_text())
    assert meta["kind"] == "trio" and sorted(meta["classes"]) == ["drums", "flute", "violin"]
    assert meta["video"] == "trios/trio_0000.mp4"
    assert meta["stems"] == [f"stems/trio_0000_{i}.wav" for i in range(3)]
    boxes = [np.array(s["boxes"]) for s in meta["sources"]]
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = boxes[i], boxes[j]
            apart = (a[:, 2] <= b[:, 0]) | (b[:, 2] <= a[:, 0])
            apart |= (a[:, 3] <= b[:, 1]) | (b[:, 3] <= a[:, 1])
            assert apart.all()
    total = sum(load_audio(tmp_path / rel)[0] for rel in meta["stems"])
    mix = load_audio(tmp_path / meta["video"])[0][: len(total)]
    assert 10 * np.log10(np.sum(total**2) / np.sum((mix - total) ** 2)) > 15  # AAC
    with pytest.raises(PixelPlayerError, match="three classes"):
        synthesize(tmp_path / "x", classes=["violin", "drums"], clips_per_class=0, trios=1)


def test_same_class_duet(tmp_path: Path):
    argv = ["data", "synth", str(tmp_path), "--classes", "flute", "--clips", "0"]
    assert main([*argv, "--duets", "1", "--same-class", "--workers", "1", *ARGS]) == 0
    meta = json.loads((tmp_path / "meta/duet_0000.json").read_text())
    assert meta["classes"] == ["flute", "flute"]
    a, b = (load_audio(tmp_path / rel)[0] for rel in meta["stems"])
    assert not np.allclose(a, b)


def test_motion_follows_the_audio_envelope(dataset: Path):
    for meta in _metas(dataset).values():
        if meta["kind"] != "solo":
            continue
        stem, _ = load_audio(dataset / meta["stems"][0])
        env = _frame_rms(stem, meta["num_frames"])
        boxes = np.array(meta["sources"][0]["boxes"])
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        assert np.corrcoef(area, env)[0, 1] > 0.6, meta["id"]
        for d in meta["distractors"]:  # silent objects keep their size, whatever the sound,
            dboxes = np.array(d["boxes"])  # or swell to a rhythm of their own
            widths = dboxes[:, 2] - dboxes[:, 0]
            if d["moves"]:
                assert np.ptp(widths) > 0
            else:
                assert np.ptp(widths) == np.ptp(dboxes[:, 3] - dboxes[:, 1]) == 0


def test_user_images(tmp_path: Path):
    images = tmp_path / "pictures"
    (images / "violin").mkdir(parents=True)
    (images / "drums").mkdir()
    cutout = Image.new("RGBA", (200, 120), (0, 0, 0, 0))  # a red disc on transparency
    cutout.paste((255, 0, 0, 255), (40, 0, 160, 120), _disc(120))
    cutout.save(images / "violin" / "disc.png")
    Image.new("RGB", (90, 60), (20, 200, 40)).save(images / "drums" / "photo.jpg", quality=95)
    out = tmp_path / "out"
    argv = ["data", "synth", str(out), "--classes", "violin,drums", "--clips", "1"]
    assert main([*argv, "--images", str(images), "--workers", "1", *ARGS]) == 0
    for vid, colour in (("violin_0000", (255, 0, 0)), ("drums_0000", (20, 200, 40))):
        meta = json.loads((out / "meta" / f"{vid}.json").read_text())
        source = meta["sources"][0]
        assert source["image"].startswith(str(images.resolve()))
        frames = read_frames(out / meta["video"], fps=FPS).astype(float)
        x0, y0, x1, y1 = source["boxes"][0]
        # the photo fills its box (a rectangle); the disc's box is tight around the disc
        assert abs((x1 - x0) / (y1 - y0) - (1.5 if vid.startswith("drums") else 1.0)) < 0.06
        centre = frames[0, (y0 + y1) // 2 - 3 : (y0 + y1) // 2 + 3, (x0 + x1) // 2 - 3 :]
        # drawn in its own colour, turned and lit a little differently
        seen = centre[:, :6].mean((0, 1))
        assert np.argmax(seen) == np.argmax(colour) and seen.max() - np.sort(seen)[1] > 60
    # a class without pictures is an error, named
    (images / "drums" / "photo.jpg").unlink()
    argv[2] = str(tmp_path / "out2")
    assert main([*argv, "--images", str(images), *ARGS]) == 1


def _disc(d: int) -> Image.Image:
    yy, xx = np.mgrid[0:d, 0:d]
    inside = (xx - d / 2 + 0.5) ** 2 + (yy - d / 2 + 0.5) ** 2 <= (d / 2) ** 2
    return Image.fromarray((inside * 255).astype(np.uint8))


def test_unknown_class_names_the_valid_ones(tmp_path: Path, capsys):
    assert main(["data", "synth", str(tmp_path), "--classes", "violin,kazoo"]) == 1
    err = capsys.readouterr().err
    assert "kazoo" in err and "violin, acoustic_guitar, trumpet" in err and "french_horn" in err


def test_missing_soundfont(tmp_path: Path, capsys, monkeypatch):
    assert main(["data", "synth", str(tmp_path), "--soundfont", str(tmp_path / "no.sf2")]) == 1
    assert "no.sf2" in capsys.readouterr().err
    missing = {str(tmp_path / "FluidR3_GM.sf2"): "fluid-soundfont-gm"}
    monkeypatch.setattr(soundfont, "TRAINING_SOUNDFONTS", missing)
    assert main(["data", "synth", str(tmp_path)]) == 1
    assert "apt-get install fluid-soundfont-gm" in capsys.readouterr().err


def test_picture_alpha_says_which_pixels_of_a_box_show_the_object(tmp_path):
    """A user's cut-out (a disc on a transparent square) drawn at a box's size: opaque in the
    middle, transparent in the corners; the crop to its opaque part is kept, as when drawn."""
    im = np.zeros((60, 60, 4), np.uint8)
    yy, xx = np.mgrid[:60, :60]
    im[(yy - 30) ** 2 + (xx - 30) ** 2 <= 20**2] = (200, 40, 40, 255)  # a disc of radius 20
    path = tmp_path / "disc.png"
    Image.fromarray(im, "RGBA").save(path)
    alpha = picture_alpha(str(path), 80, 40)
    assert alpha.shape == (40, 80)
    assert alpha[20, 40] > 0.99 and alpha[0, 0] < 0.01 and alpha[39, 79] < 0.01
    # a disc fills pi/4 of its bounding square, whatever the box's aspect
    assert abs(float((alpha > 0.5).mean()) - np.pi / 4) < 0.05


HELD_OUT_PICTURES = f"debian:{pictures.HOLDOUT_PACKAGE}"


def test_training_never_reaches_the_held_out_sets(tmp_path: Path):
    drawn = set()
    for name in [*CLASSES, *DISTRACTORS]:
        labels = pictures.training_pictures(name)
        assert labels, name
        for label in labels:
            drawn.add(pictures.source_of(label)["package"])
    assert HELD_OUT_PICTURES not in drawn and len(drawn) >= 3  # several sources, none held out
    for name in CLASSES:  # the classes with emoji have 6 pictures or more
        if name in pictures.EMOJI:
            assert len(pictures.training_pictures(name)) >= 6, name
    assert str(soundfont.HOLDOUT_SOUNDFONT) not in soundfont.TRAINING_SOUNDFONTS
    assert len(soundfont.TRAINING_SOUNDFONTS) >= 3
    # a dataset made with the defaults draws every class and none of the held-out material
    assert main(["data", "synth", str(tmp_path), "--clips", "1", "--duets", "2", *ARGS]) == 0
    metas = _metas(tmp_path).values()
    assert {m["classes"][0] for m in metas} == set(CLASSES)
    fonts = set()
    for meta in metas:
        for thing in meta["sources"] + meta["distractors"]:
            assert thing["picture_source"]["package"] != HELD_OUT_PICTURES
            assert "tuxpaint" not in thing["image"]
        for source in meta["sources"]:
            assert source["soundfont"] in soundfont.TRAINING_SOUNDFONTS
            fonts.add(source["soundfont"])
    assert len(fonts) >= 2  # clips are played by several SoundFonts


@pytest.mark.skipif(
    not (pictures.TUXPAINT_MUSIC.is_dir() and soundfont.HOLDOUT_SOUNDFONT.is_file()),
    reason="the held-out packages are not installed (scripts/setup.sh installs them)",
)
def test_holdout_draws_only_the_held_out_sets(tmp_path: Path):
    argv = ["data", "synth", str(tmp_path), "--clips", "1", "--holdout", "both", *ARGS]
    assert main(argv) == 0
    metas = _metas(tmp_path).values()
    # only the classes the held-out pictures show, each drawn from them, played by TimGM6mb
    assert {m["classes"][0] for m in metas} == set(pictures.HOLDOUT_PICTURES)
    for meta in metas:
        source = meta["sources"][0]
        assert source["picture_source"]["package"] == HELD_OUT_PICTURES
        assert source["soundfont"] == str(soundfont.HOLDOUT_SOUNDFONT)
    # a held-out set never replays a training clip's notes
    assert main(["data", "synth", str(tmp_path / "train"), "--clips", "1", "--classes",
                 "violin", *ARGS]) == 0  # fmt: skip
    held = _metas(tmp_path)["violin_0000"]["sources"][0]["notes"]
    assert held != _metas(tmp_path / "train")["violin_0000"]["sources"][0]["notes"]


def test_holdout_names_a_missing_package(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(pictures, "TUXPAINT_MUSIC", tmp_path / "no-tuxpaint")
    assert main(["data", "synth", str(tmp_path / "a"), "--holdout", "pictures", *ARGS]) == 1
    err = capsys.readouterr().err
    assert "apt-get install tuxpaint-stamps-default" in err and len(err.splitlines()) == 1
    monkeypatch.setattr(soundfont, "HOLDOUT_SOUNDFONT", tmp_path / "TimGM6mb.sf2")
    assert main(["data", "synth", str(tmp_path / "b"), "--holdout", "sounds", *ARGS]) == 1
    err = capsys.readouterr().err
    assert "timgm6mb-soundfont" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "option, value",
    [("--seconds", "nan"), ("--seconds", "inf"), ("--fps", "-8"), ("--fps", "1e9"),
     ("--size", "100000"), ("--sr", "4000"), ("--clips", "-1"), ("--seed", "-3")],
)  # fmt: skip
def test_numbers_out_of_range_are_one_line(tmp_path: Path, capsys, option: str, value: str):
    argv = ["data", "synth", str(tmp_path / "out"), *ARGS]
    assert main([*argv, f"{option}={value}"]) == 1
    err = capsys.readouterr().err
    assert option in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work
