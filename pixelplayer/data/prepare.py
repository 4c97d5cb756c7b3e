"""`pixelplayer data prepare`: a folder of videos -> frames + audio + index files.

Input: `VIDEOS/<class>/<id>.{mp4,mkv,webm,mov,avi}` (the MUSIC layout, searched recursively;
the class is the video's parent folder). Output, in OUT::

    frames/<class>/<id>/000001.jpg ...   frames at `fps`, shorter side `short_side`
    audio/<class>/<id>.wav               mono 16-bit PCM at `sr`, the whole track as decoded
    done/<class>/<id>.json               written last: the clip is complete (resume marker)
    train.csv val.csv test.csv all.csv   index files (see pixelplayer.data.index)
    rejected.csv                         every input file it could not use: path,reason,detail
    prepare.json                         the settings, so a later run cannot mix other ones in

A second run skips the videos whose marker exists (and whose source is unchanged); a killed
run leaves no half clip counted as done, because each clip is assembled in OUT/.tmp, moved
into place and only then marked done.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from pixelplayer import checks
from pixelplayer.audio import load_audio, load_soundtrack, save_audio
from pixelplayer.data.index import (
    LEGACY_FPS,
    SPLITS,
    VIDEO_SUFFIXES,
    Clip,
    frame_path,
    missing_files,
    parse_index,
    write_index,
)
from pixelplayer.errors import MediaError, PixelPlayerError
from pixelplayer.parallel import imap_unordered, worker_count
from pixelplayer.video import check_frame_size, iter_frames, probe

JPEG_QUALITY = 90
REJECTED_COLUMNS = ["path", "reason", "detail"]
SETTINGS_FILE = "prepare.json"
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
class PrepareReport:
    """What a prepare run did. `clips` are all good clips, the ones skipped as done included."""

    out_dir: Path
    prepared: int  # converted by this run
    skipped: int  # already done by an earlier run
    rejected: list[Rejection]
    clips: list[Clip]
    index_paths: dict[str, Path]  # split name (train, val, test, all) -> csv
    rejected_path: Path
    splits: dict[str, int] = field(default_factory=dict)  # split name -> clip count
    seconds: float = 0.0  # wall time


@dataclass
class _Task:
    src: str
    cls: str
    vid: str  # the id within the class: the file's stem
    out: str
    fps: float
    sr: int
    short_side: int
    min_seconds: float
    audio_stream: int | None = None  # None: the first audio stream that holds sound


# --- one video (runs in a worker process) --------------------------------------------------


def _frame_size(width: int, height: int, short_side: int) -> tuple[int, int] | None:
    """(width, height) with the shorter side `short_side`, aspect kept; None keeps the size."""
    if short_side <= 0 or width <= 0 or height <= 0:
        return None
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _done_path(out: Path, cls: str, vid: str) -> Path:
    return out / "done" / cls / f"{vid}.json"


def _clip_paths(out: Path, cls: str, vid: str) -> tuple[Path, Path]:
    return out / "audio" / cls / f"{vid}.wav", out / "frames" / cls / vid


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _convert(task: _Task) -> dict:
    """Decode one video into frames + wav under OUT and mark it done; returns the marker."""
    src, out = Path(task.src), Path(task.out)
    info = probe(src)
    if not info.has_video:
        raise MediaError(src, "no video stream", "an audio file; training needs the pictures too")
    if not info.has_audio:
        raise MediaError(src, "no audio stream", "training needs each video's soundtrack")
    check_frame_size(info)
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
        audio_path, frames_dir = _clip_paths(out, task.cls, task.vid)
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
    _write_json(_done_path(out, task.cls, task.vid), marker)  # last: the clip is complete
    return marker


def _prepare_one(task: _Task) -> tuple[_Task, dict | None, Rejection | None]:
    """Pool worker: (task, done marker, None) or (task, None, why it was rejected)."""
    try:
        return task, _convert(task), None
    except MediaError as exc:
        reason = _REASONS.get(exc.reason, exc.reason)
        detail = exc.detail if reason == exc.reason else f"{exc.reason}: {exc.detail}".rstrip(": ")
        return task, None, Rejection(task.src, reason, detail)
    except OSError:
        raise  # the output folder (disk full, permissions): every file would fail alike
    except Exception as exc:  # anything else this one file set off must not stop the batch
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        return task, None, Rejection(task.src, "failed", detail)


# --- the whole folder ------------------------------------------------------------------------


def _scan(videos_dir: Path) -> tuple[list[tuple[Path, str, str]], list[Rejection]]:
    """Video files as (path, class, id), sorted; other files and clashing ids are rejected."""
    found, rejected = [], []
    seen: dict[tuple[str, str], Path] = {}
    walked: set[str] = set()
    # symlinked class folders are common in datasets; `walked` stops a link cycle
    for root, dirs, files in os.walk(videos_dir, followlinks=True):
        walked.add(os.path.realpath(root))
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")  # hidden: not user data
            and os.path.realpath(os.path.join(root, d)) not in walked
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if not name.lower().endswith(VIDEO_SUFFIXES):
                rejected.append(
                    Rejection(
                        str(path),
                        "unreadable",
                        f"not a video file (expected {', '.join(VIDEO_SUFFIXES)})",
                    )
                )
                continue
            key = (path.parent.name, path.stem)
            if key in seen:
                rejected.append(
                    Rejection(str(path), "duplicate", f"same class and id as {seen[key]}")
                )
                continue
            seen[key] = path
            found.append((path, *key))
    return found, rejected


def _read_marker(out: Path, src: Path, cls: str, vid: str) -> dict | None:
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
    audio_path, frames_dir = _clip_paths(out, cls, vid)
    if missing_files(_marker_clip(marker, audio_path, frames_dir)):
        return None
    return marker


def _marker_clip(marker: dict, audio_path: Path, frames_dir: Path) -> Clip:
    return Clip(
        audio_path=audio_path,
        frames_dir=frames_dir,
        num_frames=int(marker["num_frames"]),
        cls=marker["class"],
        duration=float(marker["duration"]),
        video_id=marker["video_id"],
    )


def _check_settings(out: Path, settings: dict) -> None:
    """Refuse to add clips made with other settings to an existing output folder."""
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise PixelPlayerError(f"{path}: unreadable ({exc}); delete it to continue") from exc
        diff = [f"{k} {old.get(k)} -> {v}" for k, v in settings.items() if old.get(k) != v]
        if diff:
            raise PixelPlayerError(
                f"{out} was prepared with other settings ({'; '.join(diff)}); "
                "use a new output folder or the same settings"
            )
    _write_json(path, settings)


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of `n` videos go to each split: largest remainder, then one for every split
    with a share as long as the largest split keeps at least one."""
    total = sum(fractions)
    raw = [n * f / total for f in fractions]
    counts = [math.floor(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    wanted = [i for i, f in enumerate(fractions) if f > 0]
    for i in wanted:
        if counts[i] == 0:
            donor = max(wanted, key=lambda j: (counts[j], -j))
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] += 1
    return counts


def split_clips(
    clips: Iterable[Clip], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[Clip]]:
    """Train/val/test by video, stratified per class; depends only on the clips and the seed."""
    by_class: dict[str, list[Clip]] = {}
    for c in clips:
        by_class.setdefault(c.cls, []).append(c)
    out: dict[str, list[Clip]] = {s: [] for s in SPLITS}
    for cls in sorted(by_class):
        items = sorted(by_class[cls], key=lambda c: c.video_id)
        random.Random(f"{seed}/{cls}").shuffle(items)  # str seeds hash the same in every run
        start = 0
        for name, count in zip(SPLITS, split_counts(len(items), fractions), strict=True):
            out[name].extend(items[start : start + count])
            start += count
    return {s: sorted(v, key=lambda c: c.video_id) for s, v in out.items()}


def check_numbers(
    fps: float = 8.0,
    sr: int = 11025,
    short_side: int = 0,
    min_seconds: float = 0.0,
    workers: int | None = None,
    audio_stream: int | None = None,
) -> None:
    """Every number of a prepare, finite and in range, or a one-line error naming it."""
    checks.number("--fps", fps, 0, 1000, above=True)
    checks.number("--sr", sr, 1000, 384000, integer=True)
    checks.number("--short-side", short_side, 0, 4096, integer=True)
    checks.number("--min-seconds", min_seconds, 0, 24 * 3600)
    checks.number("--workers", workers, 1, 1024, integer=True)
    checks.number("--audio-stream", audio_stream, 0, 1000, integer=True)


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    if len(split) != 3 or any(not math.isfinite(f) or f < 0 for f in split) or sum(split) <= 0:
        raise PixelPlayerError(
            f"split {tuple(split)}: give three shares >= 0 for train, val, test (e.g. 0.8,0.1,0.1)"
        )
    return tuple(float(f) for f in split)  # type: ignore[return-value]


def write_rejected(path: Path, rejected: list[Rejection]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REJECTED_COLUMNS)
        for r in rejected:
            w.writerow([r.path, r.reason, r.detail])
    tmp.replace(path)


def _finish(
    out: Path,
    clips: list[Clip],
    rejected: list[Rejection],
    split: Sequence[float],
    seed: int,
    prepared: int,
    skipped: int,
    t0: float,
) -> PrepareReport:
    """Write the index files and rejected.csv; build the report."""
    clips = sorted(clips, key=lambda c: c.video_id)
    splits = split_clips(clips, split, seed)
    splits["all"] = clips
    paths = {}
    for name, items in splits.items():
        paths[name] = out / f"{name}.csv"
        write_index(paths[name], items)
    rejected = sorted(rejected, key=lambda r: r.path)
    write_rejected(out / "rejected.csv", rejected)
    return PrepareReport(
        out_dir=out,
        prepared=prepared,
        skipped=skipped,
        rejected=rejected,
        clips=clips,
        index_paths=paths,
        rejected_path=out / "rejected.csv",
        splits={k: len(v) for k, v in splits.items()},
        seconds=time.monotonic() - t0,
    )


def prepare(
    videos_dir: str | Path,
    out_dir: str | Path,
    fps: float = 8.0,
    sr: int = 11025,
    short_side: int = 256,
    min_seconds: float = 3.0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    audio_stream: int | None = None,
) -> PrepareReport:
    """Convert every video under `videos_dir` into frames + audio in `out_dir`, with indexes.

    Frames as players show them (turned by the display matrix), audio on the video's clock
    from `audio_stream` (None: the first that holds sound); the done markers say what was done.

    Resumable: videos done by an earlier run (same settings) are skipped. Every file that
    cannot be used is listed in OUT/rejected.csv; none stops the run.
    """
    t0 = time.monotonic()
    videos_dir, out = Path(videos_dir), Path(out_dir)
    split = _check_split(split)
    if not videos_dir.is_dir():
        raise PixelPlayerError(f"{videos_dir}: no such folder of videos")
    check_numbers(fps, sr, short_side, min_seconds, workers, audio_stream)
    checks.output_folder(out, "OUT")
    if out.resolve().is_relative_to(videos_dir.resolve()):
        raise PixelPlayerError(f"{out}: the output folder must not be inside {videos_dir}")
    if (videos_dir / "synth.json").is_file() and (videos_dir / "videos").is_dir():
        # its stems, meta and duets are no solo videos: they would all be rejected or misread
        raise PixelPlayerError(
            f"{videos_dir} is a `data synth` output; give its solo videos: {videos_dir / 'videos'}"
        )
    found, rejected = _scan(videos_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, {"fps": fps, "sr": sr, "short_side": short_side})
    shutil.rmtree(out / ".tmp", ignore_errors=True)  # leftovers of a killed run

    todo, markers = [], []
    for path, cls, vid in found:
        marker = _read_marker(out, path, cls, vid)
        if marker is not None:
            markers.append(marker)
        else:
            todo.append(
                _Task(str(path), cls, vid, str(out), fps, sr, short_side, min_seconds, audio_stream)
            )
    skipped = len(markers)
    prepared = 0
    n_workers = worker_count(workers, len(todo))
    bar = tqdm(total=len(found), initial=skipped, unit="video", disable=not progress)
    with bar:
        for _task, marker, rejection in imap_unordered(_prepare_one, todo, n_workers):
            if marker is not None:
                markers.append(marker)
                prepared += 1
            else:
                rejected.append(rejection)
            bar.update(1)
    shutil.rmtree(out / ".tmp", ignore_errors=True)  # only empty class folders are left

    clips = []
    for m in markers:
        cls, vid = m["video_id"].split("/", 1)
        clip = _marker_clip(m, *_clip_paths(out, cls, vid))
        if clip.duration < min_seconds:  # done earlier with a lower --min-seconds
            rejected.append(
                Rejection(m["source"], "too short", f"{clip.duration:.2f} s < {min_seconds:g} s")
            )
            continue
        clips.append(clip)
    return _finish(out, clips, rejected, split, seed, prepared, skipped, t0)


# --- an existing Sound-of-Pixels dataset ----------------------------------------------------


def _check_clip(args: tuple[Clip, float, float]) -> tuple[Clip | None, Rejection | None]:
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


def prepare_from_index(
    index_path: str | Path,
    out_dir: str | Path,
    fps: float = LEGACY_FPS,
    min_seconds: float = 3.0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Index an existing dataset (a Sound-of-Pixels index, or ours) without re-encoding it.

    Every row is checked (files exist, audio decodes and is not silent, first and last frames
    open); the new index files in `out_dir` point at the existing files.
    """
    t0 = time.monotonic()
    out = Path(out_dir)
    split = _check_split(split)
    check_numbers(fps, min_seconds=min_seconds, workers=workers)
    checks.output_folder(out, "OUT")
    clips = parse_index(index_path)
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, {"fps": fps, "from_index": str(Path(index_path).resolve())})
    good, rejected, tasks, seen = [], [], [], set()
    for c in clips:
        if c.video_id in seen:  # training looks clips up by video id
            rejected.append(Rejection(str(c.audio_path), "duplicate", f"video id {c.video_id}"))
        else:
            seen.add(c.video_id)
            tasks.append((c, fps, min_seconds))
    bar = tqdm(total=len(tasks), unit="clip", disable=not progress)
    with bar:
        for clip, rejection in imap_unordered(
            _check_clip, tasks, worker_count(workers, len(tasks))
        ):
            if clip is not None:
                good.append(clip)
            else:
                rejected.append(rejection)
            bar.update(1)
    return _finish(out, good, rejected, split, seed, len(good), 0, t0)


# --- command line ----------------------------------------------------------------------------


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
        return _check_split(parts)
    except (ValueError, PixelPlayerError) as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give train,val,test shares such as 0.8,0.1,0.1"
        ) from exc


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="videos -> frames + audio + index files",
        description=(
            "Turn a folder of videos VIDEOS/<class>/<id>.mp4 (searched recursively; also .mkv, "
            ".webm, .mov, .avi) into JPEG frames, mono wav audio and train/val/test index "
            "files in OUT. A second run skips the videos already done. Files that cannot be "
            "used are listed in OUT/rejected.csv. With --from-index, index an existing "
            "Sound-of-Pixels dataset instead (no VIDEOS argument, nothing re-encoded)."
        ),
    )
    p.add_argument("videos", nargs="?", metavar="VIDEOS", help="folder of <class>/<id> videos")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument(
        "--from-index",
        metavar="OLD.csv",
        help="an existing index (audio_path,frames_dir,num_frames rows) to check and re-index",
    )
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the frames (default 8)")
    p.add_argument("--sr", type=int, default=11025, help="audio sample rate (default 11025)")
    p.add_argument(
        "--short-side",
        type=int,
        default=256,
        help="resize frames so the shorter side is this (default 256; 0 keeps the size)",
    )
    p.add_argument(
        "--min-seconds",
        type=float,
        default=3.0,
        help="reject videos shorter than this (default 3)",
    )
    p.add_argument(
        "--split",
        type=_parse_split,
        default=(0.8, 0.1, 0.1),
        help="train,val,test shares, split by video per class (default 0.8,0.1,0.1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: CPU count)"
    )
    p.add_argument(
        "--audio-stream",
        type=int,
        metavar="N",
        help="the audio stream of every video, from 0 (default: the first that holds sound)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.from_index and args.videos:
        raise PixelPlayerError("give either VIDEOS or --from-index, not both")
    if args.from_index and args.audio_stream is not None:
        raise PixelPlayerError("--audio-stream chooses a video's stream: give it with VIDEOS")
    # what both ways of preparing share
    common = dict(
        fps=args.fps,
        min_seconds=args.min_seconds,
        split=args.split,
        seed=args.seed,
        workers=args.workers,
    )
    if args.from_index:
        report = prepare_from_index(args.from_index, args.out, **common)
        print(f"indexed {report.prepared} clips from {args.from_index} into {report.out_dir}")
    else:
        if not args.videos:
            raise PixelPlayerError("give VIDEOS (a folder of videos) and OUT, or --from-index")
        report = prepare(
            args.videos,
            args.out,
            sr=args.sr,
            short_side=args.short_side,
            audio_stream=args.audio_stream,
            **common,
        )
        print(
            f"prepared {report.prepared} videos, skipped {report.skipped} already done "
            f"({report.seconds:.1f} s) into {report.out_dir}"
        )
    counts = ", ".join(f"{k} {v}" for k, v in report.splits.items())
    print(f"clips per split: {counts}")
    print(f"rejected {len(report.rejected)} files, listed in {report.rejected_path}")
    return 0
