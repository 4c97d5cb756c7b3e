"""Training, resume and evaluation end to end on a tiny generated dataset."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from pixelplayer.cli import main
from pixelplayer.config import load_config
from pixelplayer.data.dataset import MixDataset, fixed_mixtures
from pixelplayer.data.index import read_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.registry import load_checkpoint
from pixelplayer.training.task import Step, Task
from tests.helpers import TINY
from tests.helpers import set_args as _args


def _train_argv(prepared, out, *sets, config="pixelplayer-cpu"):
    cfg = ["--config", config] if config else []
    return [
        "train",
        *cfg,
        "--data",
        str(prepared),
        "--out",
        str(out),
        "--no-progress",
        *_args(*sets),
    ]


def _train(prepared, out, *extra):
    return main(_train_argv(prepared, out, *TINY, *extra))


def _history(out):
    with open(out / "history.csv") as f:
        return list(csv.DictReader(f))


def test_train_writes_run_folder_and_resumes(prepared, tmp_path):
    out = tmp_path / "run"
    assert _train(prepared, out) == 0
    for name in ("config.yaml", "last.pt", "best.pt", "history.csv", "val_mixtures.json"):
        assert (out / name).is_file(), name
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(r["val_sdr"] != "" and 0 <= int(r["val_scored"]) <= 8 for r in rows)
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["model"] == "pixelplayer" and ckpt["train_state"]["epoch"] == 2
    # more epochs on the same folder continue from the checkpoint, not from scratch
    assert _train(prepared, out, "train.epochs=3") == 0
    assert [int(r["epoch"]) for r in _history(out)] == [1, 2, 3]


class Line(Task):
    """y = 2x from random batches: a task of its own, with no data to read."""

    title = "line"
    history_fields = ["epoch", "step", "train_loss", "val_fit", "lr", "minutes"]
    val_figure, best_key = "val_fit", "best_fit"

    def build(self):
        return torch.nn.Linear(1, 1), {"in_features": 1, "out_features": 1}

    def steps_per_epoch(self):
        return 3

    def batches(self, epoch):
        g = torch.Generator().manual_seed(epoch)
        for _ in range(3):
            x = torch.randn(8, 1, generator=g)
            yield {"x": x, "y": 2 * x}

    def loss(self, net, batch):
        return Step(torch.nn.functional.mse_loss(net(batch["x"]), batch["y"]))

    def validate(self, model):
        fit = -abs(model.weight.item() - 2.0)
        return {"val_fit": fit}, f", fit {fit:.3f}"


def test_a_task_of_its_own_trains_resumes_and_keeps_its_best(tmp_path, monkeypatch, capsys):
    from pixelplayer.config import from_dict
    from pixelplayer.training import loop

    monkeypatch.setitem(loop.TASKS, "line", Line)
    sets = {"lr_sound": 0.05, "lr_steps": [], "epochs": 3, "weight_decay": 0.0}
    cfg = from_dict({"model": "line", "train": sets})
    longer = from_dict({"model": "line", "train": {**sets, "epochs": 5}})
    first = loop.train(cfg, None, tmp_path / "run", progress=False)
    assert first["epoch"] == 3 and first["step"] == 9
    resumed = loop.train(longer, None, tmp_path / "run", progress=False)
    assert "resuming" in capsys.readouterr().out
    straight = loop.train(longer, None, tmp_path / "straight", progress=False)
    assert resumed["weights"] == straight["weights"]  # the resume is exact
    assert [int(r["epoch"]) for r in _history(tmp_path / "run")] == [1, 2, 3, 4, 5]
    fits = [float(r["val_fit"]) for r in _history(tmp_path / "run")]
    assert fits[-1] > fits[0]  # it learns
    best = load_checkpoint(tmp_path / "run" / "best.pt")["train_state"]
    assert best["best_fit"] == max(fits) == resumed["best_fit"]
    assert resumed["best"] == f"best val_fit {max(fits):.3f}"


def test_other_config_on_existing_run_is_refused(prepared, tmp_path):
    out = tmp_path / "run"
    assert _train(prepared, out, "train.epochs=1") == 0
    with pytest.raises(PixelPlayerError, match="another configuration"):
        from pixelplayer.training import train

        train(
            load_config("pixelplayer-cpu", [*TINY, "spec.mask=ratio"]),
            prepared,
            out,
            progress=False,
        )


def test_unknown_config_key_names_valid_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batchsize: 3\n")
    with pytest.raises(PixelPlayerError, match="batch_size"):
        load_config(bad)


def test_eval_scores_model_and_oracles_on_a_fixed_list(prepared, tmp_path):
    out = tmp_path / "run"
    assert _train(prepared, out, "train.epochs=1") == 0
    args = ["eval", str(out), "--data", str(prepared), "--n", "6", "--no-progress"]
    assert main(args) == 0
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    results = metrics["results"]
    assert set(results) == {"pixelplayer (run)", "ibm", "irm", "mixture"}
    for r in results.values():
        assert r["count"] + sum(r["unscored"].values()) == 6
    # the oracles bound the problem: the ideal masks beat the mixture by far
    assert results["ibm"]["mean"]["sdr"] > results["mixture"]["mean"]["sdr"] + 5
    assert abs(results["mixture"]["mean"]["nsdr"]) < 1e-6
    lists = list((prepared / "mixtures").glob("*.json"))
    assert len(lists) == 1
    before = lists[0].read_text()
    assert main(args) == 0
    assert lists[0].read_text() == before  # reused, not redrawn
    # a list drawn for other windows is refused, not reused with windows past the clips' ends
    cfg = load_config(out / "config.yaml")
    longer = replace(cfg.sample, audio_len=cfg.sample.audio_len * 2)
    with pytest.raises(PixelPlayerError, match="windows"):
        fixed_mixtures(read_index(prepared / "test.csv"), longer, 6, 0, lists[0])
    assert (out / "eval" / "metrics.md").read_text().count("|") > 20


@pytest.mark.slow
def test_kill_9_then_resume(prepared, tmp_path):
    out = tmp_path / "run"
    argv = _train_argv(prepared, out, *TINY, "train.epochs=1000")
    cmd = [sys.executable, "-m", "pixelplayer", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "history.csv").is_file():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "last.pt").is_file(), proc.stderr.read().decode()
    done = load_checkpoint(out / "last.pt")["train_state"]["epoch"]
    assert done >= 1
    target = done + 2
    # the killed run had one thread; another count sums floats in another order
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # resume with the stored config, only raising the epoch budget
        assert main(_train_argv(prepared, out, f"train.epochs={target}", config=None)) == 0
        whole = tmp_path / "whole"
        assert main(_train_argv(prepared, whole, *TINY, f"train.epochs={target}")) == 0
    finally:
        torch.set_num_threads(threads)
    epochs = [int(r["epoch"]) for r in _history(out)]
    assert epochs[-1] == target
    assert epochs == sorted(set(epochs))  # no epoch repeated or lost
    assert torch.load(out / "last.pt", weights_only=True)["train_state"]["epoch"] == target
    # against the run that was never interrupted: the same data order, augmentation, weights
    # and optimizer state after the resume, so the same figures up to float rounding
    resumed = [float(r["train_loss"]) for r in _history(out)]
    straight = [float(r["train_loss"]) for r in _history(whole)]
    worst = max(abs(a - b) for a, b in zip(resumed, straight, strict=True))
    print(f"killed after epoch {done}: largest train_loss difference {worst:.2e} over {target}")
    assert worst < 1e-6


def _nan_at(monkeypatch, calls, where="loss"):
    """mixsep.loss (or the network input) turns NaN on the given 1-based calls, or "all"."""
    from pixelplayer import mixsep

    real, count = getattr(mixsep, where), [0]

    def poisoned(*args, **kwargs):
        count[0] += 1
        value = real(*args, **kwargs)
        if calls == "all" or count[0] in calls:
            nan = float("nan")
            return value * nan if where == "loss" else (value[0], value[1] * nan)
        return value

    monkeypatch.setattr(mixsep, where, poisoned)


def test_nan_loss_stops_naming_step_and_epoch(prepared, tmp_path, monkeypatch):
    _nan_at(monkeypatch, {3})  # epoch 2, batch 1 (2 batches per epoch)
    with pytest.raises(PixelPlayerError, match=r"loss became nan at step 3 \(epoch 2, batch 1\)"):
        main(["--debug", *_train_argv(prepared, tmp_path / "run", *TINY)])


def test_nan_loss_skip_counts_batches(prepared, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    # NaN spectrogram for epoch 1, batch 2: the forward pass would also poison BatchNorm's
    # running statistics, which the skip must undo
    _nan_at(monkeypatch, {2}, where="network_input")
    assert _train(prepared, out, "train.on_nan=skip") == 0
    rows = _history(out)
    assert [r["skipped"] for r in rows] == ["1", "0"]
    assert [int(r["step"]) for r in rows] == [1, 3]  # no optimizer step for the skipped batch
    assert "1 of 2 batches skipped" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["train_state"]["skipped"] == 1
    weights = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)
    # an epoch that skipped every batch stops the run all the same
    _nan_at(monkeypatch, "all")
    with pytest.raises(PixelPlayerError, match="every batch of epoch 3"):
        main(["--debug", *_train_argv(prepared, out, "train.epochs=3", config=None)])


FILL_DISK = """
import resource, signal, sys, torch
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.registry import save_checkpoint
path, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
save_checkpoint(path, torch.nn.Linear(8, 8), "linear", {}, note="first")
try:
    save_checkpoint(path, torch.nn.Linear(512, 512), "linear", {}, note="second")
except PixelPlayerError as exc:
    print(exc)
"""


def test_checkpoint_write_past_the_size_limit_keeps_the_previous(tmp_path):
    path = tmp_path / "last.pt"
    limit = 200_000  # the first checkpoint is a few kB, the second about 1 MB
    done = subprocess.run(
        [sys.executable, "-c", FILL_DISK, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    print(message)
    assert message.startswith(f"cannot write {path}: File too large")
    assert "MB" in message and "\n" not in message
    assert load_checkpoint(path)["note"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left


def test_validation_with_only_silent_estimates_says_so(prepared, capsys):
    from pixelplayer.training.masks import val_text, validate

    clips = read_index(prepared / "val.csv")
    cfg = load_config("pixelplayer-cpu", TINY[:4])
    mixtures = fixed_mixtures(clips, cfg.sample, 3, seed=0)
    loader = torch.utils.data.DataLoader(MixDataset(clips, cfg.sample, mixtures, train=False))

    def silent(batch):
        return torch.zeros_like(batch["audios"])

    val = validate(silent, loader)
    assert val["scored"] == 0 and val["estimates"] == 6 and val["sdr"] == float("-inf")
    assert "not measured (none of 6 estimates could be scored" in val_text(val)
    val = validate(lambda batch: batch["audios"] + 0.01 * torch.randn_like(batch["audios"]), loader)
    assert val["scored"] == 6 and val["sdr"] > 10
    assert val_text(val).startswith(", val SDR ") and "unscored" not in val_text(val)


def test_init_copies_the_matching_tensors_and_reports_the_rest(prepared, tmp_path, capsys):
    from pixelplayer.training import build_model
    from pixelplayer.training.init import init_weights

    src, out = tmp_path / "src", tmp_path / "tuned"
    assert _train(prepared, src, "train.epochs=1") == 0
    # another k: the last layers of both nets and the synthesizer differ in shape
    other_k = "model_kwargs={k: 4, frame: {width: 8}, sound: {ngf: 4, levels: 5}}"
    argv = _train_argv(prepared, out, *TINY, other_k, "train.epochs=0")
    capsys.readouterr()
    assert main([*argv, "--init", str(src)]) == 0  # 0 epochs: the run as it starts
    printed = capsys.readouterr().out
    cfg = load_config(out / "config.yaml")
    assert cfg.init == str(src) and cfg.model_kwargs["k"] == 4  # reproducible from its folder
    report = json.loads((out / "init.json").read_text())
    assert report["checkpoint"] == str((src / "best.pt").resolve())
    assert f"{report['loaded']} of {report['tensors']} tensors loaded" in printed
    assert "other shape" in printed and str(out / "init.json") in printed
    assert 0 < report["loaded"] < report["tensors"]
    assert "synth.scale" in report["other_shape"]
    assert report["missing_in_source"] == report["not_in_model"] == []
    # the same init on a fresh model of that config: the matching tensors are the source's
    torch.manual_seed(cfg.train.seed)
    model, _ = build_model(cfg)
    assert init_weights(model, cfg.init, cfg.model) == report
    source, own = load_checkpoint(src / "best.pt")["state_dict"], model.state_dict()
    copied = [k for k in own if k not in report["other_shape"]]
    assert len(copied) == report["loaded"]
    assert all(torch.equal(own[k], source[k]) for k in copied)
    untouched = build_model(cfg)[0].state_dict()  # and not by chance: they differ from a new one's
    assert any(not torch.equal(own[k], untouched[k]) for k in copied)


def test_init_errors_are_one_line(prepared, tmp_path, capsys):
    from pixelplayer.models.registry import save_checkpoint

    (tmp_path / "empty").mkdir()
    linear = save_checkpoint(tmp_path / "linear.pt", torch.nn.Linear(2, 2), "linear", {})
    cases = {
        tmp_path / "nonesuch": "no such run folder or checkpoint",
        tmp_path / "empty": "the run has no checkpoint (best.pt or last.pt)",
        linear: "it holds a 'linear' model, this run trains 'pixelplayer'",
    }
    for source, phrase in cases.items():
        out = tmp_path / "run"
        assert main([*_train_argv(prepared, out, *TINY), "--init", str(source)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("pixelplayer: error: cannot init from") and phrase in err, err
        assert "\n" not in err
        assert not out.exists()  # refused before a run folder is made
    ame = _train_argv(prepared, tmp_path / "ame", config="ame")
    assert main([*ame, "--init", str(linear)]) == 1
    assert "AME trains from scratch" in capsys.readouterr().err
