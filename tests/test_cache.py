"""The decoded-clip cache: same items as decoding, stale and partial caches refused, workers."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pixelplayer.cli import main
from pixelplayer.data.cache import build_cache, open_cache
from pixelplayer.data.dataset import MixDataset, SampleConfig, fixed_mixtures, read_window
from pixelplayer.data.index import Clip, frame_path, read_index, write_index
from pixelplayer.errors import PixelPlayerError
from tests.helpers import tone

SR, FPS, SECONDS, SIZE = 11025, 8, 2.0, 32
CFG = SampleConfig(sr=SR, audio_len=8191, fps=FPS, num_frames=3, stride_frames=4, frame_size=SIZE)
CLASSES = ("violin", "drums", "flute")
# eval frames are resized twice (to the stored side, then to SIZE): within this many uint8
# levels (measured here: at most 21 at the boxes' sharp edges, 0.7 on average)
EVAL_MAX_LEVELS, EVAL_MEAN_LEVELS = 32, 1.5


def _picture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w, 3) uint8: a smooth gradient with a few boxes, like a picture more than noise."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), rng.uniform(0, 255))], -1)
    for _ in range(3):
        x0, y0 = rng.integers(w - 8), rng.integers(h - 8)
        img[y0 : y0 + 8, x0 : x0 + 8] = rng.uniform(0, 255, 3)
    return img.astype(np.uint8)


def _make_dataset(root: Path) -> Path:
    """A prepared folder: 3 classes x 2 clips of 2 s, 80x60 JPEG frames (not square), wav."""
    rng = np.random.default_rng(0)
    clips = []
    for k, cls in enumerate(CLASSES):
        for n in range(2):
            vid = f"{cls}_{n}"
            frames_dir = root / "frames" / cls / vid
            frames_dir.mkdir(parents=True)
            for i in range(int(SECONDS * FPS)):
                Image.fromarray(_picture(rng, 80, 60)).save(frame_path(frames_dir, i), quality=90)
            audio = root / "audio" / cls / f"{vid}.wav"
            audio.parent.mkdir(parents=True, exist_ok=True)
            wav = tone(SECONDS, SR, freq=220.0 * (k + 1) + 30 * n, seed=k * 2 + n)
            sf.write(str(audio), wav, SR, subtype="PCM_16")
            clips.append(Clip(audio, frames_dir, int(SECONDS * FPS), cls, SECONDS, f"{cls}/{vid}"))
    write_index(root / "train.csv", clips[0::2] + clips[1:2])
    write_index(root / "val.csv", clips[3::2])
    return root


@pytest.fixture
def prepared(tmp_path) -> Path:
    return _make_dataset(tmp_path / "prepared")


def _cache(path: Path, *extra: str) -> int:
    return main(["data", "cache", str(path), "--size", str(SIZE), "--workers", "1", *extra])


def _train_set(root: Path, cache=True, length: int = 4) -> MixDataset:
    return MixDataset(read_index(root / "train.csv"), CFG, length=length, seed=3, cache=cache)


def test_cached_items_equal_decoded_ones(prepared, capsys):
    assert _cache(prepared) == 0
    assert "built" in capsys.readouterr().out
    cached, decoded = _train_set(prepared), _train_set(prepared, cache=False)
    assert cached.cache is not None and decoded.cache is None
    for i in range(len(cached)):
        a, b = cached[i], decoded[i]
        for key in ("frames", "audios", "mix", "classes"):
            assert a[key].shape == b[key].shape and a[key].dtype == b[key].dtype, key
        # training crops are slices of frames resized exactly as decoding resizes them
        assert torch.equal(a["frames"], b["frames"])
        assert (a["audios"] - b["audios"]).abs().max() <= 1e-4
        assert (a["mix"] - b["mix"]).abs().max() <= 1e-4
        assert torch.equal(a["classes"], b["classes"])

    clips = read_index(prepared / "val.csv") + read_index(prepared / "train.csv")[:1]
    mixtures = fixed_mixtures(clips, CFG, 3, seed=1)
    ev_cached = MixDataset(clips, CFG, mixtures=mixtures, train=False)
    ev_decoded = MixDataset(clips, CFG, mixtures=mixtures, train=False, cache=False)
    assert ev_cached.cache is not None
    for i in range(len(mixtures)):
        a, b = ev_cached[i], ev_decoded[i]
        assert (a["audios"] - b["audios"]).abs().max() <= 1e-4
        levels = (a["frames"].float() - b["frames"].float()).abs()  # uint8 levels
        assert levels.max() <= EVAL_MAX_LEVELS and levels.mean() <= EVAL_MEAN_LEVELS


def test_second_run_is_up_to_date_and_other_sizes_decode(prepared, capsys):
    assert _cache(prepared) == 0
    assert _cache(prepared) == 0
    assert "up to date" in capsys.readouterr().out
    other = replace(CFG, frame_size=24)
    assert MixDataset(read_index(prepared / "train.csv"), other, length=2).cache is None
    folder = next((prepared / "cache").iterdir())
    with pytest.raises(PixelPlayerError, match="cached for 32 px"):
        MixDataset(read_index(prepared / "train.csv"), other, length=2, cache=folder)


def test_stale_cache_is_refused_then_rebuilt(prepared, capsys):
    assert _cache(prepared) == 0
    clips = read_index(prepared / "train.csv")
    write_index(prepared / "train.csv", clips[:-1])  # the index changes after the build
    with pytest.raises(PixelPlayerError, match=r"stale cache .*train.csv changed.*data cache"):
        _train_set(prepared)
    assert _cache(prepared) == 0
    assert "built" in capsys.readouterr().out
    assert _train_set(prepared).cache is not None


def test_bad_inputs_are_one_line_errors(prepared, tmp_path, capsys):
    assert _cache(tmp_path / "nowhere") == 1
    assert "no such index file or prepared folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _cache(tmp_path / "empty") == 1
    assert "no train.csv" in capsys.readouterr().err
    broken = frame_path(prepared / "frames" / "drums" / "drums_1", 5)
    broken.write_bytes(b"not a jpeg")
    assert _cache(prepared) == 1
    err = capsys.readouterr().err
    assert str(broken) in err and "unreadable" in err and "Traceback" not in err
    assert not (prepared / "cache").exists() or not list((prepared / "cache").iterdir())


def test_killed_build_is_not_used_and_is_cleaned(prepared, tmp_path):
    # the build stops after its first clip; SIGKILL leaves its temporary folder behind
    script = (
        "import sys, time\n"
        "import pixelplayer.data.cache as c\n"
        "decode = c._decode_clip\n"
        "def slow(*a):\n"
        "    r = decode(*a); print('clip', flush=True); time.sleep(60); return r\n"
        "c._decode_clip = slow\n"
        "from pixelplayer.cli import main\n"
        f"main(['data', 'cache', {str(prepared)!r}, '--size', '{SIZE}', '--workers', '1'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"clip"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = list((prepared / "cache").iterdir())
    assert len(left) == 1 and ".part-" in left[0].name
    assert _train_set(prepared).cache is None  # decodes: nothing looks complete
    assert _cache(prepared) == 0
    assert [p.name for p in (prepared / "cache").iterdir()] == [f"splits-s{SIZE}-sr{SR}"]
    assert _train_set(prepared).cache is not None


def test_dataloader_workers_share_the_cache(prepared):
    assert _cache(prepared) == 0
    data = _train_set(prepared, length=8)
    first = data[0]  # opens the arrays in this process
    blob = pickle.dumps(data)
    cache = data.cache
    assert len(blob) < (cache.frames_bytes + cache.audio_samples) / 4  # offsets, not arrays
    assert torch.equal(pickle.loads(blob)[0]["frames"], first["frames"])
    loader = DataLoader(data, batch_size=4, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["frames"].shape == (4, 2, 3, 3, SIZE, SIZE)
    assert torch.equal(batches[0]["frames"][0], first["frames"])
    decoded = _train_set(prepared, cache=False, length=8)
    assert (batches[1]["mix"][3] - decoded[7]["mix"]).abs().max() <= 1e-4


def test_other_rates_are_resampled_once(prepared, tmp_path):
    # a clip at 22050 Hz is resampled over its whole length: close to the per-window resampling
    clip = read_index(prepared / "train.csv")[0]
    wav = tone(SECONDS, 2 * SR, freq=330.0, seed=9)
    sf.write(str(clip.audio_path), wav, 2 * SR, subtype="FLOAT")
    write_index(tmp_path / "one.csv", [clip])
    folder, built = build_cache(tmp_path / "one.csv", SIZE, SR, workers=1, progress=False)
    cache = open_cache(folder)
    samples, step = cache.audio(clip.video_id)
    assert built and abs(len(samples) - SECONDS * SR) <= 1
    cached = samples[1000 : 1000 + CFG.audio_len] * step
    decoded = read_window(clip, 1000 / SR, CFG)
    inner = slice(200, -200)  # the per-window resampling has edges
    assert np.abs(cached[inner] - decoded[inner]).max() < 1e-4
