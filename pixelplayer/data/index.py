"""Index files: which clips a dataset holds, shared by prepare, training and evaluation.

The format is CSV with a header::

    audio_path,frames_dir,num_frames,class,duration,video_id
    audio/flute/unRA0xR-XWc.wav,frames/flute/unRA0xR-XWc,744,flute,93.0,flute/unRA0xR-XWc

Paths are relative to the index file's folder, so a prepared folder can be moved as a whole;
files outside that folder are written as absolute paths. A relative path that climbs out of the
folder (`../../etc/passwd`) is refused: an index names files where it says it does.
`video_id` is `<class>/<id>`, unique within a dataset (training looks clips up by it).

`read_index` also reads the original Sound-of-Pixels format: no header, rows
`audio_path,frames_dir,num_frames`; the class is the name of the frames dir's parent folder.
Frames are `000001.jpg`, `000002.jpg`, ... inside `frames_dir` (1-based, as the original code).
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from pixelplayer.atomic import atomic_path
from pixelplayer.errors import PixelPlayerError

COLUMNS = ["audio_path", "frames_dir", "num_frames", "class", "duration", "video_id"]
LEGACY_COLUMNS = ["audio_path", "frames_dir", "num_frames"]
LEGACY_FPS = 8.0  # the original code sampled frames at 8 fps
SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")
MAX_NAMED = 5  # how many bad rows an error message names


@dataclass
class Clip:
    """One prepared video: its audio file, its folder of frames and what they hold."""

    audio_path: Path
    frames_dir: Path
    num_frames: int
    cls: str
    duration: float  # seconds covered by both audio and frames
    video_id: str


def frame_path(frames_dir: str | Path, i: int) -> Path:
    """Path of frame `i` (0-based) of a clip: frame i shows time i / fps."""
    return Path(frames_dir) / f"{i + 1:06d}.jpg"


def _abs(path: str | Path) -> Path:
    # lexical, not resolve(): a dataset reached through a symlink keeps its own paths
    return Path(os.path.abspath(path))


def _rel(path: Path, base: Path) -> str:
    # POSIX separators so an index written on one system reads on another; files outside the
    # index's folder keep their absolute path, as relative ones may not climb out (see _inside)
    if not path.is_relative_to(base):
        return path.as_posix()
    return Path(os.path.relpath(path, base)).as_posix()


def write_index(path: str | Path, clips: list[Clip]) -> None:
    """Write `clips` as an index CSV (header, paths relative to the file's folder), atomically."""
    path = Path(path)
    base = _abs(path.parent)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for c in clips:
            w.writerow(
                [
                    _rel(_abs(c.audio_path), base),
                    _rel(_abs(c.frames_dir), base),
                    c.num_frames,
                    c.cls,
                    f"{c.duration:.3f}",
                    c.video_id,
                ]
            )


def resolve_index(path_or_dir: str | Path, split: str) -> Path:
    """The index file for `split`: DIR/<split>.csv for a prepared folder, or the csv itself."""
    p = Path(path_or_dir)
    if p.is_dir():
        f = p / f"{split}.csv"
        if not f.is_file():
            found = sorted(x.name for x in p.glob("*.csv"))
            raise PixelPlayerError(
                f"{p}: no {split}.csv in this folder"
                + (f" (it holds {', '.join(found)})" if found else "")
                + "; run `pixelplayer data prepare` to make one"
            )
        return f
    if p.is_file():
        return p
    raise PixelPlayerError(f"{p}: no such index file or prepared folder")


def _join(base: Path, value: str) -> Path:
    # lexical, like _abs: the '..' of a relative path should not linger in the clip's paths
    return Path(os.path.normpath(base / value))


def _inside(base: Path, value: str, where: str, column: str) -> Path:
    """An index path: absolute as written, else relative to `base` and not climbing out of it.

    Lexical, like _abs: a symlink inside the folder may point anywhere, as the user chose.
    """
    if Path(value).is_absolute():
        return _abs(value)
    path = _join(base, value)
    if not path.is_relative_to(base):
        raise PixelPlayerError(
            f"{where}: {column} {value!r} climbs out of {base}; an index may name files outside "
            "its folder only by absolute path"
        )
    return path


def _legacy_path(value: str, base: Path, where: str, column: str) -> Path:
    """A legacy path: absolute, else relative to the index's folder, else to the working dir."""
    p = Path(value)
    if p.is_absolute():
        return _abs(p)
    near = _join(base, value)
    if near.exists() or not p.exists():
        return _inside(base, value, where, column)
    # the original scripts wrote paths relative to where they ran
    return _inside(_abs(Path.cwd()), value, where, column)


def _legacy_duration(audio: Path, num_frames: int) -> float:
    """Seconds from the audio header when soundfile can read it, else from the frame count."""
    import soundfile as sf

    try:
        info = sf.info(str(audio))
        return min(info.frames / info.samplerate, num_frames / LEGACY_FPS)
    except Exception:
        # e.g. mp3 on an old libsndfile: the frame count at 8 fps is the best estimate left
        return num_frames / LEGACY_FPS


def _parse_int(value: str, where: str) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise PixelPlayerError(f"{where}: num_frames {value!r} is not an integer") from None
    if n <= 0:
        raise PixelPlayerError(f"{where}: num_frames {n} must be positive")
    return n


def _parse_float(value: str, where: str, column: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise PixelPlayerError(f"{where}: {column} {value!r} is not a number") from None
    if not math.isfinite(x) or x < 0:
        raise PixelPlayerError(f"{where}: {column} {value!r} must be a finite number >= 0")
    return x


def parse_index(path: str | Path) -> list[Clip]:
    """Read an index file (either format) without looking at the files it names."""
    path = Path(path)
    if not path.is_file():
        raise PixelPlayerError(f"{path}: no such index file")
    base = _abs(path.parent)
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(x.strip() for x in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PixelPlayerError(f"{path}: cannot read the index ({exc})") from exc
    if not rows:
        raise PixelPlayerError(f"{path}: the index is empty")
    header = [x.strip() for x in rows[0]]
    if _is_header(header):
        return _parse_new(path, base, header, rows[1:])
    return _parse_legacy(path, base, rows)


def _is_header(row: list[str]) -> bool:
    """A header names columns; a legacy data row holds paths and an integer."""
    if "audio_path" in row:
        return True
    looks_like_data = any(x.isdigit() or "/" in x or "\\" in x or "." in x for x in row)
    return not looks_like_data


def _parse_new(path: Path, base: Path, header: list[str], rows: list[list[str]]) -> list[Clip]:
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PixelPlayerError(
            f"{path}: the header lacks {', '.join(missing)}; expected columns {','.join(COLUMNS)}"
        )
    col = {name: header.index(name) for name in COLUMNS}
    clips = []
    for n, row in enumerate(rows, start=2):
        where = f"{path}:{n}"
        if len(row) < len(header):
            raise PixelPlayerError(
                f"{where}: {len(row)} fields, expected {len(header)} ({','.join(header)})"
            )
        get = {name: row[i].strip() for name, i in col.items()}
        clips.append(
            Clip(
                audio_path=_inside(base, get["audio_path"], where, "audio_path"),
                frames_dir=_inside(base, get["frames_dir"], where, "frames_dir"),
                num_frames=_parse_int(get["num_frames"], where),
                cls=get["class"],
                duration=_parse_float(get["duration"], where, "duration"),
                video_id=get["video_id"],
            )
        )
    return clips


def legacy_video_id(frames_dir: Path) -> str:
    """`<class>/<id>` for a legacy frames dir, which the original code named `<id>.mp4`."""
    name = frames_dir.name
    stem = Path(name).stem if name.lower().endswith(VIDEO_SUFFIXES) else name
    return f"{frames_dir.parent.name}/{stem}"


def _parse_legacy(path: Path, base: Path, rows: list[list[str]]) -> list[Clip]:
    clips = []
    for n, row in enumerate(rows, start=1):
        where = f"{path}:{n}"
        if len(row) != len(LEGACY_COLUMNS):
            raise PixelPlayerError(
                f"{where}: {len(row)} fields; expected a header row "
                f"{','.join(COLUMNS)} or headerless rows {','.join(LEGACY_COLUMNS)}"
            )
        num = _parse_int(row[2], where)
        audio = _legacy_path(row[0].strip(), base, where, "audio_path")
        frames = _legacy_path(row[1].strip(), base, where, "frames_dir")
        clips.append(
            Clip(
                audio_path=audio,
                frames_dir=frames,
                num_frames=num,
                cls=frames.parent.name,
                duration=_legacy_duration(audio, num),
                video_id=legacy_video_id(frames),
            )
        )
    return clips


def missing_files(clip: Clip) -> str:
    """What a clip lacks on disk ('' when complete): the audio, the frames dir, or frames."""
    if not Path(clip.audio_path).is_file():
        return f"no audio file {clip.audio_path}"
    if not Path(clip.frames_dir).is_dir():
        return f"no frames folder {clip.frames_dir}"
    for i in (0, clip.num_frames - 1):
        if not frame_path(clip.frames_dir, i).is_file():
            return f"no frame {frame_path(clip.frames_dir, i)}"
    return ""


def _check_ids(path: str | Path, clips: list[Clip]) -> None:
    """Refuse an index without clips, or with a video id twice (clips are looked up by id)."""
    if not clips:
        raise PixelPlayerError(f"{path}: the index lists no clips; prepare more data")
    twice = [vid for vid, n in Counter(c.video_id for c in clips).items() if n > 1]
    if twice:
        named = ", ".join(twice[:MAX_NAMED]) + (", ..." if len(twice) > MAX_NAMED else "")
        raise PixelPlayerError(
            f"{path}: video ids listed more than once ({named}); each clip needs its own id"
        )


@overload
def read_index(path: str | Path, skip_missing: Literal[False] = False) -> list[Clip]: ...


@overload
def read_index(path: str | Path, skip_missing: Literal[True]) -> tuple[list[Clip], int]: ...


def read_index(path: str | Path, skip_missing: bool = False) -> list[Clip] | tuple[list[Clip], int]:
    """Read an index (either format) and check that every clip's files exist.

    By default (training, evaluation) an index without clips, a video id listed twice, or a
    clip with missing files is an error that names the first few. With `skip_missing=True` it
    returns (the complete clips, how many were left out) instead.
    """
    clips = parse_index(path)
    if not skip_missing:
        _check_ids(path, clips)
    good, bad = [], []
    for c in clips:
        problem = missing_files(c)
        if problem:
            bad.append(problem)
        else:
            good.append(c)
    if skip_missing:
        return good, len(bad)
    if bad:
        named = "; ".join(bad[:MAX_NAMED]) + ("; ..." if len(bad) > MAX_NAMED else "")
        raise PixelPlayerError(
            f"{path}: {len(bad)} of {len(clips)} clips have missing files ({named}); "
            "prepare the data again or read with skip_missing"
        )
    return good
