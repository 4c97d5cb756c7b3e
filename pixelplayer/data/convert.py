"""One input of `pixelplayer data prepare`, as a worker process handles it.

A video is decoded into OUT/frames/<class>/<id>/ and OUT/audio/<class>/<id>.wav, assembled in
OUT/.tmp and moved into place, and only then marked done (OUT/done/<class>/<id>.json), so a
killed run leaves no half clip counted as done. A clip of an existing index (--from-index) is
checked instead. An input that cannot be used comes back as a `Rejection`, never an exception,
so that one bad file does not stop the batch.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pixelplayer.atomic import atomic_path, write_text_atomic
from pixelplayer.audio import load_audio, load_soundtrack, save_audio
from pixelplayer.data.index import Clip, frame_path, missing_files
from pixelplayer.errors import MediaError
from pixelplayer.video import iter_frames, probe_playable

JPEG_QUALITY = 90
REJECTED_COLUMNS = ["path", "reason", "detail"]
# MediaError reasons from audio.py / video.py folded into the reasons rejected.csv documents
_REASONS = {
    "no audio": "no audio stream",
    "no video": "no video stream",
    "non-finite audio": "unreadable",
}


@dataclass
class Rejection:
    """An input that was not used, with the reason (a short tag) and the details."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class VideoTask:
    """One video for a worker: where it is, where its clip goes, and how to decode it."""

    src: str
    cls: str
    vid: str  # the id within the class: the file's stem
    out: str
    fps: float
    sr: int
    short_side: int
    min_seconds: float
    audio_stream: int | None = None  # None: the first audio stream that holds sound


def _frame_size(width: int, height: int, short_side: int) -> tuple[int, int] | None:
    """(width, height) with the shorter side `short_side`, aspect kept; None keeps the size."""
    if short_side <= 0 or width <= 0 or height <= 0:
        return None
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _done_path(out: Path, cls: str, vid: str) -> Path:
    return out / "done" / cls / f"{vid}.json"


def clip_paths(out: Path, cls: str, vid: str) -> tuple[Path, Path]:
    """(audio wav, frames folder) of a clip in OUT."""
    return out / "audio" / cls / f"{vid}.wav", out / "frames" / cls / vid


def write_json(path: Path, data: dict) -> None:
    """Written whole and renamed into place: a reader never sees half a file."""
    write_text_atomic(path, json.dumps(data, indent=1))


def convert_video(task: VideoTask) -> dict:
    """Decode one video into frames + wav under OUT and mark it done; returns the marker."""
    src, out = Path(task.src), Path(task.out)
    info = probe_playable(src, "training")
    # a cheap early answer; the decoded length is checked again below
    if 0 < info.duration < task.min_seconds:
        raise MediaError(src, "too short", f"{info.duration:.2f} s < {task.min_seconds:g} s")
    # on the video's clock, from the stream that holds sound; raises for unreadable or silent
    track = load_soundtrack(src, sr=task.sr, mono=True, stream=task.audio_stream)
    wav = track.wav
    audio_seconds = len(wav) / task.sr

    tmp = out / ".tmp" / task.cls / f"{task.vid}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from a killed run
    (tmp / "frames").mkdir(parents=True)
    try:
        n = 0
        size = _frame_size(info.width, info.height, task.short_side)
        # the last frame held while the sound goes on, as players hold it
        for i, frame in enumerate(iter_frames(src, task.fps, size, until=audio_seconds)):
            Image.fromarray(frame).save(frame_path(tmp / "frames", i), quality=JPEG_QUALITY)
            n = i + 1
        # frames cover [0, n / fps): any window inside `duration` has both frames and audio
        video_seconds = n / task.fps
        duration = min(audio_seconds, video_seconds)
        if duration < task.min_seconds:
            raise MediaError(src, "too short", f"{duration:.2f} s < {task.min_seconds:g} s")
        save_audio(tmp / "audio.wav", wav, task.sr)
        audio_path, frames_dir = clip_paths(out, task.cls, task.vid)
        if frames_dir.exists():  # a half clip of a killed run: never marked done
            shutil.rmtree(frames_dir)
        frames_dir.parent.mkdir(parents=True, exist_ok=True)
        audio_path.parent.mkdir(parents=True, exist_ok=True)
        (tmp / "frames").rename(frames_dir)
        (tmp / "audio.wav").replace(audio_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stat = src.stat()
    marker = {
        "source": str(src),
        "source_size": stat.st_size,
        "source_mtime": stat.st_mtime,
        "class": task.cls,
        "video_id": f"{task.cls}/{task.vid}",
        "num_frames": n,
        "duration": duration,
        "audio_seconds": audio_seconds,
        "video_seconds": video_seconds,
        # how the soundtrack was read: which stream, where it starts on the video's clock
        # (placed there: silence before it, or its part before the first frame cut), and
        # what else was done (a mono mix that would cancel, a DC offset), one line each
        "audio": {
            "stream": track.stream,
            "streams": track.streams,
            "offset": round(track.offset, 4),
            "notes": track.notes,
        },
        "input": {
            "fps": info.fps,
            "width": info.width,  # as shown: after the display rotation
            "height": info.height,
            "rotation": info.rotation,
            "sample_rate": info.sample_rate,
            "channels": info.channels,
        },
    }
    write_json(_done_path(out, task.cls, task.vid), marker)  # last: the clip is complete
    return marker


def convert_or_reject(task: VideoTask) -> tuple[VideoTask, dict | None, Rejection | None]:
    """Pool worker: (task, done marker, None) or (task, None, why it was rejected)."""
    try:
        return task, convert_video(task), None
    except MediaError as exc:
        reason = _REASONS.get(exc.reason, exc.reason)
        detail = exc.detail if reason == exc.reason else f"{exc.reason}: {exc.detail}".rstrip(": ")
        return task, None, Rejection(task.src, reason, detail)
    except OSError:
        raise  # the output folder (disk full, permissions): every file would fail alike
    except Exception as exc:  # anything else this one file set off must not stop the batch
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        return task, None, Rejection(task.src, "failed", detail)


def read_marker(out: Path, src: Path, cls: str, vid: str) -> dict | None:
    """The done marker when it holds and matches the source file as it is now, else None."""
    marker_path = _done_path(out, cls, vid)
    if not marker_path.is_file():
        return None
    try:
        marker = json.loads(marker_path.read_text())
        stat = src.stat()
        same = marker["source_size"] == stat.st_size and marker["source_mtime"] == stat.st_mtime
    except (OSError, ValueError, KeyError):
        return None  # a damaged marker: convert again
    if not same:
        return None
    audio_path, frames_dir = clip_paths(out, cls, vid)
    if missing_files(marker_clip(marker, audio_path, frames_dir)):
        return None
    return marker


def marker_clip(marker: dict, audio_path: Path, frames_dir: Path) -> Clip:
    """The index row of a clip that its done marker describes."""
    return Clip(
        audio_path=audio_path,
        frames_dir=frames_dir,
        num_frames=int(marker["num_frames"]),
        cls=marker["class"],
        duration=float(marker["duration"]),
        video_id=marker["video_id"],
    )


def write_rejected(path: Path, rejected: list[Rejection]) -> None:
    """rejected.csv: path,reason,detail, one row per input that was not used."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REJECTED_COLUMNS)
        for r in rejected:
            w.writerow([r.path, r.reason, r.detail])


def check_clip(args: tuple[Clip, float, float]) -> tuple[Clip | None, Rejection | None]:
    """Pool worker for --from-index: is a clip complete, readable, audible and long enough?"""
    clip, fps, min_seconds = args
    where = str(clip.audio_path)
    problem = missing_files(clip)
    if problem:
        return None, Rejection(where, "missing", problem)
    try:
        wav, rate = load_audio(clip.audio_path, mono=True)
    except MediaError as exc:
        reason = _REASONS.get(exc.reason, exc.reason)
        return None, Rejection(where, reason, exc.detail)
    for i in (0, clip.num_frames - 1):
        f = frame_path(clip.frames_dir, i)
        try:
            with Image.open(f) as im:
                im.load()
        except Exception as exc:  # PIL raises many kinds
            return None, Rejection(where, "unreadable", f"frame {f}: {exc}")
    duration = min(len(wav) / rate, clip.num_frames / fps)
    if duration < min_seconds:
        return None, Rejection(where, "too short", f"{duration:.2f} s < {min_seconds:g} s")
    clip.duration = duration
    return clip, None
