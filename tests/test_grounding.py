"""Which pixels sound: the grounding head, its loss, and what `separate` makes of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixelplayer.cli import main
from pixelplayer.localization import grounding_scores
from pixelplayer.models.frame import FrameNet
from pixelplayer.models.grounding import GroundingHead, correspondence_targets, grounding_loss
from pixelplayer.models.pixelplayer import PixelPlayer
from pixelplayer.run import Run
from pixelplayer.separation import Separator
from pixelplayer.separation.page import write_separation_page
from pixelplayer.separation.regions import sounding_groups
from tests.helpers import TINY, marked_frames, set_args, tone, untrained_run, write_clip

GROUNDED = "model_kwargs={k: 8, frame: {width: 8}, sound: {ngf: 4, levels: 5}, grounding: {dim: 8}}"


def test_a_clip_sounds_in_every_mixture_that_hears_its_class_and_never_in_silence():
    classes = torch.tensor([[0, 1], [2, 0]])
    heard = torch.tensor([[True, True], [True, False]])  # clip (1, 1) is shown, not heard
    want = torch.tensor(
        [  # mixture 0 hears {0, 1}, mixture 1 hears {2}, then silence
            [1, 0, 0],  # clip (0, 0), class 0
            [1, 0, 0],  # clip (0, 1), class 1
            [0, 1, 0],  # clip (1, 0), class 2
            [1, 0, 0],  # clip (1, 1), class 0: heard in mixture 0, silent in its own
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(correspondence_targets(classes, heard), want)


def _scene(cls: int, rng: np.random.Generator, size: int = 48) -> tuple[torch.Tensor, tuple]:
    """A coloured square (the instrument, colour by class) and a grey one (silent) on a dark
    ground: (3, 2, size, size) uint8 frames, the square's (x, y)."""
    colours = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]])
    img = torch.full((3, size, size), 60, dtype=torch.uint8)
    x, y = (int(v) for v in rng.integers(0, size - 16, 2))
    dx, dy = (int(v) for v in rng.integers(0, size - 10, 2))
    img[:, dy : dy + 10, dx : dx + 10] = 200
    img[:, y : y + 16, x : x + 16] = colours[cls][:, None, None].to(torch.uint8)
    return img[:, None].repeat(1, 2, 1, 1), (x, y)


def _heard(classes, heard) -> torch.Tensor:
    """(1, 64, 16) log magnitude: a band per class heard."""
    mag = torch.full((1, 64, 16), 1e-3)
    for c, h in zip(classes, heard, strict=True):
        if h:
            mag[0, 8 + 12 * c : 12 + 12 * c] += 1.0
    return torch.log(mag)


def test_the_head_learns_which_cells_sound_and_keeps_silent_ones_dark():
    """Squares whose colour goes with a band of sound, grey squares that never sound: after
    a short training the model's own decision (> 0.5) places the sound on the right cells."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net, head = FrameNet(k=8, width=8, stages=2), GroundingHead(k=8, dim=8, width=8)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], 2e-3)
    for _ in range(120):
        frames, mags, classes, heard = [], [], [], []
        for _ in range(8):
            cs, h = rng.choice(4, 2, replace=False), [True, bool(rng.random() > 0.3)]
            frames.append(torch.stack([_scene(int(c), rng)[0] for c in cs]))
            mags.append(_heard(cs, h))
            classes.append(torch.tensor(cs))
            heard.append(torch.tensor(h))
        pixels = net.forward_pixels(torch.stack(frames).flatten(0, 1)).unflatten(0, (8, 2))
        loss = grounding_loss(
            head, pixels, torch.stack(mags), torch.stack(classes), torch.stack(heard)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval(), head.eval()
    right, total = 0, 0
    with torch.no_grad():
        for _ in range(20):
            cs, h = rng.choice(4, 2, replace=False), [True, bool(rng.random() > 0.5)]
            for c, on in zip(cs, h, strict=True):
                frames, (x, y) = _scene(int(c), rng)
                cells = head.cells(net.forward_pixels(frames[None]))
                p = torch.sigmoid(head.own_logits(cells, head.sound(_heard(cs, h)[None])))[0, 0]
                g = p.shape[-1]
                centre = (torch.arange(g) + 0.5) * 48 / g
                in_x = (centre >= x) & (centre < x + 16)
                in_y = (centre >= y) & (centre < y + 16)
                truth = (in_y[:, None] & in_x[None]) & on
                right += int(((p > 0.5) == truth).sum())
                total += truth.numel()
            silence = torch.full((1, 1, 64, 16), float(np.log(1e-3)))
            p = torch.sigmoid(head.own_logits(cells, head.sound(silence)))
            assert (p < 0.5).all()  # a frame where nothing sounds is dark
    assert right / total > 0.85


def test_the_head_leaves_the_masks_as_they_were():
    torch.manual_seed(0)
    kw = {"k": 4, "frame": {"width": 4, "stages": 2}, "sound": {"ngf": 4, "levels": 5}}
    plain, grounded = PixelPlayer(**kw).eval(), PixelPlayer(**kw, grounding={"dim": 4}).eval()
    grounded.load_state_dict(plain.state_dict(), strict=False)
    mag, frames = torch.rand(2, 1, 64, 32), torch.randint(0, 256, (2, 2, 3, 2, 64, 64))
    frames = frames.to(torch.uint8)
    with torch.no_grad():
        want = plain(mag, frames)
        logits, loss = grounded(mag, frames, torch.tensor([[0, 1], [1, 2]]), torch.ones(2, 2) > 0)
        torch.testing.assert_close(grounded(mag, frames), want)
        torch.testing.assert_close(logits, want)
        assert loss.ndim == 0 and torch.isfinite(loss)
        raw = grounded.frame_pixels(frames[:, 0])  # (B, K, T_f, h, w)
        assert grounded.sounding_logits(raw, mag).shape == (2, 2, *raw.shape[-2:])
        assert grounded.sounding_logits(raw, mag[:1]).shape == (2, 2, *raw.shape[-2:])
    assert {k.split(".")[0] for k in grounded.state_dict()} - {
        "frame_net",
        "sound_net",
        "synth",
    } == {"grounding"}
    with pytest.raises(ValueError, match="no grounding head"):
        plain.sounding_logits(raw, mag)


def test_sources_are_the_groups_of_cells_the_model_calls_sounding():
    maps = np.zeros((10, 8, 8), np.float32)
    maps[:, 1:4, 1:4] = 0.9  # a sure source of 9 cells
    maps[:7, 5:7, 5:8] = 0.7  # a less sure one of 6 cells, silent in 3 of 10 frames
    maps[:, 7, 0] = 0.99  # one cell alone: noise
    maps[:2, 6, 1:4] = 0.8  # sounding in too few frames
    labels, sure = sounding_groups(maps)
    assert sure.tolist() == pytest.approx([0.9, 0.7])
    assert (labels == 0).sum() == 9 and (labels == 1).sum() == 6 and (labels >= 0).sum() == 15
    labels, sure = sounding_groups(maps, sources=1)
    assert len(sure) == 1 and (labels == 0).sum() == 9 and labels.max() == 0
    labels, sure = sounding_groups(np.full((4, 8, 8), 0.2, np.float32))
    assert len(sure) == 0 and (labels == -1).all()


def test_grounding_scores_follow_the_field():
    kinds = {"instrument": [30, 40], "distractor": [1, 50], "background": [3, 300]}
    got = grounding_scores([0.5, 0.2, 0.0, 1.0], kinds)
    assert got["ciou"] == 50.0  # two of four frames reach 0.3
    steps = np.linspace(0, 1, 21)[:-1]
    auc = np.mean([np.mean(np.array([0.5, 0.2, 0.0, 1.0]) >= s) for s in steps])
    assert got["auc"] == pytest.approx(100 * auc)
    assert got["nsa"] == pytest.approx(100 * (1 - 4 / 350))  # silent cells called silent
    assert got["sounding distractor"] == pytest.approx(2.0)


def test_training_with_the_head_records_its_loss(prepared, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--config", "pixelplayer-cpu", "--data", str(prepared), "--out", str(out)]
    assert main([*argv, *set_args(*TINY, GROUNDED), "--no-progress"]) == 0
    history = (out / "history.csv").read_text().splitlines()
    columns = history[0].split(",")
    assert columns[:4] == ["epoch", "step", "train_loss", "train_grounding"]
    values = [float(row.split(",")[3]) for row in history[1:]]
    assert len(values) == 2 and all(0 < v < 5 for v in values)
    model, _ = Run(out).load_model()
    assert model.grounding is not None


@pytest.fixture(scope="module")
def duet_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    sr = 11025
    audio = (tone(4.0, sr, 440) + tone(4.0, sr, 660, seed=1))[:, None]
    return write_clip(path, marked_frames(4.0), [(audio, sr, 0.0)])


def _grounded_run(folder, bias: float):
    run = untrained_run(folder, [*TINY[1:4], GROUNDED])
    model, ckpt = Run(run).load_model()
    model.grounding.bias.data.fill_(bias)  # +20: every cell sounds; -20: none does
    ckpt["state_dict"] = model.state_dict()
    torch.save(ckpt, run / "best.pt")
    return run


def test_separate_draws_the_map_and_finds_no_source_where_nothing_sounds(tmp_path, duet_video):
    out = tmp_path / "sep"
    run = _grounded_run(tmp_path / "dark", -20.0)
    assert main(["separate", str(duet_video), "--model", str(run), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sounding"] == "sounding.npy" and manifest["sources"] == []
    assert np.load(out / "sounding.npy").max() < 0.01  # absolute: dark, not stretched
    page = (out / "index.html").read_text()
    assert "Nothing sounds here" in page and "sounding.png" in page


def test_separate_hears_the_cells_the_model_calls_sounding(tmp_path, duet_video):
    sep = Separator.from_run(_grounded_run(tmp_path / "lit", 20.0), device="cpu")
    r = sep.separate_video(duet_video, progress=False, out=tmp_path / "sep")
    assert r.sounding is not None and r.sounding.min() > 0.99
    assert len(r.source_waves) == 1 and (r.labels == 0).all()  # one group: every cell
    assert r.sure.tolist() == pytest.approx([1.0], abs=0.01)
    manifest = json.loads((tmp_path / "sep" / "manifest.json").read_text())
    assert manifest["sources"][0]["sure"] == pytest.approx(1.0, abs=0.01)
    page = write_separation_page(tmp_path / "sep")
    assert "% sure" in page.read_text()


@pytest.mark.parametrize("level", [0, 255])
def test_an_all_black_or_all_white_video_is_separated_without_error(tmp_path, level, capsys):
    """No object to see: with a head that calls nothing sounding, the map is dark and the
    page says that nothing sounds (what a trained head does there: bench_separate.py)."""
    sr = 11025
    frames = np.full((32, 96, 128, 3), level, np.uint8)
    video = write_clip(tmp_path / "flat.mp4", frames, [(tone(4.0, sr)[:, None], sr, 0.0)])
    run = _grounded_run(tmp_path / "run", -20.0)
    out = tmp_path / "sep"
    argv = ["separate", str(video), "--model", str(run), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["sources"] == []
    assert np.load(out / "sounding.npy").max() < 0.5
    assert "Nothing sounds here" in (out / "index.html").read_text()
