"""Video decode and encode with PyAV (which carries its own FFmpeg)."""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pixelplayer.atomic import atomic_path
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
    # the display matrix, as players apply it: width and height above are the displayed ones
    rotation: int = 0  # degrees clockwise, 0, 90, 180 or 270
    flipped: bool = False  # mirrored left to right after the rotation
    audio_streams: int = 0
    audio_start: float = 0.0  # s the first audio stream starts after the video (< 0: before)


def path_problem(path: str | Path) -> tuple[str, str] | None:
    """Why `path` is not a readable regular file, as (reason, detail), or None when it is.

    Names the kind of thing that stands there: a folder, a FIFO, a device, a socket, a broken
    link or a link loop, so that "no such file" is said only of a path where nothing is.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "unreadable", "a symbolic link loop: the link points back at itself"
        if path.is_symlink():
            return "missing", f"a broken symbolic link (to {os.readlink(path)})"
        if exc.errno == errno.EACCES:
            return "unreadable", "permission denied: no access to the path"
        if exc.errno == errno.ENOTDIR:
            return "missing", "a part of the path is a file, not a folder"
        return "missing", "no such file"
    mode = st.st_mode
    kinds = [
        (stat.S_ISDIR, "a folder: give a file inside it"),
        (stat.S_ISFIFO, "a FIFO (named pipe): save the stream to a file first"),
        (stat.S_ISCHR, "a character device: give a video file"),
        (stat.S_ISBLK, "a block device: give a video file"),
        (stat.S_ISSOCK, "a socket: give a video file"),
    ]
    for test, what in kinds:
        if test(mode):
            return "not a file", what
    if not stat.S_ISREG(mode):
        return "not a file", "not a regular file: give a video file"
    if not os.access(path, os.R_OK):
        return "unreadable", "permission denied: the file cannot be read"
    if st.st_size == 0:
        return "unreadable", EMPTY_FILE
    return None


def check_file(path: str | Path) -> None:
    """Raise MediaError naming what stands at `path` unless it is a readable, non-empty file."""
    problem = path_problem(path)
    if problem is not None:
        raise MediaError(path, *problem)


def _open(path: Path):
    check_file(path)
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


def probe_playable(path: str | Path, needs: str) -> MediaInfo:
    """Probe a video that `needs` (training, separate) uses whole: a picture stream, an audio
    stream and frames large enough, each refused in one line saying why."""
    info = probe(path)
    if not info.has_video:
        raise MediaError(path, "no video stream", f"an audio file; {needs} needs the pictures too")
    if not info.has_audio:
        raise MediaError(path, "no audio stream", f"{needs} needs the video's soundtrack")
    check_frame_size(info)
    return info


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


def stream_start(stream) -> float:
    """When a stream starts on the container's clock, s (0 when the file does not say)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def video_start(container) -> float:
    """The time of the first video frame on the container's clock: time 0 of the clip."""
    return stream_start(container.streams.video[0]) if container.streams.video else 0.0


# --- display matrix: how players turn the stored picture ------------------------------------

IDENTITY = (1, 0, 0, 1)  # (a, b, c, d): x' = a x + c y, y' = b x + d y (FFmpeg's convention)


def _display_matrix(frame) -> tuple[int, int, int, int]:
    """The frame's display matrix as signs (a, b, c, d), each -1, 0 or 1; identity if none.

    A rotation that is not a multiple of 90 degrees is taken to the nearest one.
    """
    try:
        sides = frame.side_data
        for item in sides:
            # PyAV up to 18.1.0 iterates over the side data, later releases over their types
            side = item if hasattr(item, "type") else sides[item]
            if "DISPLAYMATRIX" in str(side.type):
                m = struct.unpack("<9i", bytes(side)[:36])
                a, b, c, d = m[0], m[1], m[3], m[4]
                if abs(a) + abs(d) >= abs(b) + abs(c):
                    return (1 if a >= 0 else -1, 0, 0, 1 if d >= 0 else -1)
                return (0, 1 if b >= 0 else -1, 1 if c >= 0 else -1, 0)
    except Exception:  # a damaged side-data block: show the frame as stored
        return IDENTITY
    return IDENTITY


def _describe(matrix: tuple[int, int, int, int]) -> tuple[int, bool]:
    """(degrees clockwise, mirrored) of a display matrix: what players do to the picture."""
    marks = np.arange(6).reshape(2, 3)  # a picture whose corners tell every turn apart
    shown = display(marks, matrix)
    for k in range(4):
        for flip in (False, True):
            turned = np.rot90(marks, -k)
            if flip:
                turned = turned[:, ::-1]
            if turned.shape == shown.shape and (turned == shown).all():
                return 90 * k, flip
    return 0, False


def display(picture: np.ndarray, matrix: tuple[int, int, int, int]) -> np.ndarray:
    """The (H, W, ...) picture as players show it under the display matrix (a view)."""
    a, b, c, d = matrix
    if b == 0 and c == 0:
        out = picture
        if a < 0:
            out = out[:, ::-1]
        if d < 0:
            out = out[::-1]
        return out
    # transposed: the shown row is b * x and the shown column c * y of the stored (x, y)
    out = picture.swapaxes(0, 1)
    if b < 0:
        out = out[::-1]
    if c < 0:
        out = out[:, ::-1]
    return out


def _first_frame_matrix(container, stream) -> tuple[int, int, int, int]:
    """The display matrix of the first frame that decodes (identity when none does)."""
    try:
        for frame in container.decode(stream):
            return _display_matrix(frame)
    except Exception:  # the decode errors are reported where the frames are read
        pass
    return IDENTITY


def probe(path: str | Path) -> MediaInfo:
    """Streams, rates and duration of a media file, as players show it.

    Decodes one video frame only (its display matrix says how the picture is turned). width
    and height are those shown; duration is the clip's length on the video's clock: the longer
    of the picture and the first audio stream placed at its start time.
    """
    path = Path(path)
    with _open(path) as c:
        info = MediaInfo(str(path), 0.0, bool(c.streams.video), bool(c.streams.audio))
        durations = []
        origin = video_start(c)
        if c.streams.audio:
            a = c.streams.audio[0]
            info.audio_streams = len(c.streams.audio)
            info.sample_rate = a.codec_context.sample_rate or 0
            info.channels = a.codec_context.channels if hasattr(a.codec_context, "channels") else 0
            if not info.channels and a.codec_context.layout is not None:
                info.channels = a.codec_context.layout.nb_channels
            if c.streams.video:
                info.audio_start = stream_start(a) - origin
            durations.append(info.audio_start + _stream_seconds(a, c))
        if c.streams.video:
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            info.fps = float(rate) if rate else 0.0
            info.width, info.height = v.codec_context.width, v.codec_context.height
            durations.append(_stream_seconds(v, c))
            info.rotation, info.flipped = _describe(_first_frame_matrix(c, v))
            if info.rotation in (90, 270):
                info.width, info.height = info.height, info.width
        info.duration = max(durations) if durations else 0.0
    return info


def iter_frames(
    path: str | Path,
    fps: float = 8.0,
    size: tuple[int, int] | None = None,
    until: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB frames (H, W, 3) uint8 sampled at `fps`: frame k shows time k / fps.

    Works for any source frame rate, constant or variable: for each target time it yields the
    latest decoded frame whose timestamp is not after it. Frames are turned as players show
    them (the display matrix: a phone's portrait video is portrait). `size` = (width, height)
    of the shown frame resizes. `until` (s): the last frame stays up to this time, as players
    hold it while a longer soundtrack plays.
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
        matrix = None  # the first frame's: every frame is turned alike
        t = 0.0
        try:
            for frame in c.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else k / fps
                if stream.start_time is not None:
                    t -= float(stream.start_time * stream.time_base)
                if matrix is None:
                    matrix = _display_matrix(frame)
                # emit every target time passed before this frame, showing the previous frame
                while last is not None and k / fps < t - 1e-6:
                    rgb = _to_rgb(last, size, matrix) if rgb is None else rgb
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
        end = max(_stream_seconds(stream, c), until or 0.0)
        # the last frame lasts until the stream's end (or one source frame at least)
        while k / fps < max(end, t + 1e-6) - 1e-6:
            rgb = _to_rgb(last, size, matrix) if rgb is None else rgb
            yield rgb
            k += 1


def _to_rgb(frame, size: tuple[int, int] | None, matrix=IDENTITY) -> np.ndarray:
    """(H, W, 3) uint8 as shown, at `size` (width, height): FFmpeg scales and converts in one
    pass, so a 4K frame never exists as a full-size RGB array (25 MB each)."""
    matrix = matrix or IDENTITY
    if size is None:
        rgb = frame.to_ndarray(format="rgb24")
    else:
        width, height = size
        if matrix[0] == 0:  # stored turned a quarter: scale to the stored shape
            width, height = height, width
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BILINEAR")
    if matrix == IDENTITY:
        return rgb
    return np.ascontiguousarray(display(rgb, matrix))


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
    frames = np.asarray(frames)
    t, h, w, _ = frames.shape
    with atomic_path(path, keep_suffix=True) as tmp, av.open(str(tmp), mode="w") as c:
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
