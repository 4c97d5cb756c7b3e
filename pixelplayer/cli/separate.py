"""`pixelplayer separate`: parse the arguments and separate each video with
`pixelplayer.separation.Separator`; one video's error is the command's, several go on past a bad
one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pixelplayer import checks
from pixelplayer.errors import PixelPlayerError, printable
from pixelplayer.separation import MAP_FPS, Separator
from pixelplayer.separation.page import write_separation_page

MAX_GRID = 64  # cells per side of the lattice: 4096 waveforms
MAX_SOURCES = 64
MAX_PIXEL = 1 << 20  # no video is wider or higher: a larger coordinate is a typo


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "separate",
        help="separate and localize the sounds of videos with a trained run",
        description=(
            "Separate the sounds of whole videos (any length, size, frame rate, sample rate) "
            "with a trained PixelPlayer run: a per-frame map of where the sound comes from, the "
            "sounding regions grouped into sources, the sound of chosen pixels and of a grid of "
            "cells over the frame. Writes OUT/manifest.json with frame.jpg, energy.npy/.png, "
            "overlay.mp4 (heat map over the video, original audio), mixture.wav, "
            "sources/source_<i>.wav|.png|_spec.png, points/point_<i>.wav|_spec.png and "
            "cells/cell_<r>_<c>.wav; and index.html when the page module is installed."
        ),
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files with a soundtrack")
    p.add_argument("--model", required=True, metavar="RUN", help="trained run folder")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output folder; with several videos DIR/<video stem> (default: separated/<stem>)",
    )
    p.add_argument(
        "--sources", type=int, metavar="N", help="number of sources (default: chosen from data)"
    )
    p.add_argument(
        "--points",
        metavar="'x,y;x,y'",
        help="pixels of the original frame to hear, e.g. '120,80;300,95'",
    )
    p.add_argument(
        "--boxes",
        metavar="'x0,y0,x1,y1;...'",
        help="pixel boxes of the original frame to hear (their cells pooled), e.g. '10,10,90,80'",
    )
    p.add_argument("--grid", type=int, default=7, metavar="N", help="lattice of N x N cells (7)")
    p.add_argument(
        "--map-fps",
        type=_map_fps,
        default=MAP_FPS,
        metavar="F|all",
        help=f"fresh visual features per second for the energy maps (default {MAP_FPS:g}; 0: "
        "only the frames the audio windows use, fastest; 'all': every sampled frame, slowest)",
    )
    p.add_argument(
        "--motion",
        metavar="RUN",
        help="an AME or AMnet run: also map where the motion goes with the sound (motion.npy, "
        "motion.png); an AMnet --model maps it with its own embedding",
    )
    p.add_argument(
        "--audio-stream",
        type=int,
        metavar="N",
        help="the audio stream to hear, from 0 (default: the first that holds sound)",
    )
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run (best.pt)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _map_fps(text: str) -> float | None:
    """'all' or a number; its range is checked with the other options (one line)."""
    if text == "all":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give frames per second (>= 0) or 'all'"
        ) from None


def output_dirs(videos: list[Path], out: str | None) -> list[Path]:
    """One folder per video: OUT itself for one video, else OUT/<stem> (stems made unique)."""
    if out is not None and len(videos) == 1:
        return [Path(out)]
    root = Path(out) if out is not None else Path("separated")
    dirs, seen = [], {}
    for v in videos:
        n = seen[v.stem] = seen.get(v.stem, 0) + 1
        dirs.append(root / (v.stem if n == 1 else f"{v.stem}-{n}"))
    return dirs


def _write_page(out: Path) -> Path | None:
    try:
        return write_separation_page(out)
    except Exception as exc:  # the outputs are written; a page problem must not fail the run
        print(f"pixelplayer: warning: no page for {out} ({type(exc).__name__}: {exc})")
        return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def check_arguments(args: argparse.Namespace) -> None:
    """Every number, the device and every output folder, before any work (one line each)."""
    checks.number("--sources", args.sources, 1, MAX_SOURCES, integer=True)
    checks.number("--grid", args.grid, 1, MAX_GRID, integer=True)
    checks.number("--map-fps", args.map_fps, 0, 1000)
    checks.number("--audio-stream", getattr(args, "audio_stream", None), 0, 1000, integer=True)
    checks.device(args.device)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, PixelPlayerError):
        return str(exc)
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def run(args: argparse.Namespace) -> int:
    videos = [Path(v) for v in args.videos]
    check_arguments(args)
    points = parse_points(args.points)
    boxes = parse_points(args.boxes, 4, "--boxes")
    outs = output_dirs(videos, args.out)
    for out in outs:  # before the model loads: a path in the way fails now, not after the work
        checks.output_folder(out)
    separator = Separator.from_run(
        args.model, args.checkpoint, device=args.device, motion=args.motion
    )
    failed: list[tuple[Path, str]] = []
    for video, out in zip(videos, outs, strict=True):
        try:
            r = separator.separate_video(
                video,
                sources=args.sources,
                points=points,
                out=out,
                grid=args.grid,
                progress=not args.no_progress,
                map_fps=args.map_fps,
                boxes=boxes,
                audio_stream=getattr(args, "audio_stream", None),
            )
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            # one video: its error is the command's; several: the batch goes on past it
            if len(videos) == 1 or getattr(args, "debug", False):
                raise
            failed.append((video, _failure(exc)))
            print(f"pixelplayer: error: {failed[-1][1]}", file=sys.stderr)
            continue
        for note in r.notes:
            print(f"{video}: note: {note}")
        print(
            f"{video}: {r.duration:.1f} s, {_count(len(r.source_waves), 'source')}, "
            f"{_count(len(r.points), 'point')}, {r.grid}x{r.grid} cells in {r.seconds:.1f} s "
            f"-> {out}/manifest.json"
        )
        page = _write_page(out)
        if page is not None:
            print(f"page: {page}")
    if failed:
        names = ", ".join(printable(str(v)) for v, _ in failed)
        print(
            f"pixelplayer: separated {len(videos) - len(failed)} of {len(videos)} videos; "
            f"{len(failed)} failed: {names}",
            file=sys.stderr,
        )
        return 1
    return 0


def parse_points(text: str | None, size: int = 2, option: str = "--points") -> list[tuple]:
    """'x,y;x,y' -> [(x, y), ...]; with size=4, 'x0,y0,x1,y1;...' -> boxes.

    Coordinates are finite pixel numbers (inf, nan or 1e300 are refused, one line)."""
    if not text:
        return []
    points = []
    form = "x,y;x,y" if size == 2 else "x0,y0,x1,y1;x0,y0,x1,y1"
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        values = part.split(",")
        try:
            if len(values) != size:
                raise ValueError
            numbers = [float(v) for v in values]
        except ValueError:
            raise PixelPlayerError(f"{option} {text!r}: write pixels as '{form}'") from None
        for v, x in zip(values, numbers, strict=True):
            if not np.isfinite(x) or abs(x) > MAX_PIXEL:
                raise PixelPlayerError(
                    f"{option} {text!r}: {v} is not a pixel coordinate; give finite pixels "
                    f"in 0..{MAX_PIXEL} as '{form}'"
                )
        points.append(tuple(int(round(x)) for x in numbers))
    return points
