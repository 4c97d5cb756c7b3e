"""AMnet: the motion refiner's shapes, residual start, motion frames, same-class mixtures, and
the staged training and evaluation from the command line."""

import json

import numpy as np
import pytest
import torch

from pixelplayer.ame import audio_window
from pixelplayer.cli import main
from pixelplayer.config import load_config
from pixelplayer.data.cache import build_cache
from pixelplayer.data.dataset import MixDataset, SampleConfig, draw_mixture, motion_indices
from pixelplayer.data.index import read_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.amnet import AMNet, MotionRefiner, time_encoding
from pixelplayer.models.registry import build, load_model
from pixelplayer.run import Run
from pixelplayer.training import build_model
from tests.helpers import TINY as PP_TINY
from tests.helpers import TINY_AME as AME_TINY

TINY_PARTS = {
    "appearance": {"k": 4, "frame": {"width": 8, "stages": 2}, "sound": {"ngf": 4, "levels": 5}},
    "ame": {"dim": 8, "width": 4},
    "refiner": {"dim": 16, "width": 4, "heads": 2, "layers": 1},
}


def test_refiner_shapes_and_zero_start():
    torch.manual_seed(0)
    ref = MotionRefiner(motion_dim=8, dim=16, width=4, heads=2, layers=1)
    spec = torch.randn(3, 2, 256, 32)  # (B, 2, F, T)
    motion = torch.randn(3, 12, 8)  # (B, M, E)
    out = ref(spec, motion, fps=8.0)
    assert out.shape == (3, 1, 256, 32)
    assert torch.count_nonzero(out) == 0  # the last layer starts at zero: stage 1 unchanged
    out.sum().backward()
    assert ref.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="256 frequency rows"):
        ref(torch.randn(1, 2, 128, 32), motion[:1], fps=8.0)


def test_time_encoding_tells_moments_apart():
    enc = time_encoding(torch.tensor([0.0, 0.125, 1.0, 2.5]), 32)
    assert enc.shape == (4, 32)
    sim = enc @ enc.T
    assert torch.allclose(sim.diagonal(), torch.full((4,), 16.0), atol=1e-4)  # sin^2 + cos^2
    assert (sim - torch.diag(sim.diagonal())).max() < 15.0  # distinct times, distinct codes


def test_amnet_starts_from_stage_one_and_trains_only_the_refiner():
    torch.manual_seed(0)
    net = AMNet(**TINY_PARTS).train()
    mag = torch.rand(2, 1, 256, 32)
    frames = torch.randint(0, 256, (2, 2, 3, 3, 32, 32), dtype=torch.uint8)
    motion = torch.randint(0, 256, (2, 2, 1, 5, 16, 16), dtype=torch.uint8)
    refined = net(mag, frames, motion)
    first = net(mag, frames, motion, stage=1)
    assert refined.shape == first.shape == (2, 2, 256, 32)
    assert torch.equal(refined, first)  # the zero-initialised correction
    assert not net.appearance.training and not net.ame.training  # frozen BatchNorm statistics
    trainable = {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"refiner"}
    # a different motion changes the refined mask once the refiner has learnt anything
    torch.nn.init.normal_(net.refiner.head.weight, std=0.1)
    other = torch.randint(0, 256, motion.shape, dtype=torch.uint8)
    assert not torch.allclose(net(mag, frames, motion), net(mag, frames, other))


def test_motion_frames_cover_the_audio_window_like_ame_windows():
    cfg = SampleConfig(audio_len=22050, fps=8.0, sr=11025)  # 2 s: 16 steps
    idx = motion_indices(start=1.0, cfg=cfg, num_frames=80)
    assert len(idx) == 17 and idx[1:] == list(range(9, 25))
    # AME's audio for frames 9..24 starts at (9 - 1/2) / fps = 1.0625 s: the nearest frame
    ame_first = int(round((9 - 0.5) * cfg.sr / cfg.fps))
    assert abs(ame_first - 1.0 * cfg.sr) <= cfg.sr / cfg.fps / 2
    assert len(audio_window(np.zeros(100000, np.float32), 9, 16, cfg.fps, cfg.sr)) == 22050
    assert motion_indices(0.0, cfg, 80)[0] == 0  # clamped at the clip's start
    assert motion_indices(9.9, cfg, 80)[-1] == 79  # and at its end


def test_same_class_mixtures(prepared):
    clips = read_index(prepared / "train.csv")
    rng = np.random.default_rng(0)
    by = {c.video_id: c.cls for c in clips}
    same = SampleConfig(audio_len=8191, same_class=1.0, silent=1)
    for _ in range(20):
        m = draw_mixture(rng, clips, same, train=True)
        heard, silent = [by[v] for v in m.videos[:2]], by[m.videos[2]]
        assert heard[0] == heard[1] and m.videos[0] != m.videos[1] and silent != heard[0]
        assert m.gains[2] == 0.0
    half = SampleConfig(audio_len=8191, same_class=0.5)
    kinds = [len({by[v] for v in draw_mixture(rng, clips, half, True).videos}) for _ in range(200)]
    assert 70 < kinds.count(1) < 130
    # the default draws exactly as before the option existed: distinct classes
    assert all(
        len({by[v] for v in draw_mixture(rng, clips, SampleConfig(), True).videos}) == 2
        for _ in range(20)
    )


def test_dataset_serves_motion_frames(prepared):
    cfg = SampleConfig(audio_len=8191, frame_size=32, stride_frames=4, motion_size=16)
    clips = read_index(prepared / "train.csv")
    decoded = MixDataset(clips, cfg, length=2, cache=False)[0]["motion"]
    assert decoded.dtype == torch.uint8 and decoded.shape == (2, 1, 7, 16, 16)  # 6 steps + 1
    assert decoded.float().std() > 0
    folder, _ = build_cache(prepared, 32, 11025, workers=1, progress=False)
    cached = MixDataset(clips, cfg, length=2, cache=folder)[0]["motion"]
    assert cached.shape == decoded.shape
    assert (cached.float() - decoded.float()).abs().mean() < 8  # grey levels: other resizes


def _sets(*pairs):
    return [a for kv in pairs for a in ("--set", kv)]


@pytest.fixture(scope="module")
def parts(prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("amnet")
    pp = ["train", "--data", str(prepared), "--out", str(root / "pp"), "--no-progress"]
    assert main([*pp, *_sets(*PP_TINY, "spec.combine=independent")]) == 0
    ame = ["train", "--model", "ame", "--data", str(prepared), "--out", str(root / "ame")]
    assert main([*ame, "--no-progress", *_sets(*AME_TINY)]) == 0
    return root


def _amnet_argv(prepared, parts, out, *extra):
    sets = [s for s in PP_TINY if not s.startswith("model_kwargs")]
    sets += [
        f"model_kwargs.appearance_run={parts / 'pp'}",
        f"model_kwargs.ame_run={parts / 'ame'}",
        "model_kwargs.refiner={dim: 16, width: 4, heads: 2, layers: 1}",
        "sample.motion_size=16",
        "sample.same_class=0.5",
        "train.max_minutes=null",
        *extra,
    ]
    argv = ["train", "--model", "amnet", "--data", str(prepared), "--out", str(out)]
    return [*argv, "--no-progress", *_sets(*sets)]


def test_amnet_trains_resumes_and_scores_both_stages(
    prepared, parts, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "amnet"
    assert main(_amnet_argv(prepared, parts, out)) == 0

    # the checkpoint rebuilds the whole model from its kwargs: no other run is read
    def no_runs(*args, **kwargs):
        raise AssertionError("a model read another run")

    monkeypatch.setattr(Run, "load_model", no_runs)
    monkeypatch.setattr(Run, "config", property(no_runs))
    model, ckpt = load_model(out / "best.pt")
    monkeypatch.undo()
    assert isinstance(model, AMNet) and "appearance_run" not in ckpt["kwargs"]
    assert ckpt["kwargs"]["appearance"]["k"] == 8  # the stage 1 run's own kwargs, stored
    stage1, _ = load_model(parts / "pp" / "best.pt")
    for name, w in stage1.state_dict().items():  # stage 1 is frozen, weights and statistics
        assert torch.equal(model.appearance.state_dict()[name], w), name
    assert main(_amnet_argv(prepared, parts, out, "train.epochs=3")) == 0
    assert "resuming" in capsys.readouterr().out

    # the tiny data's test split has one clip per class: same-class mixtures come from train's
    ev = ["eval", str(out), "--data", str(prepared), "--split", "train", "--n", "4"]
    ev.append("--no-progress")
    assert main([*ev, "--separator", "amnet,appearance,ibm", "--same-class"]) == 0
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["same_class"] is True
    assert {k.split(" ")[0] for k in metrics["results"]} == {"amnet", "appearance", "ibm"}
    lists = list((prepared / "mixtures").glob("train-2mix-sameclass-4-*.json"))
    assert len(lists) == 1
    by = {c.video_id: c.cls for c in read_index(prepared / "train.csv")}
    for m in json.loads(lists[0].read_text())["mixtures"]:
        assert len({by[v] for v in m["videos"]}) == 1


def test_amnet_refuses_parts_that_do_not_fit(prepared, parts, tmp_path, capsys):
    def fails(argv, phrase):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert phrase in err and "Traceback" not in err, err

    out = tmp_path / "x"
    no_ame = _amnet_argv(prepared, parts, out, "model_kwargs.ame_run=null")
    fails(no_ame, "set model_kwargs.ame_run to its folder")
    fails(_amnet_argv(prepared, parts, out, "sample.motion_size=32"), "sample.motion_size=16")
    fails(_amnet_argv(prepared, parts, out, "spec.combine=softmax"), "other combine")
    swapped = _amnet_argv(prepared, parts, out, f"model_kwargs.ame_run={parts / 'pp'}")
    fails(swapped, "is a pixelplayer run; model_kwargs.ame_run needs an ame run")


def test_amnet_preset_loads_and_its_kwargs_are_checked_when_built():
    cfg = load_config("amnet")
    assert cfg.model == "amnet" and cfg.sample.motion_size == 64
    typo = load_config("amnet", ["model_kwargs.apperance_run=x"])  # the model's business
    with pytest.raises(PixelPlayerError, match="unknown config key model_kwargs.apperance_run"):
        build_model(typo)


def test_motion_map_in_chunks_equals_one_pass(monkeypatch):
    from pixelplayer import motion_map as mm

    torch.manual_seed(0)
    ame = build("ame", dim=8, width=4).eval()
    gray = np.random.default_rng(0).integers(0, 256, (21, 24, 32), dtype=np.uint8)
    mix = np.random.default_rng(1).standard_normal(21 * 11025 // 8).astype(np.float32) * 0.1
    whole = mm.motion_map(ame, gray, mix)
    assert whole.shape == (21, 3, 4) and whole.min() >= 0 and whole.max() <= 1
    monkeypatch.setattr(mm, "CHUNK", 5)
    assert np.allclose(mm.motion_map(ame, gray, mix), whole, atol=1e-5)
    assert mm.gray_frame(np.zeros((240, 320, 3), np.uint8), 64).shape == (64, 88)


def test_separate_maps_motion_with_an_amnet_or_ame_run(prepared, parts, tmp_path):
    out = tmp_path / "amnet"
    assert main(_amnet_argv(prepared, parts, out)) == 0
    video = next((prepared.parent / "synth" / "videos").rglob("*.mp4"))
    for model, extra in ((out, []), (parts / "pp", ["--motion", str(parts / "ame")])):
        dest = tmp_path / "sep" / model.name
        argv = ["separate", str(video), "--model", str(model), "--out", str(dest)]
        assert main([*argv, "--no-progress", *extra]) == 0
        manifest = json.loads((dest / "manifest.json").read_text())
        motion = np.load(dest / manifest["motion"])
        energy = np.load(dest / "energy.npy")
        assert motion.shape[0] == energy.shape[0] and motion.min() >= 0 and motion.max() <= 1
        assert "motion.png" in (dest / "index.html").read_text()
    # without an embedding there is no motion map, and none left from before
    assert main(["separate", str(video), "--model", str(parts / "pp"), "--out", str(dest)]) == 0
    assert "motion" not in json.loads((dest / "manifest.json").read_text())
    assert not (dest / "motion.png").exists()
