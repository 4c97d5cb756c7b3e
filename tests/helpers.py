"""Shared test helpers: tiny configs, sounds and videos made on the fly (as phones and cameras
write them: turned by a display matrix, audio that starts late, several audio streams), run
folders, quiet CLI calls.

Fixtures live in conftest.py; test modules import what they need from here, never from each
other.
"""

from __future__ import annotations

import contextlib
import csv
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

# a PixelPlayer small enough to train two epochs in seconds
TINY = [
    "model_kwargs={k: 8, frame: {width: 8}, sound: {ngf: 4, levels: 5}}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
    "train.batch_size=4",
    "train.epoch_size=8",
    "train.epochs=2",
    "train.val_mixtures=4",
    "train.workers=0",
    "train.max_minutes=null",
]
# a still smaller one for `separate` and `eval` on untrained runs
TINY_SEPARATOR = [
    "model_kwargs={k: 4, frame: {width: 4}, sound: {ngf: 4, levels: 5}}",
    "sample.audio_len=8191",
    "sample.frame_size=32",
    "sample.stride_frames=4",
]
# AMnet's audio-motion embedding, tiny
TINY_AME = [
    "model_kwargs={dim: 8, width: 4}",
    "train.val_mixtures=6",
    "sample.num_frames=8",
    "sample.audio_len=11025",
    "sample.frame_size=16",
    "train.batch_size=4",
    "train.epoch_size=8",
    "train.epochs=2",
    "train.max_minutes=null",
]


def set_args(*pairs: str) -> list[str]:
    """["a=1", "b=2"] -> ["--set", "a=1", "--set", "b=2"]."""
    return [a for p in pairs for a in ("--set", p)]


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.3, seed: int = 0):
    """A harmonic tone with a little noise: (L,) float32."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wav = sum(amp / h * np.sin(2 * np.pi * freq * h * t) for h in (1, 2, 3))
    return (wav + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


# --- videos as phones and cameras write them ----------------------------------------------------

W, H = 64, 36  # stored frame size of the clips below (tiny: the tests stay fast)
FPS = 8
LAYOUTS = {1: "mono", 2: "stereo"}


def marked_frames(seconds: float, fps: float = FPS, w: int = W, h: int = H) -> np.ndarray:
    """(T, h, w, 3) uint8: grey, a white block in the stored top-left corner (to see how the
    picture is turned) and a moving square (so it is no still picture)."""
    n = max(1, int(round(seconds * fps)))
    frames = np.full((n, h, w, 3), 90, np.uint8)
    frames[:, : h // 3, : w // 4] = 255
    side = h // 4
    for i in range(n):
        x = w // 3 + (i * 3) % (w // 2)
        frames[i, h // 2 : h // 2 + side, x : x + side] = (250, 200, 20)
    return frames


def write_clip(
    path: Path,
    frames: np.ndarray | None,
    audios: list[tuple[np.ndarray, int, float]] = (),
    fps: float = FPS,
    rotation: int = 0,
    acodec: str = "aac",
    mirror: bool = False,
    video_start: float = 0.0,
) -> Path:
    """A clip with video `frames` and audio streams (audio (L, C), rate, start s on the
    container's clock). `rotation`: degrees clockwise that players turn the picture (a phone's
    'rotate' tag: 90 for a portrait video stored landscape), written as a display matrix;
    `mirror` mirrors it left to right after that (a front camera). `video_start`: the time of
    the first frame."""
    with av.open(str(path), "w") as c:
        vs = None
        if frames is not None:
            vs = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vs.height, vs.width = frames.shape[1:3]
            vs.pix_fmt = "yuv420p"
            vs.options = {"preset": "ultrafast", "crf": "30"}
            if rotation or mirror:  # PyAV's degrees are counter-clockwise
                vs.set_display_rotation(-rotation, hflip=mirror)
        streams = []
        for audio, sr, start in audios:
            audio = audio[:, None] if audio.ndim == 1 else audio
            a = c.add_stream(acodec, rate=sr)
            a.layout = LAYOUTS[audio.shape[1]]
            streams.append((a, audio, sr, start))
        if vs is not None:
            first = int(round(video_start * fps))
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), "rgb24")
                vf.pts, vf.time_base = first + i, Fraction(1) / vs.codec_context.framerate
                c.mux(vs.encode(vf))
            c.mux(vs.encode())
        for a, audio, sr, start in streams:
            fmt = a.codec_context.format.name
            n = a.codec_context.frame_size or 1024
            first = int(round(start * sr))
            for s in range(0, len(audio), n):
                chunk = audio[s : s + n]
                arr = chunk.T if fmt.endswith("p") else chunk.reshape(1, -1)
                if fmt.startswith("s16"):
                    arr = (np.clip(arr, -1, 1) * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(arr), format=fmt, layout=LAYOUTS[audio.shape[1]]
                )
                af.sample_rate, af.pts = sr, first + s
                c.mux(a.encode(af))
            c.mux(a.encode())
    return path


def untrained_run(folder: Path, overrides: list[str]) -> Path:
    """A run folder (config.yaml + best.pt) holding an untrained PixelPlayer of the CPU preset
    with `overrides`: enough for `separate` and `eval` to run."""
    from pixelplayer.config import load_config
    from pixelplayer.models.registry import save_checkpoint
    from pixelplayer.run import Run
    from pixelplayer.training import build_model

    cfg = load_config("pixelplayer-cpu", overrides)
    torch.manual_seed(0)
    model, kwargs = build_model(cfg)
    run = Run(folder)
    run.save_config(cfg)
    save_checkpoint(run.checkpoint(), model, cfg.model, kwargs)
    return folder


def prepare_quietly(argv: list[str]) -> tuple[dict[str, dict], str]:
    """Run `pixelplayer data prepare` (argv after `pixelplayer`), its output captured; it must
    exit 0 without a traceback. -> (OUT/rejected.csv rows by file name, what it printed)."""
    from pixelplayer.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    assert code == 0, stderr.getvalue()
    assert "Traceback" not in stdout.getvalue() + stderr.getvalue()
    with open(Path(argv[3]) / "rejected.csv", newline="") as f:
        rejected = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    return rejected, stdout.getvalue()
