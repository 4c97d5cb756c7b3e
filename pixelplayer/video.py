"""Video decode and encode with PyAV (which carries its own FFmpeg)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pixelplayer.errors import MediaError

EMPTY_FILE = "empty file (0 bytes): copy or download it again"
MIN_SIDE = 16  # px: the frame net sees one cell per 16 px; smaller frames show nothing


@dataclass
class MediaInfo:
    path: str
    duration: float  # seconds, the longest stream
    has_video: bool
    has_audio: bool
    fps: float = 0.0
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


def _open(path: Path):
    if not path.is_file():
        raise MediaError(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise MediaError(path, "unreadable", EMPTY_FILE)
    try:
        return av.open(str(path))
    except Exception as exc:
        raise MediaError(path, "unreadable", decode_failure(exc)) from exc


def decode_failure(exc: BaseException) -> str:
    """One line on a failed decode, with what to do: FFmpeg's message may span lines."""
    # FFmpeg's own words, without the errno and the path the message already starts with
    said = getattr(exc, "strerror", None) if isinstance(exc, av.FFmpegError) else None
    text = " ".join((said or f"{type(exc).__name__}: {exc}").split())
    return f"{text}; the file is damaged or not a video: re-download it or re-encode it"


def check_frame_size(info: MediaInfo) -> None:
    """Refuse frames too small to show anything (e.g. 1x1 px), with a one-line reason."""
    if info.has_video and min(info.width, info.height) < MIN_SIDE:
        raise MediaError(
            info.path,
            "too small",
            f"{info.width}x{info.height} px frames; give a video at least {MIN_SIDE} px "
            "on each side",
        )


def _stream_seconds(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def probe(path: str | Path) -> MediaInfo:
    """Streams, rates and duration of a media file, without decoding it."""
    path = Path(path)
    with _open(path) as c:
        info = MediaInfo(str(path), 0.0, bool(c.streams.video), bool(c.streams.audio))
        durations = []
        if c.streams.video:
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            info.fps = float(rate) if rate else 0.0
            info.width, info.height = v.codec_context.width, v.codec_context.height
            durations.append(_stream_seconds(v, c))
        if c.streams.audio:
            a = c.streams.audio[0]
            info.sample_rate = a.codec_context.sample_rate or 0
            info.channels = a.codec_context.channels if hasattr(a.codec_context, "channels") else 0
            if not info.channels and a.codec_context.layout is not None:
                info.channels = a.codec_context.layout.nb_channels
            durations.append(_stream_seconds(a, c))
        info.duration = max(durations) if durations else 0.0
    return info


def iter_frames(
    path: str | Path, fps: float = 8.0, size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Yield RGB frames (H, W, 3) uint8 sampled at `fps`: frame k shows time k / fps.

    Works for any source frame rate, constant or variable: for each target time it yields the
    latest decoded frame whose timestamp is not after it. `size` = (width, height) resizes.
    """
    path = Path(path)
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError(path, "no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        k = 0
        last = None  # the latest decoded frame, converted to RGB only if it is yielded
        rgb = None
        try:
            for frame in c.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else k / fps
                if stream.start_time is not None:
                    t -= float(stream.start_time * stream.time_base)
                # emit every target time passed before this frame, showing the previous frame
                while last is not None and k / fps < t - 1e-6:
                    rgb = _to_rgb(last, size) if rgb is None else rgb
                    yield rgb
                    k += 1
                last, rgb = frame, None
        except MediaError:
            raise
        except Exception as exc:
            if last is None:
                raise MediaError(path, "unreadable", decode_failure(exc)) from exc
            # a truncated file: keep what decoded cleanly
        if last is None:
            raise MediaError(path, "no video", "the video stream holds no frames")
        end = _stream_seconds(stream, c)
        # the last frame lasts until the stream's end (or one source frame at least)
        while k / fps < max(end, t + 1e-6) - 1e-6:
            rgb = _to_rgb(last, size) if rgb is None else rgb
            yield rgb
            k += 1


def _to_rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    """(H, W, 3) uint8 at `size` (width, height): FFmpeg scales and converts in one pass, so a
    4K frame never exists as a full-size RGB array (25 MB each)."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    width, height = size
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BILINEAR")


def read_frames(
    path: str | Path, fps: float = 8.0, size: tuple[int, int] | None = None
) -> np.ndarray:
    """All frames at `fps` as (T, H, W, 3) uint8."""
    return np.stack(list(iter_frames(path, fps, size)))


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sr: int | None = None,
    crf: int = 23,
) -> None:
    """Encode (T, H, W, 3) uint8 frames as H.264 and optional (L,) or (L, C) audio as AAC.

    H and W must be even (yuv420p). The file is written to a temporary name and renamed, so a
    half-written video never stands under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    frames = np.asarray(frames)
    t, h, w, _ = frames.shape
    with av.open(str(tmp), mode="w") as c:
        vs = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        vs.codec_context.thread_count = 1  # workers run in parallel processes instead
        as_ = None
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            if audio.ndim == 1:
                audio = audio[:, None]
            layout = "mono" if audio.shape[1] == 1 else "stereo"
            as_ = c.add_stream("aac", rate=sr)
            as_.layout = layout
            as_.bit_rate = 96000
        for i in range(t):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            for packet in vs.encode(vf):
                c.mux(packet)
        for packet in vs.encode():
            c.mux(packet)
        if as_ is not None:
            planar = np.ascontiguousarray(np.clip(audio, -1, 1).T)  # (C, L)
            n = as_.codec_context.frame_size or 1024
            for start in range(0, planar.shape[1], n):
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(planar[:, start : start + n]), format="fltp", layout=layout
                )
                af.sample_rate = sr
                af.pts = start
                for packet in as_.encode(af):
                    c.mux(packet)
            for packet in as_.encode():
                c.mux(packet)
    tmp.replace(path)
