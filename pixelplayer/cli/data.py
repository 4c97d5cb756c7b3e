"""`pixelplayer data synth|prepare|info|music|cache`: make, prepare and inspect datasets.

Each data verb parses its arguments here and calls the library, where the work is:
pixelplayer.data.synth (the generated world), .prepare, .info, .music (the MUSIC download)
and .cache.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from pixelplayer import checks
from pixelplayer.data import pictures
from pixelplayer.data.cache import build_cache, open_cache
from pixelplayer.data.info import dataset_info, format_info
from pixelplayer.data.music import DEFAULT_MAX_HEIGHT, DEFAULT_URL_TEMPLATE, download_music
from pixelplayer.data.prepare import prepare, prepare_from_index
from pixelplayer.data.splits import check_split
from pixelplayer.data.synth.clip import DISTRACTOR_DIR
from pixelplayer.data.synth.instruments import CLASSES
from pixelplayer.data.synth.soundfont import (
    HOLDOUT_SOUNDFONT,
    HOLDOUT_SOUNDFONT_PACKAGE,
    TRAINING_SOUNDFONTS,
)
from pixelplayer.data.synth.world import HOLDOUT_KINDS, synthesize
from pixelplayer.data.ytdlp import INSTALL_HINT
from pixelplayer.errors import PixelPlayerError


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="make, prepare and inspect datasets",
        description="Make, prepare and inspect datasets of videos.",
    )
    dsub = p.add_subparsers(
        dest="data_verb", metavar="{synth,prepare,info,music,cache}", required=True
    )
    for add in (_add_synth, _add_prepare, _add_info, _add_music, _add_cache):
        add(dsub)


# --- data synth -----------------------------------------------------------------------------------


def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="make a MUSIC-like dataset of solo instrument videos",
        description=(
            "Make a MUSIC-like dataset: solo videos of instruments playing random melodies, "
            "rendered with FluidSynth from one of three General MIDI SoundFonts with vibrato and "
            "reverberation at random, drawn from a library of pictures (emoji of six makers, "
            "icons; or yours with --images) in random poses, colours and light, partly hidden at "
            "times, on textured backgrounds among silent objects, some of which move too. The "
            "instrument moves with its own notes. Writes OUT/videos/<class>/<id>.mp4, lossless "
            "stems in OUT/stems, and OUT/meta/<id>.json with per-frame boxes and where each "
            "picture and sound came from; duets go to OUT/duets. --holdout makes test clips of "
            "the pictures and sounds training never uses. A second run with the same settings "
            "keeps the clips already made."
        ),
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument(
        "--clips",
        type=int,
        default=40,
        metavar="N",
        help=f"solo clips per class (default 40: {40 * len(CLASSES)} clips)",
    )
    p.add_argument(
        "--seconds", type=float, default=10.0, metavar="S", help="clip length (default 10)"
    )
    p.add_argument(
        "--classes",
        metavar="A,B,...",
        help=f"comma-separated subset of the classes (default all: {', '.join(CLASSES)})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="dataset seed (default 0)")
    p.add_argument("--fps", type=float, default=8, metavar="F", help="video frame rate (default 8)")
    p.add_argument(
        "--size", type=int, default=224, metavar="PX", help="frame width = height, even (224)"
    )
    p.add_argument(
        "--sr", type=int, default=11025, metavar="HZ", help="audio sample rate (default 11025)"
    )
    p.add_argument(
        "--duets",
        type=int,
        default=0,
        metavar="N",
        help="also make N duet videos of two instruments, with both parts as stems (default 0)",
    )
    p.add_argument(
        "--trios",
        type=int,
        default=0,
        metavar="N",
        help="also make N trio videos of three instruments, with the three parts as stems "
        "(default 0)",
    )
    p.add_argument(
        "--same-class",
        action="store_true",
        help="duets (and trios) of players of one class (different melodies)",
    )
    p.add_argument(
        "--soundfont",
        metavar="PATH",
        help=(
            "General MIDI SoundFont (.sf2/.sf3) to render with, or several separated by commas "
            f"(default: the training ones, {', '.join(TRAINING_SOUNDFONTS)})"
        ),
    )
    p.add_argument(
        "--holdout",
        choices=HOLDOUT_KINDS,
        help=(
            "make held-out test clips, never used in training: 'pictures' draws the photo "
            f"cut-outs of Debian's {pictures.HOLDOUT_PACKAGE} (only the classes it shows), "
            f"'sounds' plays {HOLDOUT_SOUNDFONT} ({HOLDOUT_SOUNDFONT_PACKAGE}), 'both' both; "
            "installs nothing: a missing package is an error naming it"
        ),
    )
    p.add_argument(
        "--images",
        metavar="DIR",
        help=(
            "your pictures: DIR/<class>/*.png|jpg, cut-outs with alpha or photos (drawn as "
            f"rectangles); optional DIR/{DISTRACTOR_DIR}/ for the silent objects"
        ),
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="parallel processes (default: CPU count)",
    )
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    report = synthesize(
        out_dir=args.out,
        classes=args.classes.split(",") if args.classes else None,
        clips_per_class=args.clips,
        seconds=args.seconds,
        fps=args.fps,
        size=args.size,
        sr=args.sr,
        duets=args.duets,
        trios=args.trios,
        same_class=args.same_class,
        seed=args.seed,
        soundfont=args.soundfont.split(",") if args.soundfont else None,
        images=args.images,
        workers=args.workers,
        progress=True,
        holdout=args.holdout,
    )
    clips, made, duets, trios = len(report.metas), report.made, report.duets, report.trios
    kept = f", {clips - made} already there" if made < clips else ""
    with_trios = f", {trios} trios" if trios else ""
    print(
        f"made {made} clips ({clips - duets - trios} solo, {duets} duets{with_trios} in all{kept}) "
        f"in {report.seconds:.1f} s -> {args.out}"
    )
    return 0


# --- data prepare ---------------------------------------------------------------------------------


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
        return check_split(parts)
    except (ValueError, PixelPlayerError) as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give train,val,test shares such as 0.8,0.1,0.1"
        ) from exc


def _add_prepare(subparsers: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
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


# --- data info ------------------------------------------------------------------------------------


def _add_info(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="classes, clip counts and hours of a dataset",
        description=(
            "Show classes with clip counts and hours per split, total hours and the rejected "
            "count, for a prepared folder, an index csv or a raw folder of videos."
        ),
    )
    p.add_argument("path", metavar="DIR", help="prepared folder, index csv or folder of videos")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    info = dataset_info(args.path)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


# --- data music -----------------------------------------------------------------------------------


def _add_music(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "music",
        help="download the MUSIC dataset from its JSON list of YouTube ids (yt-dlp)",
        description=(
            "Download the videos of a MUSIC JSON list (MUSIC_solo_videos.json, "
            "MUSIC21_solo_videos.json, MUSIC_duet_videos.json) into DIR/videos/<class>/<id>.mp4, "
            "ready for `pixelplayer data prepare DIR/videos OUT`. Run it again to resume: "
            "present files are skipped, videos gone from YouTube (DIR/unavailable.txt) are not "
            "asked for again, other failures are retried. DIR/status.csv records every video. "
            f"Needs yt-dlp: {INSTALL_HINT}. Without ffmpeg only files holding both picture and "
            "sound are used (on YouTube mostly 360p)."
        ),
    )
    p.add_argument("--json", required=True, metavar="FILE", help="the MUSIC JSON list of ids")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--classes",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        default=None,
        help="only these classes, comma-separated (default: all)",
    )
    p.add_argument("--limit", type=int, default=None, help="at most N videos per class")
    p.add_argument(
        "--max-height",
        type=int,
        default=DEFAULT_MAX_HEIGHT,
        help=f"largest frame height to download (default {DEFAULT_MAX_HEIGHT})",
    )
    p.add_argument(
        "--url-template",
        default=DEFAULT_URL_TEMPLATE,
        help=f"where a video is, {{id}} replaced by its id (default {DEFAULT_URL_TEMPLATE})",
    )
    p.add_argument(
        "--retry-unavailable",
        action="store_true",
        help="ask again for the videos recorded unavailable",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel downloads (default 1)")
    p.add_argument("--cookies", metavar="FILE", help="a Netscape cookies file for yt-dlp")
    p.set_defaults(func=_run_music)


def _run_music(args: argparse.Namespace) -> int:
    checks.number("--limit", args.limit, 0, 1_000_000, integer=True)
    checks.number("--max-height", args.max_height, 16, 8192, integer=True)
    report = download_music(
        args.json,
        args.out,
        classes=args.classes,
        limit=args.limit,
        url_template=args.url_template,
        max_height=args.max_height,
        retry_unavailable=args.retry_unavailable,
        workers=args.workers,
        cookies=args.cookies,
    )
    print(
        f"downloaded {report.downloaded}, skipped {report.skipped} already present, "
        f"unavailable {report.unavailable} ({report.new_unavailable} new), "
        f"failed {report.failed} ({report.seconds:.1f} s)"
    )
    # the same cause for many videos reads as one line: the ids in the messages are masked
    messages = Counter(r.message.replace(r.vid, "<id>") for r in report.failures)
    for message, n in messages.most_common(3):
        print(f"  failed {n}x: {message}")
    print(f"records: {report.status_path}, {report.unavailable_path}")
    if report.failed:
        print("run the same command again to retry the failed ones")
    print(f"next: pixelplayer data prepare {report.out_dir / 'videos'} OUT")
    return 0


# --- data cache -----------------------------------------------------------------------------------


def _add_cache(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cache",
        help="decode a prepared dataset once into memory-mapped arrays for fast training",
        description=(
            "Decode every clip of a prepared folder (its train/val/test indexes) or of one index "
            "file into DIR/cache/: frames resized as training resizes them (uint8) and audio at "
            "the training rate (int16). Training and evaluation then use it by themselves when "
            "its size and rate match the config's frame_size and sr. Run it again after "
            "preparing the data again: a cache older than its index is refused."
        ),
    )
    p.add_argument("path", metavar="INDEX_OR_FOLDER", help="prepared folder or index csv")
    p.add_argument("--size", type=int, default=224, help="frame_size of the config (default 224)")
    p.add_argument(
        "--sr", type=int, default=11025, help="sample rate of the config (default 11025)"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: CPU count)"
    )
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.set_defaults(func=_run_cache)


def _run_cache(args: argparse.Namespace) -> int:
    checks.number("--size", args.size, 32, 4096, integer=True)
    checks.number("--sr", args.sr, 1000, 192000, integer=True)
    checks.number("--workers", args.workers, 1, 256, integer=True)
    folder, built = build_cache(args.path, args.size, args.sr, args.workers, args.force)
    cache = open_cache(folder)
    gb = (cache.frames_bytes + 2 * cache.audio_samples) / 1e9
    state = "built" if built else "up to date:"
    print(f"{state} {folder} ({len(cache.clips)} clips, {gb:.2f} GB)")
    return 0
