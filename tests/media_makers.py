"""Videos as phones and cameras write them, made in the test: turned by a display matrix,
audio that starts late, several audio streams, channels in opposite phase."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

W, H = 64, 36  # stored frame size of every clip here (tiny: the tests stay fast)
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


def tone(seconds: float, sr: int, amp: float = 0.2, freq: float = 330.0) -> np.ndarray:
    """(L,) float32 harmonic tone."""
    t = np.arange(int(round(seconds * sr))) / sr
    return sum(amp / k * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3)).astype(np.float32)


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
