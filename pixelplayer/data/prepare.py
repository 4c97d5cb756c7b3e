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

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pixelplayer import checks
from pixelplayer.data.convert import (
    Rejection,
    VideoTask,
    check_clip,
    clip_paths,
    convert_or_reject,
    marker_clip,
    read_marker,
    write_json,
    write_rejected,
)
from pixelplayer.data.index import LEGACY_FPS, VIDEO_SUFFIXES, Clip, parse_index, write_index
from pixelplayer.data.splits import check_split, split_clips
from pixelplayer.errors import PixelPlayerError
from pixelplayer.parallel import imap_unordered, worker_count

SETTINGS_FILE = "prepare.json"


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
    write_json(path, settings)


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
    split = check_split(split)
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
        marker = read_marker(out, path, cls, vid)
        if marker is not None:
            markers.append(marker)
        else:
            todo.append(
                VideoTask(
                    str(path), cls, vid, str(out), fps, sr, short_side, min_seconds, audio_stream
                )
            )
    skipped = len(markers)
    prepared = 0
    n_workers = worker_count(workers, len(todo))
    bar = tqdm(total=len(found), initial=skipped, unit="video", disable=not progress)
    with bar:
        for _task, marker, rejection in imap_unordered(convert_or_reject, todo, n_workers):
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
        clip = marker_clip(m, *clip_paths(out, cls, vid))
        if clip.duration < min_seconds:  # done earlier with a lower --min-seconds
            rejected.append(
                Rejection(m["source"], "too short", f"{clip.duration:.2f} s < {min_seconds:g} s")
            )
            continue
        clips.append(clip)
    return _finish(out, clips, rejected, split, seed, prepared, skipped, t0)


# --- an existing Sound-of-Pixels dataset ----------------------------------------------------


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
    split = check_split(split)
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
        for clip, rejection in imap_unordered(check_clip, tasks, worker_count(workers, len(tasks))):
            if clip is not None:
                good.append(clip)
            else:
                rejected.append(rejection)
            bar.update(1)
    return _finish(out, good, rejected, split, seed, len(good), 0, t0)
