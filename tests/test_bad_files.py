"""Bad non-media inputs at `train`, `eval`, `separate`: index files, checkpoints, configs.

Each goes through the CLI and must give a non-zero exit code and one line on stderr that says
what is wrong, never a traceback; a checkpoint's pickled code must never run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pixelplayer.cli import main
from pixelplayer.config import from_dict
from pixelplayer.data.index import COLUMNS
from pixelplayer.miml import MIMLNet
from pixelplayer.models.registry import save_checkpoint
from tests.helpers import TINY
from tests.helpers import set_args as _args

CPU_CONFIG = "pixelplayer-cpu"


def _fails(capsys, argv: list, phrase: str) -> str:
    """Run the CLI; it must fail with one line on stderr holding `phrase`, no traceback."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("pixelplayer: error:") and phrase in lines[0], lines[0]
    return lines[0]


def _train(data, out, *sets, config=CPU_CONFIG) -> list:
    cfg = ["--config", config] if config else []
    argv = ["train", *cfg, "--data", data, "--out", out, "--no-progress"]
    return [str(a) for a in [*argv, *_args(*TINY, "train.epochs=1", *sets)]]


def _eval(run, data, *extra) -> list:
    argv = ["eval", *([run] if run else []), "--data", data, "--n", "4", "--no-progress", *extra]
    return [str(a) for a in argv]


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(_train(prepared, out)) == 0
    return out


@pytest.fixture
def video(prepared) -> Path:
    return next((prepared.parent / "synth" / "videos").rglob("*.mp4"))


# --- index files ------------------------------------------------------------------------------


def _rows(prepared, split: str) -> list[list[str]]:
    """The split's rows with absolute paths, so a copy of the index may live anywhere."""
    header, *rows = [
        line.split(",") for line in (prepared / f"{split}.csv").read_text().splitlines()
    ]
    assert header == COLUMNS
    return [[str(prepared / r[0]), str(prepared / r[1]), *r[2:]] for r in rows]


def _climb(rows):
    rows[0][0], rows[0][1] = "../../etc/passwd", "../../etc"
    return [",".join(COLUMNS), *map(",".join, rows)]


BAD_INDEXES = {
    # name: (lines of each split's index from its good rows, phrase of the error)
    "missing files": (
        lambda rows: [",".join(COLUMNS), *(",".join([r[0] + ".gone", *r[1:]]) for r in rows)],
        "clips have missing files",
    ),
    "wrong columns": (
        lambda rows: ["path,frames,n,label,seconds,id", *map(",".join, rows)],
        "the header lacks audio_path",
    ),
    "too few fields": (
        lambda rows: [",".join(COLUMNS), *(",".join(r[:4]) for r in rows)],
        "4 fields, expected 6",
    ),
    "climbing paths": (_climb, "climbs out of"),
    "empty file": (lambda rows: [], "the index is empty"),
    "header only": (lambda rows: [",".join(COLUMNS)], "the index lists no clips"),
    "same video id twice": (
        lambda rows: [",".join(COLUMNS), *(",".join([*r[:5], "flute/same"]) for r in rows)],
        "video ids listed more than once",
    ),
    "not text": (lambda rows: None, "cannot read the index"),
}


def _bad_data(prepared, tmp_path, make) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val", "test"):
        lines = make(_rows(prepared, split))
        if lines is None:
            (data / f"{split}.csv").write_bytes(bytes(range(128, 256)))
        else:
            (data / f"{split}.csv").write_text("".join(line + "\n" for line in lines))
    return data


@pytest.mark.parametrize("case", sorted(BAD_INDEXES))
def test_bad_index_at_train_and_eval(prepared, run, tmp_path, capsys, case):
    make, phrase = BAD_INDEXES[case]
    data = _bad_data(prepared, tmp_path, make)
    _fails(capsys, _train(data, tmp_path / "out"), phrase)
    _fails(capsys, _eval(run, data, "--separator", "ibm"), phrase)


def test_index_naming_files_by_absolute_path_is_accepted(prepared, run, tmp_path, capsys):
    # the climbing rule refuses '../', not files outside the folder named as they are
    data = _bad_data(prepared, tmp_path, lambda rows: [",".join(COLUMNS), *map(",".join, rows)])
    assert main([str(a) for a in _eval(run, data, "--separator", "ibm")]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_too_few_clips_for_a_mixture(prepared, run, tmp_path, capsys):
    data = _bad_data(prepared, tmp_path, lambda rows: [",".join(COLUMNS), ",".join(rows[0])])
    _fails(capsys, _eval(run, data), "a mixture of 2 needs at least 2")
    _fails(capsys, _eval(run, prepared, "--n", "0"), "--n 0: give at least 1")


# --- checkpoints ------------------------------------------------------------------------------


class _Payload:
    """Pickles as a call that creates `marker`: loading it unsafely would run it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_checkpoint(prepared, run, tmp_path, capsys, video):
    bad = _copy_run(run, tmp_path)
    _truncate(bad / "best.pt")
    _fails(capsys, _eval(bad, prepared), "truncated or corrupt")
    _fails(capsys, ["separate", video, "--model", bad, "--no-progress"], "truncated or corrupt")
    _truncate(bad / "last.pt")  # resuming reads last.pt
    _fails(capsys, _train(prepared, bad, config=None), "truncated or corrupt")


def test_pickled_payload_never_runs(prepared, run, tmp_path, capsys, video):
    marker = tmp_path / "payload-ran"
    evil = {"model": "pixelplayer", "kwargs": {}, "state_dict": {}, "x": _Payload(marker)}
    bad = _copy_run(run, tmp_path)
    for name in ("best.pt", "last.pt"):
        torch.save(evil, bad / name)
    phrase = "holds Python objects other than tensors"
    _fails(capsys, _eval(bad, prepared), phrase)
    _fails(capsys, ["separate", video, "--model", bad, "--no-progress"], phrase)
    _fails(capsys, _train(prepared, bad, config=None), phrase)
    assert not marker.exists()
    # the payload is real: an unsafe load would have run it
    torch.load(bad / "best.pt", weights_only=False)
    assert marker.exists()


def test_checkpoint_of_another_model(prepared, run, tmp_path, capsys, video):
    bad = _copy_run(run, tmp_path)
    miml = MIMLNet(bins=32, labels=3, subconcepts=2, hidden=8)
    kwargs = {"bins": 32, "labels": 3, "subconcepts": 2, "hidden": 8}
    save_checkpoint(bad / "best.pt", miml, "miml", kwargs)
    _fails(capsys, _eval(bad, prepared), "the checkpoint holds a MIMLNet")
    _fails(capsys, ["separate", video, "--model", bad, "--no-progress"], "no pixel features")


def test_checkpoint_with_weights_of_other_shapes(prepared, run, tmp_path, capsys, video):
    bad = _copy_run(run, tmp_path)
    ckpt = torch.load(bad / "best.pt", weights_only=True)
    ckpt["kwargs"]["k"] = 2 * ckpt["kwargs"]["k"]  # the stored weights are for the old k
    torch.save(ckpt, bad / "best.pt")
    _fails(capsys, _eval(bad, prepared), "weights do not fit the model (wrong shape")
    torch.save(ckpt["state_dict"], bad / "best.pt")  # a bare state dict
    _fails(capsys, ["separate", video, "--model", bad, "--no-progress"], "bare state dict")


def test_miml_run_with_unreadable_dictionary(prepared, tmp_path, capsys, video):
    bad = tmp_path / "miml"
    bad.mkdir()
    (bad / "config.yaml").write_text("model: miml\n")
    (bad / "dictionary.pt").write_bytes(b"PK\x03\x04 not a zip archive")
    _fails(capsys, _eval(bad, prepared), "dictionary.pt: cannot read")
    marker = tmp_path / "payload-ran"
    torch.save({"classes": _Payload(marker)}, bad / "dictionary.pt")
    _fails(capsys, _eval(bad, prepared), "dictionary.pt: cannot read")
    assert not marker.exists()
    # separate needs a PixelPlayer run; a miml run has no best.pt
    _fails(capsys, ["separate", video, "--model", bad, "--no-progress"], "no checkpoint")


# --- configs ----------------------------------------------------------------------------------

BAD_CONFIGS = {
    "train:\n  batchsize: 3\n": "unknown config key train.batchsize; valid keys in train:",
    "trian:\n  batch_size: 3\n": "unknown config key trian; valid keys: model, model_kwargs",
    "modle: pixelplayer\n": "valid keys: model, model_kwargs, frame_weights, sample, spec, train",
    "train:\n  momentum: many\n": "'many' is not a number",
    "train:\n  seed: many\n": "train.seed must be int, not 'many'",
    "train:\n  val_every: true\n": "train.val_every must be int, not True",
    "train:\n  lr_steps: 10\n": "train.lr_steps must be list[int], not 10",
    "train:\n  lr_sound: fast\n": "'fast' is not a number",
    "spec:\n  log_freq: maybe\n": "spec.log_freq must be bool, not 'maybe'",
    "spec:\n  mask: 3\n": "spec.mask must be str, not 3",
    "spec:\n  mask: ideal\n": "mask must be 'binary' or 'ratio', not 'ideal'",
    "sample:\n  sr: 0\n": "sample.sr: 0 must be > 0",
    "spec:\n  n_fft: 2\n": "spec.hop 256 must be at most n_fft / 2 = 1",
    "train:\n  val_every: -1\n": "train.val_every: -1 must be > 0",
    "train:\n  lr_decay_every: -2\n": "train.lr_decay_every: -2 must be >= 0",
    "frame_weights: 3\n": "frame_weights must be str | None, not 3",
    "spec: 5\n": "config section 'spec' must be a mapping",
    "- 1\n- 2\n": "a config is a mapping",
    "train: {batch_size: [\n": "not valid YAML",
    "spec:\n  cell_weight: 10\n": "spec.cell_weight was removed",
}


def test_a_config_of_a_run_trained_before_a_key_was_removed_still_loads():
    """A removed key holding the value that left it off (as older run folders record it)."""
    cfg = from_dict({"spec": {"cell_weight": 1.0}, "train": {"grad_clip": None, "seed": 3}})
    assert cfg.train.seed == 3 and not hasattr(cfg.spec, "cell_weight")


@pytest.mark.parametrize("text", sorted(BAD_CONFIGS))
def test_bad_config_at_train(prepared, tmp_path, capsys, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    _fails(capsys, _train(prepared, tmp_path / "out", config=path), BAD_CONFIGS[text])
    assert not (tmp_path / "out").exists()  # refused before a run folder is made


@pytest.mark.parametrize(
    "override, phrase",
    [
        ("train.batch_size=0", "train.batch_size: 0 must be > 0"),
        ("train.bogus=1", "unknown config key train.bogus"),
        ("model_kwargs=[1, 2]", "model_kwargs must be dict, not [1, 2]"),
        ("model_kwargs={kk: 8}", "unknown config key model_kwargs.kk for model 'pixelplayer'"),
        ("model=nonesuch", "unknown model 'nonesuch'"),
        ("train.batch_size", "must look like section.key=value"),
        ("sample.audio_len=6000", "try sample.audio_len=8191"),
        ("model_kwargs={k: 8, frame: {widht: 8}}", "cannot build 'pixelplayer' from model_kwargs"),
    ],
)
def test_bad_override_at_train(prepared, tmp_path, capsys, override, phrase):
    _fails(capsys, _train(prepared, tmp_path / "out", override), phrase)
    # nothing is left behind that would refuse the corrected command as "another configuration"
    assert not (tmp_path / "out" / "config.yaml").exists()


def test_bad_run_config_at_eval(prepared, run, tmp_path, capsys):
    bad = _copy_run(run, tmp_path)
    (bad / "config.yaml").write_text("train:\n  mask_treshold: 0.5\n")
    _fails(capsys, _eval(bad, prepared), "valid keys in train:")
    (bad / "config.yaml").write_text("train:\n  amp: 3\n")
    _fails(capsys, _eval(bad, prepared), "train.amp must be bool, not 3")


def test_validation_split_too_small_at_train(prepared, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val", "test"):
        rows = _rows(prepared, split)[: 1 if split == "val" else None]
        (data / f"{split}.csv").write_text("\n".join([",".join(COLUMNS), *map(",".join, rows)]))
    _fails(capsys, _train(data, tmp_path / "out"), "a mixture of 2 needs at least 2")


def test_resume_from_weights_of_another_size(prepared, run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    other = tmp_path / "other"
    tiny_k4 = "model_kwargs={k: 4, frame: {width: 8}, sound: {ngf: 4, levels: 5}}"
    assert main(_train(prepared, other, tiny_k4)) == 0
    shutil.copy(other / "last.pt", out / "last.pt")
    _fails(capsys, _train(prepared, out, "train.epochs=2"), "weights do not fit the model")
