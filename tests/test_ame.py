"""Audio-Motion Embedding: network shapes, the shifted-negative sampler, accuracy, training."""

import csv

import numpy as np
import pytest
import torch

from pixelplayer.ame import (
    ClipArrays,
    Triplet,
    aligned_wins,
    distance,
    draw_triplet,
    draw_windows,
    embed_batch,
    fixed_trials,
    make_batch,
    shift_frames,
    triplet_accuracy,
    triplet_loss,
)
from pixelplayer.cli import main
from pixelplayer.config import load_config
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.models.registry import build, load_checkpoint, load_model
from pixelplayer.training import train
from tests.helpers import TINY_AME as TINY

SR, FPS = 11025, 8.0


def _tiny_cfg(*extra):
    return load_config("ame", [*TINY, *extra])


@pytest.mark.parametrize("front", ["stft", "wave"])
def test_shapes_and_unit_length_per_step(front):
    model = AudioMotionEmbedding(dim=8, width=4, sound_front=front).eval()
    frames = torch.rand(2, 1, 9, 32, 32)  # T = 8 steps after the first difference
    wave = torch.randn(2, 11025) * 0.1  # 1 s = 8 frames at 8 fps
    with torch.no_grad():
        motion, sound = model(frames, wave)
        pos = model.motion_positions(frames)
        resp = model.response(frames, sound)
    assert motion.shape == sound.shape == (2, 8, 8)  # (B, D, T)
    assert pos.shape == (2, 8, 8, 4, 4)  # (B, D, T, S/8, S/8)
    assert resp.shape == (2, 4, 4, 8)  # (B, h, w, T)
    for e in (motion, sound, pos):
        assert torch.allclose(e.norm(dim=1), torch.ones(()), atol=1e-5)
    assert resp.abs().max() <= 1 + 1e-5
    # a 2 s window gives 16 steps from both networks
    with torch.no_grad():
        m2, s2 = model(torch.rand(1, 1, 17, 32, 32), torch.randn(1, 22050))
    assert m2.shape[-1] == s2.shape[-1] == 16
    assert isinstance(build("ame", dim=8, width=4), AudioMotionEmbedding)


def test_negative_is_shifted_by_a_second_and_inside_the_clip():
    window = 16
    shift = shift_frames(1.0, FPS)
    assert shift / FPS >= 1.0
    directions = set()
    for seed in range(400):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(window + 1 + shift, 120))
        start, neg = draw_windows(rng, n, window, shift)
        assert abs(neg - start) / FPS >= 1.0
        assert 1 <= start <= n - window and 1 <= neg <= n - window
        directions.add(np.sign(neg - start))
    assert directions == {-1, 1}  # shifted both ways

    # through the batch: audio whose value is its own sample index shows the real offset
    cfg = load_config("ame")
    n = 80
    clip = ClipArrays(np.zeros((n, 4, 4), np.uint8), np.arange(n / FPS * SR, dtype=np.float32))
    for seed in range(200):
        tr = draw_triplet(np.random.default_rng(seed), [n], window, shift)
        batch = make_batch([clip], [tr], cfg)
        pos, neg = batch["pos"][0], batch["neg"][0]
        assert abs(neg[0] - pos[0]) >= SR  # >= 1 s apart in samples
        # inside the clip: contiguous real samples, no zero padding
        assert torch.equal(neg, neg[0] + torch.arange(len(neg), dtype=torch.float32))
        assert neg[0] >= 0 and neg[-1] < len(clip.audio)


def test_clip_without_room_for_a_shift_is_refused():
    with pytest.raises(PixelPlayerError, match="no room"):
        draw_windows(np.random.default_rng(0), 16 + 1 + 7, 16, 8)
    draw_windows(np.random.default_rng(0), 16 + 1 + 8, 16, 8)  # just enough


def test_distance_and_wins_on_constructed_embeddings():
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(5, 8, 6, generator=gen), dim=1)
    b = torch.nn.functional.normalize(torch.randn(5, 8, 6, generator=gen), dim=1)
    assert torch.allclose(distance(a, a), torch.zeros(5), atol=1e-6)
    assert torch.allclose(distance(a, -a), torch.full((5,), 2.0), atol=1e-6)
    assert aligned_wins(a, a, b).all()  # identical to the aligned audio: it wins
    assert not aligned_wins(a, b, a).any()
    assert triplet_loss(a, a, -a, margin=0.2) == 0
    assert torch.isclose(triplet_loss(a, -a, a, margin=0.2), torch.tensor(2.2))


class _Oracle(torch.nn.Module):
    """Embeds a step by the time it shows: frames hold their frame index as pixel value, the
    audio its time in frames; both become the angle of a 2D unit vector. `blind`: the same
    vector for everything."""

    def __init__(self, blind: bool = False):
        super().__init__()
        self.blind = blind

    def embed_motion(self, frames):  # (B, 1, T+1, S, S) -> (B, 2, T)
        k = frames[:, 0, 1:].mean(dim=(2, 3)) * 255  # (B, T)
        return self._angle(k * 0 if self.blind else k)

    def embed_sound(self, wave):  # (B, L) -> (B, 2, T)
        steps = round(wave.shape[-1] * FPS / SR)
        k = torch.nn.functional.adaptive_avg_pool1d(wave[:, None], steps)[:, 0]  # (B, T)
        return self._angle(k * 0 if self.blind else k)

    @staticmethod
    def _angle(k):
        th = k * 0.05
        return torch.stack([torch.cos(th), torch.sin(th)], dim=1)


def test_accuracy_of_an_oracle_and_of_a_blind_embedding():
    cfg = load_config("ame")
    n = 80
    frames = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 4, 4)).copy()
    # audio holds its frame index: sample i belongs to frame round(i * fps / sr)
    audio = np.round(np.arange(int(n / FPS * SR)) * FPS / SR).astype(np.float32)
    arrays = [ClipArrays(frames, audio)]
    trials = fixed_trials([n], 16, shift_frames(1.0, FPS), 50, seed=0)
    assert trials == fixed_trials([n], 16, shift_frames(1.0, FPS), 50, seed=0)  # fixed list
    assert triplet_accuracy(_Oracle(), arrays, trials, cfg, batch_size=16) > 0.99
    # embeddings that say nothing: aligned and shifted tie, and a tie is not a win
    assert triplet_accuracy(_Oracle(blind=True), arrays, trials, cfg) == 0.0


def test_steps_on_one_batch_reduce_the_loss():
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    rng = np.random.default_rng(0)
    n = 40
    arrays = [
        ClipArrays(
            rng.integers(0, 255, (n, 16, 16), dtype=np.uint8),
            rng.standard_normal(int(n / FPS * SR)).astype(np.float32),
        )
        for _ in range(2)
    ]
    triplets = [Triplet(i % 2, 1 + i, 20 + i) for i in range(8)]
    batch = make_batch(arrays, triplets, cfg)
    model = AudioMotionEmbedding(dim=8, width=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = triplet_loss(*embed_batch(model, batch, "cpu"), margin=0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _rows(out):
    with open(out / "history.csv") as f:
        return list(csv.DictReader(f))


def test_train_writes_checkpoints_and_resumes(prepared, tmp_path):
    out = tmp_path / "run"
    summary = train(_tiny_cfg(), prepared, out, progress=False)
    assert summary["epoch"] == 2 and summary["step"] == 4
    assert 0.0 <= summary["best_acc"] <= 1.0
    for name in ("config.yaml", "last.pt", "best.pt", "history.csv"):
        assert (out / name).is_file()
    rows = _rows(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(0.0 <= float(r["val_acc"]) <= 1.0 for r in rows)
    model, ckpt = load_model(out / "last.pt")
    assert ckpt["model"] == "ame" and isinstance(model, AudioMotionEmbedding)

    # resume with a longer budget through `pixelplayer train`: one more epoch
    sets = [a for kv in [*TINY, "train.epochs=3"] for a in ("--set", kv)]
    argv = ["train", "--model", "ame", "--data", str(prepared), "--out", str(out), *sets]
    assert main([*argv, "--no-progress"]) == 0
    assert [r["epoch"] for r in _rows(out)] == ["1", "2", "3"]
    assert load_checkpoint(out / "last.pt")["train_state"]["step"] == 6
    # no config: the run reopens itself and has nothing left to do
    assert train(None, prepared, out, progress=False)["epoch"] == 3

    with pytest.raises(PixelPlayerError, match="another configuration"):
        train(_tiny_cfg("model_kwargs.margin=0.5"), prepared, out, progress=False)


def test_bad_options_are_refused_before_a_run_folder_exists(prepared, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(PixelPlayerError, match="audio_len"):
        train(_tiny_cfg("sample.audio_len=8000"), prepared, out, progress=False)
    with pytest.raises(PixelPlayerError, match="speed"):
        train(_tiny_cfg("model_kwargs.speed=2"), prepared, out, progress=False)
    assert not out.exists()
