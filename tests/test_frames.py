"""The frame net pretrained on stills of the generated world, and PixelPlayer started from it."""

import csv
import json

import numpy as np
import torch

from pixelplayer.cli import main
from pixelplayer.config import load_config
from pixelplayer.data import pictures
from pixelplayer.data.synth import clip
from pixelplayer.data.synth.stills import render_still, render_stills
from pixelplayer.models.registry import load_checkpoint
from pixelplayer.training import build_model
from pixelplayer.training.init import init_weights
from tests.helpers import TINY
from tests.helpers import set_args as _args

CLASSES = ["violin", "drums", "flute"]
FRAMES_TINY = [
    "model_kwargs={k: 8, frame: {width: 8}, classes: [violin, drums, flute]}",
    "sample.frame_size=32",
    "train.batch_size=4",
    "train.epoch_size=8",
    "train.epochs=2",
    "train.val_mixtures=6",
    "train.workers=1",
]


def test_a_still_is_a_function_of_its_key_and_shows_its_class_from_the_training_pictures(
    monkeypatch,
):
    drawn = []

    def pick(name, images, holdout, rng):
        drawn.append((name, holdout))
        return pick_picture(name, images, holdout, rng)

    pick_picture = clip._pick_picture
    monkeypatch.setattr(clip, "_pick_picture", pick)
    frames, labels = render_stills(5, seed=0, part=0, classes=CLASSES, size=48, workers=1)
    assert frames.shape == (5, 48, 48, 3) and frames.dtype == np.uint8
    # each still draws its instrument first, then its silent objects, never a held-out picture
    instruments = [name for name, _ in drawn if name in CLASSES]
    assert instruments == [CLASSES[i] for i in labels]
    assert not any(holdout for _, holdout in drawn)
    assert {name for name, _ in drawn} - set(CLASSES) <= set(clip.DISTRACTORS)
    again, same = render_stills(5, seed=0, part=0, classes=CLASSES, size=48, workers=1)
    assert np.array_equal(frames, again) and np.array_equal(labels, same)
    frame, label = render_still((0, 0, 3), CLASSES, 48)
    assert np.array_equal(frame, frames[3]) and label == labels[3]
    other, _ = render_stills(5, seed=0, part=1, classes=CLASSES, size=48, workers=1)
    assert not np.array_equal(frames, other)  # validation stills are not the training ones
    assert all(pictures.training_pictures(c) for c in CLASSES)


def test_frames_trains_without_data_and_pixelplayer_starts_from_it(
    prepared, tmp_path, capsys, monkeypatch
):
    frames, tuned = tmp_path / "frames", tmp_path / "tuned"
    argv = ["train", "--model", "frames", "--out", str(frames), "--no-progress"]
    assert main([*argv, *_args(*FRAMES_TINY)]) == 0
    with open(frames / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(0 <= float(r["val_acc"]) <= 1 for r in rows)

    def no_stills(*args, **kwargs):
        raise AssertionError("a finished run drew stills again")

    monkeypatch.setattr("pixelplayer.training.frames.render_stills", no_stills)
    assert main(argv) == 0  # called again (the main job's resume): nothing left to do
    source = load_checkpoint(frames / "best.pt")
    assert source["model"] == "frames" and source["kwargs"]["classes"] == CLASSES
    capsys.readouterr()
    # PixelPlayer with the same frame net: its frame_net.* come from the frames run
    ppl = ["train", "--config", "pixelplayer-cpu", "--data", str(prepared), "--out", str(tuned)]
    assert (
        main([*ppl, "--no-progress", *_args(*TINY, "train.epochs=0"), "--init", str(frames)]) == 0
    )
    report = json.loads((tuned / "init.json").read_text())
    model, _ = build_model(load_config(tuned / "config.yaml"))  # the run as it starts
    assert init_weights(model, str(frames), "pixelplayer") == report
    own = model.state_dict()
    frame_keys = [k for k in own if k.startswith("frame_net.")]
    assert report["loaded"] == len(frame_keys) > 0
    assert sorted(report["not_in_model"]) == ["classifier.bias", "classifier.weight"]
    assert all(k.startswith(("sound_net.", "synth.")) for k in report["missing_in_source"])
    assert all(torch.equal(own[k], source["state_dict"][k]) for k in frame_keys)
    assert "frames" in capsys.readouterr().out  # the init line names the source model


def test_only_the_frames_model_trains_without_data(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "pixelplayer-cpu", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "trains on prepared data: give --data" in err and len(err.splitlines()) == 1
    assert not out.exists()
    bad = [*FRAMES_TINY[1:], "model_kwargs={classes: [violin, theremin]}"]
    argv = ["train", "--model", "frames", "--out", str(out), "--no-progress", *_args(*bad)]
    assert main(argv) == 1
    assert "no class 'theremin'" in capsys.readouterr().err
    assert not out.exists()
