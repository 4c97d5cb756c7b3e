"""AV-MIML: the MIML network, the labelers, supervised-NMF separation and the train verb."""

import csv

import numpy as np
import torch

from pixelplayer.cli import main
from pixelplayer.config import Config, OptimConfig
from pixelplayer.data.dataset import MixDataset, fixed_mixtures
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.metrics import score_batch
from pixelplayer.miml import (
    ClassifierLabeler,
    FrameClassifier,
    MIMLNet,
    collect_bases,
    corrupt_labels,
    nmf_separate,
    relation_maps,
    run_separators,
)
from pixelplayer.mixsep import SpecConfig, mixture_spec
from pixelplayer.models.registry import load_checkpoint, save_checkpoint
from pixelplayer.nmf import kl_nmf
from pixelplayer.training.loop import Trainer
from pixelplayer.training.miml import MIMLTask
from tests.helpers import tone


def _planted(videos=96, labels=3, m=6, f=32, seed=0):
    """Bags where label l is present iff its pattern is one of the bases (at a random slot)."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.zeros(labels, f)
    for lab in range(labels):
        patterns[lab, 4 + 9 * lab : 8 + 9 * lab] = 1.0
    bases = torch.rand(videos, m, f, generator=gen) * 0.3
    y = (torch.rand(videos, labels, generator=gen) < 0.5).float()
    y[y.sum(1) == 0, 0] = 1.0
    slot = torch.full((videos, labels), -1)
    for v in range(videos):
        slots = torch.randperm(m, generator=gen)
        for lab in y[v].nonzero().flatten().tolist():
            slot[v, lab] = slots[lab]
            bases[v, slots[lab]] = patterns[lab] + 0.05 * torch.rand(f, generator=gen)
    return bases / bases.sum(-1, keepdim=True), y, slot


def test_miml_net_learns_planted_basis_label_association():
    bases, y, slot = _planted()
    torch.manual_seed(0)
    net = MIMLNet(bins=32, labels=3, subconcepts=4, hidden=128)
    train = OptimConfig(lr_sound=1e-3, weight_decay=1e-5, batch_size=16, epochs=30, lr_steps=[])
    # the training loop's steps on the task's batches and loss, without a run folder
    task = MIMLTask(Config(model="miml", train=train), None, "cpu")
    task.use_bags(bases, y)
    trainer = Trainer(task, net)
    losses = [trainer.epoch()[0]["train_loss"] for _ in range(train.epochs)]
    assert trainer.state["step"] == 30 * 6 and losses[-1] < 0.5 * losses[0]
    rel = relation_maps(net, bases)  # (V, M, L)
    assert rel.shape == (96, 6, 3)
    hits = [
        rel[v, :, lab].argmax().item() == slot[v, lab].item() for v, lab in y.nonzero().tolist()
    ]
    assert np.mean(hits) > 0.9
    # the bag's label scores rank present labels above absent ones
    scores = rel.amax(1)
    assert ((scores > scores.median()) == (y > 0)).float().mean() > 0.85


def test_collected_bases_go_to_the_label_they_relate_to_most():
    bases = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)  # (V, M, F)
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # a duet, then a solo of label 2
    rel = torch.zeros(2, 4, 3)
    rel[0, :, 0] = torch.tensor([5.0, 4.0, 0.0, 0.0])  # bases 0, 1 of the duet: label 0
    rel[0, :, 1] = torch.tensor([1.0, 0.0, 3.0, 2.0])  # bases 2, 3: label 1
    rel[0, :, 2] = 9.0  # absent from the video's labels: never given a basis
    rel[1, :, 2] = torch.tensor([0.0, 0.5, 0.0, 6.0])  # the solo: basis 3 stands out
    opts = {"relation_threshold": 0.0, "min_bases": 2, "max_bases": 10}
    found = collect_bases(rel, bases, labels, opts)
    assert torch.equal(found[0], bases[0, [0, 1]])  # strongest first
    assert torch.equal(found[1], bases[0, [2, 3]])
    assert len(found[2]) == 4  # every basis of the solo video
    # a threshold keeps the bases that stand out in their label's column; a video where fewer
    # than min_bases fire is skipped, and a class left empty takes its strongest bases
    picky = collect_bases(rel, bases, labels, {**opts, "relation_threshold": 0.5})
    assert torch.equal(picky[0], bases[0, [0, 1]]) and torch.equal(picky[2], bases[1, [3, 1]])
    assert len(collect_bases(rel, bases, labels, {**opts, "max_bases": 1})[2]) == 1


def test_corrupted_labels_corrupt_the_requested_fraction_seeded():
    classes = torch.arange(200) % 5
    noisy = corrupt_labels(classes, 5, 0.3, seed=1)
    assert noisy.shape == (200, 5) and (noisy.sum(1) == 1).all()
    assert (noisy.argmax(1) != classes).sum().item() == 60
    assert torch.equal(noisy, corrupt_labels(classes, 5, 0.3, seed=1))
    assert not torch.equal(noisy, corrupt_labels(classes, 5, 0.3, seed=2))
    assert torch.equal(corrupt_labels(classes, 5, 0.0, seed=1).argmax(1), classes)


def test_classifier_labeler_reads_a_checkpoint_and_thresholds(tmp_path):
    model = FrameClassifier(["cello", "drums", "flute", "tuba"], width=4)
    with torch.no_grad():
        model.fc.weight.zero_()  # the output is the bias, whatever the frames
        model.fc.bias.copy_(torch.tensor([0.5, 0.35, 0.1, 0.05]).log())
    path = save_checkpoint(
        tmp_path / "labeler.pt", model, "miml_classifier", {"classes": model.classes, "width": 4}
    )
    # softmax over the chosen classes only: 0.5, 0.35, 0.1 -> 0.53, 0.37, 0.11
    labeler = ClassifierLabeler(path, ["cello", "drums", "flute"], threshold=0.3)
    frames = torch.randn(2, 3, 2, 16, 16)  # (V, 3, T, H, W)
    assert torch.allclose(
        labeler.probs(frames)[0], torch.tensor([0.5, 0.35, 0.1]) / 0.95, atol=1e-5
    )
    assert labeler(frames).tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]


def test_separation_with_the_true_bases_beats_the_mixture():
    sr, spec = 11025, SpecConfig()
    a = torch.from_numpy(tone(2.0, sr, 220.0, seed=1))
    b = torch.from_numpy(tone(2.0, sr, 1250.0, seed=2))
    sources = torch.stack([a, b])[None]  # (1, 2, L)
    bases = [kl_nmf(mixture_spec(s, spec).abs(), 4, iters=100)[0].T for s in (a, b)]  # (4, F)
    mix = sources.sum(1)
    est = nmf_separate(mix, [bases], spec, iters=100)
    assert est.shape == sources.shape
    scores = score_batch(sources, est, mix)
    assert np.all(scores["nsdr"] > 3.0), scores


TINY = [
    "model_kwargs={bases: 4, nmf_iters: 20, nmf_seconds: 2.0, subconcepts: 2, hidden: 16, "
    "sep_iters: 20, min_bases: 1}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
    "train.batch_size=4",
    "train.epochs=2",
]


def _train(prepared, out, *sets):
    argv = ["train", "--model", "miml", "--data", str(prepared), "--out", str(out)]
    return main([*argv, "--no-progress", *[a for s in sets for a in ("--set", s)]])


def test_train_miml_cli_runs_resumes_and_separates(prepared, tmp_path):
    out = tmp_path / "run"
    assert _train(prepared, out, *TINY) == 0
    for name in ("config.yaml", "bases.pt", "labels.pt", "last.pt", "history.csv", "dictionary.pt"):
        assert (out / name).is_file(), name
    assert load_checkpoint(out / "last.pt")["train_state"]["epoch"] == 2
    stamp = (out / "bases.pt").stat().st_mtime_ns
    assert _train(prepared, out, *TINY[:-1], "train.epochs=3") == 0  # resumes, bases cached
    assert (out / "bases.pt").stat().st_mtime_ns == stamp
    with open(out / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    assert load_checkpoint(out / "last.pt")["train_state"]["epoch"] == 3

    seps = run_separators(out, "cpu")
    assert set(seps) == {"miml", "exemplar", "unmatched", "gaussian"}
    cfg = seps["miml"].cfg
    clips = read_index(resolve_index(prepared, "test"))
    data = MixDataset(clips, cfg.sample, mixtures=fixed_mixtures(clips, cfg.sample, 2, 0))
    batch = torch.utils.data.default_collate([data[0], data[1]])
    for name, sep in seps.items():
        est = sep(batch)
        assert est.shape == batch["audios"].shape, name
        assert torch.isfinite(est).all(), name


def test_miml_rejects_unknown_option(prepared, tmp_path, capsys):
    assert _train(prepared, tmp_path / "bad", "model_kwargs={bases: 4, basses: 2}") != 0
    assert "unknown model_kwargs key 'basses'" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "config.yaml").exists()
