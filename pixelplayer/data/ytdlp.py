"""yt-dlp as a library for `pixelplayer data music`: its options, the format to ask for, and
what its errors mean (a video gone for good, or a failure worth retrying).

yt-dlp is an optional dependency (``pip install 'pixelplayer[music]'``), imported only when a
download starts; no shell ever sees an id or a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from pixelplayer.errors import PixelPlayerError

INSTALL_HINT = "pip install 'pixelplayer[music]'"
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
# lower-case pieces of yt-dlp's messages for videos that are gone for good (or for everyone
# here); a bot check, an age gate or a network error is not among them: those are retried
_GONE = (
    "video unavailable",
    "this video is unavailable",
    "video is not available",
    "no longer available",
    "private video",
    "has been removed",
    "been terminated",
    "does not exist",
    "copyright",
    "not made this video available",
    "blocked it in your country",
    "http error 404",
    "http error 410",
)


def import_yt_dlp() -> ModuleType:
    """The yt_dlp module, or an error that says how to install it."""
    try:
        import yt_dlp
    except ImportError as exc:
        raise PixelPlayerError(f"yt-dlp is not installed; run: {INSTALL_HINT}") from exc
    return yt_dlp


def format_spec(max_height: int, ffmpeg: bool) -> str:
    """yt-dlp's format selection: mp4 with sound and picture, at most `max_height` rows.

    Without ffmpeg only single files that hold both streams can be used (on YouTube mostly
    360p mp4); with it, separate video and audio streams are merged into an mp4 as well. When
    nothing is small enough, the smallest file there is.
    """
    h = f"[height<=?{max_height}]"
    single = f"b[ext=mp4]{h}/b{h}/w[ext=mp4]/w"
    if not ffmpeg:
        return single
    return f"bv*[ext=mp4]{h}+ba[ext=m4a]/bv*{h}+ba/" + single


class _QuietLogger:
    """yt-dlp's messages would break the progress bar; failures arrive as exceptions."""

    def debug(self, msg: str) -> None: ...

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


def ydl_options(
    out: Path, cls: str, vid: str, max_height: int, ffmpeg: bool, cookies: str | None
) -> dict:
    """YoutubeDL's options for video `vid` of class `cls`, downloaded into `out`/videos/`cls`."""
    options = {
        "format": format_spec(max_height, ffmpeg),
        # finished files in videos/<class>/, partial ones in .tmp/<class>/ (where `data
        # prepare` never sees them); the id is checked to be a plain file name
        "paths": {
            "home": str(out.resolve() / "videos" / cls),
            "temp": str(out.resolve() / ".tmp" / cls),
        },
        "outtmpl": {"default": f"{vid}.%(ext)s"},
        "continuedl": True,  # a .part left by a killed run is continued (or restarted)
        "noplaylist": True,
        "logger": _QuietLogger(),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "cachedir": False,  # nothing written outside DIR
        "retries": 3,
        "socket_timeout": 30,
    }
    if ffmpeg:
        options["merge_output_format"] = "mp4"
    else:
        options["fixup"] = "never"  # the fixups are ffmpeg runs
    if cookies:
        options["cookiefile"] = cookies
    return options


def _exception_chain(exc: BaseException) -> Iterable[BaseException]:
    """exc and what it wraps (yt-dlp keeps the cause in exc_info and `cause`)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        exc_info = getattr(e, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]


def is_unavailable(exc: BaseException) -> bool:
    """Is this download error a video gone for good (removed, private, 404/410)?"""
    for e in _exception_chain(exc):
        if getattr(e, "status", None) in (404, 410):  # yt_dlp.networking HTTPError
            return True
    message = str(exc).lower()
    return any(piece in message for piece in _GONE)


def clean_message(exc: BaseException, ffmpeg: bool) -> str:
    """A download error as one line of status.csv, with a hint where ffmpeg would help."""
    message = _ANSI_RE.sub("", str(exc)).strip().removeprefix("ERROR:").strip()
    message = " ".join(message.split())  # one line in the csv
    if not ffmpeg and "requested format is not available" in message.lower():
        message += " (install ffmpeg to merge separate video and audio streams)"
    return message
