"""`pixelplayer data music`: download the MUSIC dataset (Zhao et al.) from its list of ids.

The published lists (MUSIC_solo_videos.json, MUSIC21_solo_videos.json, MUSIC_duet_videos.json)
have the shape ``{"videos": {"<class>": ["<youtube id>", ...], ...}}``. Output, in DIR::

    videos/<class>/<id>.mp4   one file per video, the layout `pixelplayer data prepare` reads;
                              the class folder is the JSON's class name unchanged (a duet class
                              such as "acoustic_guitar violin" keeps its space)
    status.csv                one row per video tried: class,id,status,file,message,time with
                              status ok, unavailable (gone from YouTube) or error (retried)
    unavailable.txt           <class>/<id> of every video recorded unavailable, one per line
    .tmp/<class>/             partial downloads (.part), continued by the next run

A video whose file is present is skipped; one recorded unavailable is not asked for again
unless `retry_unavailable`; any other failure is recorded and tried again by the next run.
yt-dlp is an optional dependency, used as a library (pixelplayer.data.ytdlp).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from pixelplayer.atomic import atomic_path
from pixelplayer.data.index import VIDEO_SUFFIXES
from pixelplayer.data.ytdlp import clean_message, import_yt_dlp, is_unavailable, ydl_options
from pixelplayer.errors import PixelPlayerError

DEFAULT_URL_TEMPLATE = "https://www.youtube.com/watch?v={id}"
DEFAULT_MAX_HEIGHT = 480  # frames are resized to a 256 px short side by `data prepare` anyway
STATUS_FILE = "status.csv"
UNAVAILABLE_FILE = "unavailable.txt"
STATUS_COLUMNS = ["class", "id", "status", "file", "message", "time"]
OK, UNAVAILABLE, ERROR = "ok", "unavailable", "error"

# YouTube ids are 11 of these; mirrors may use longer ones. Safe as file names as they are.
_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
# class names become folder names: no separators, nothing hidden, nothing a path would expand
_CLASS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _+.,()-]*")


@dataclass(frozen=True)
class MusicVideo:
    """One entry of the list: its class (also its folder name) and its id."""

    cls: str
    vid: str


@dataclass
class StatusRow:
    cls: str
    vid: str
    status: str  # ok, unavailable, error
    file: str = ""  # relative to DIR, for ok
    message: str = ""
    time: str = ""


@dataclass
class MusicReport:
    """What a download run did, counted in videos of the selection."""

    out_dir: Path
    downloaded: int  # by this run
    skipped: int  # file already present
    unavailable: int  # recorded unavailable, by this run or an earlier one
    new_unavailable: int  # found unavailable by this run
    failed: int  # other errors: tried again by the next run
    status_path: Path
    unavailable_path: Path
    failures: list[StatusRow]  # the failed videos, with their messages
    seconds: float = 0.0


# --- the list of videos ----------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise PixelPlayerError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def read_video_list(path: str | Path) -> dict[str, list[str]]:
    """The MUSIC JSON as {class: [id, ...]}, checked; duplicate ids in a class are dropped."""
    path = Path(path)
    shape = '{"videos": {"<class>": ["<youtube id>", ...]}}'

    def bad(what: str) -> PixelPlayerError:
        return PixelPlayerError(f"{path}: {what}; expected {shape}")

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PixelPlayerError(f"{path}: no such file (give the MUSIC JSON list of ids)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PixelPlayerError(f"{path}: cannot read ({exc})") from exc
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise PixelPlayerError(
            f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from exc
    except PixelPlayerError as exc:
        raise bad(str(exc)) from exc
    if not isinstance(data, dict) or "videos" not in data:
        raise bad('no "videos" key at the top level')
    videos = data["videos"]
    if not isinstance(videos, dict) or not videos:
        raise bad('"videos" is not an object of classes' if videos else '"videos" is empty')
    out: dict[str, list[str]] = {}
    for cls, ids in videos.items():
        if not _CLASS_RE.fullmatch(cls) or cls != cls.strip():
            raise bad(
                f"class name {cls!r} cannot be a folder name (letters, digits, space, _+.,()- "
                "only, starting with a letter or digit)"
            )
        if not isinstance(ids, list):
            raise bad(f"class {cls!r} holds {type(ids).__name__}, not a list of ids")
        for i, vid in enumerate(ids):
            if not isinstance(vid, str) or not _ID_RE.fullmatch(vid):
                raise bad(f"class {cls!r}, item {i}: {vid!r} is not a video id ([A-Za-z0-9_-]+)")
        out[cls] = list(dict.fromkeys(ids))
    return out


def select_videos(
    videos: dict[str, list[str]], classes: Sequence[str] | None = None, limit: int | None = None
) -> list[MusicVideo]:
    """The videos of `classes` (all when None; "a b" may be written "a_b"), the first `limit`
    of each class in list order."""
    if limit is not None and limit < 1:
        raise PixelPlayerError(f"--limit {limit}: give a number of videos per class >= 1")
    chosen = list(videos)
    if classes:
        by_name = {c: c for c in videos} | {c.replace(" ", "_"): c for c in videos}
        unknown = [c for c in classes if c not in by_name]
        if unknown:
            raise PixelPlayerError(
                f"unknown class {', '.join(map(repr, unknown))}; the list has: " + ", ".join(videos)
            )
        chosen = list(dict.fromkeys(by_name[c] for c in classes))
    return [MusicVideo(cls, vid) for cls in chosen for vid in videos[cls][:limit]]


# --- what earlier runs did -------------------------------------------------------------------


def read_status(path: Path) -> dict[tuple[str, str], StatusRow]:
    """status.csv as {(class, id): row}; a missing file is an empty record."""
    if not path.is_file():
        return {}
    rows = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                row = StatusRow(
                    r["class"], r["id"], r["status"], r["file"], r["message"], r["time"]
                )
                rows[row.cls, row.vid] = row
    except (OSError, KeyError, csv.Error) as exc:
        raise PixelPlayerError(f"{path}: unreadable ({exc}); delete it to start over") from exc
    return rows


def _write_atomic(path: Path, write) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        write(f)


def write_status(out: Path, rows: dict[tuple[str, str], StatusRow]) -> None:
    """status.csv and unavailable.txt, each written whole and renamed into place."""
    ordered = sorted(rows.values(), key=lambda r: (r.cls, r.vid))

    def status(f) -> None:
        w = csv.writer(f)
        w.writerow(STATUS_COLUMNS)
        for r in ordered:
            w.writerow([r.cls, r.vid, r.status, r.file, r.message, r.time])

    def unavailable(f) -> None:
        f.writelines(f"{r.cls}/{r.vid}\n" for r in ordered if r.status == UNAVAILABLE)

    _write_atomic(out / STATUS_FILE, status)
    _write_atomic(out / UNAVAILABLE_FILE, unavailable)


def find_download(videos_dir: Path, video: MusicVideo) -> Path | None:
    """The finished file of a video (any container `data prepare` reads), or None."""
    folder = videos_dir / video.cls
    for suffix in VIDEO_SUFFIXES:
        path = folder / f"{video.vid}{suffix}"
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def download_one(
    video: MusicVideo,
    out: Path,
    url_template: str = DEFAULT_URL_TEMPLATE,
    max_height: int = DEFAULT_MAX_HEIGHT,
    ffmpeg: bool = False,
    cookies: str | None = None,
) -> StatusRow:
    """Download one video into out/videos/<class>/; never raises for a bad video."""
    yt_dlp = import_yt_dlp()
    url = url_template.replace("{id}", video.vid)
    now = _now()
    try:
        with yt_dlp.YoutubeDL(
            ydl_options(out, video.cls, video.vid, max_height, ffmpeg, cookies)
        ) as ydl:
            info = ydl.extract_info(url, download=True)
        done = find_download(out / "videos", video)
        if done is None:  # e.g. a playlist page or a live stream: nothing saved
            kind = (info or {}).get("_type", "no file")
            return StatusRow(video.cls, video.vid, ERROR, "", f"{url}: nothing saved ({kind})", now)
        return StatusRow(video.cls, video.vid, OK, str(done.relative_to(out)), "", now)
    except Exception as exc:  # yt-dlp raises many kinds; one bad video never stops the run
        status = UNAVAILABLE if is_unavailable(exc) else ERROR
        return StatusRow(video.cls, video.vid, status, "", clean_message(exc, ffmpeg), now)


# --- the whole list --------------------------------------------------------------------------


def _check_url_template(template: str) -> None:
    if "{id}" not in template:
        raise PixelPlayerError(
            f"--url-template {template!r} has no {{id}}; e.g. {DEFAULT_URL_TEMPLATE}"
        )


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted(root.glob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


def _download_all(todo: list[MusicVideo], args: tuple, workers: int) -> Iterator[StatusRow]:
    """download_one over `todo`, results in the order they finish."""
    if workers == 1:  # in this thread, so that Ctrl-C stops at once (the .part stays)
        for video in todo:
            yield download_one(video, *args)
        return
    # threads: the work is waiting on the network; each has its own YoutubeDL
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(todo)))) as pool:
        futures = [pool.submit(download_one, video, *args) for video in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # on Ctrl-C the running downloads finish, the others never start
            pool.shutdown(wait=False, cancel_futures=True)


def download_music(
    json_path: str | Path,
    out_dir: str | Path,
    classes: Sequence[str] | None = None,
    limit: int | None = None,
    url_template: str = DEFAULT_URL_TEMPLATE,
    max_height: int = DEFAULT_MAX_HEIGHT,
    retry_unavailable: bool = False,
    workers: int = 1,
    cookies: str | Path | None = None,
    progress: bool = True,
) -> MusicReport:
    """Download the videos of a MUSIC JSON list into out_dir/videos/<class>/<id>.<ext>.

    Resumable: present files are skipped, videos recorded unavailable are not asked for again
    (unless `retry_unavailable`), every other failure is retried. The record is written after
    every video, so a killed run loses nothing.
    """
    t0 = time.monotonic()
    out = Path(out_dir)
    _check_url_template(url_template)
    if max_height < 1 or workers < 1:
        raise PixelPlayerError(f"max height ({max_height}) and workers ({workers}) must be >= 1")
    if cookies is not None and not Path(cookies).is_file():
        raise PixelPlayerError(f"{cookies}: no such cookies file")
    selected = select_videos(read_video_list(json_path), classes, limit)
    import_yt_dlp()  # fail before any work when it is missing
    ffmpeg = shutil.which("ffmpeg") is not None
    out.mkdir(parents=True, exist_ok=True)
    rows = read_status(out / STATUS_FILE)

    todo, skipped, known_gone = [], 0, 0
    for video in selected:
        key, present = (video.cls, video.vid), find_download(out / "videos", video)
        row = rows.get(key)
        if present is not None:
            skipped += 1
            if row is None or row.status != OK:  # a file put there by hand, or a lost record
                found = str(present.relative_to(out))
                rows[key] = StatusRow(*key, OK, found, "found on disk", _now())
        elif row is not None and row.status == UNAVAILABLE and not retry_unavailable:
            known_gone += 1
        else:
            todo.append(video)
    write_status(out, rows)

    counts: Counter[str] = Counter()
    failures: list[StatusRow] = []
    bar = tqdm(
        total=len(selected), initial=len(selected) - len(todo), unit="video", disable=not progress
    )
    args = (out, url_template, max_height, ffmpeg, str(cookies) if cookies else None)
    try:
        for row in _download_all(todo, args, workers):
            rows[row.cls, row.vid] = row
            write_status(out, rows)
            counts[row.status] += 1
            if row.status == ERROR:
                failures.append(row)
            bar.update(1)
            bar.set_postfix(ok=counts[OK], gone=counts[UNAVAILABLE], failed=counts[ERROR])
    finally:
        bar.close()
        _remove_empty_dirs(out / ".tmp")
    return MusicReport(
        out_dir=out,
        downloaded=counts[OK],
        skipped=skipped,
        unavailable=known_gone + counts[UNAVAILABLE],
        new_unavailable=counts[UNAVAILABLE],
        failed=counts[ERROR],
        status_path=out / STATUS_FILE,
        unavailable_path=out / UNAVAILABLE_FILE,
        failures=failures,
        seconds=time.monotonic() - t0,
    )
