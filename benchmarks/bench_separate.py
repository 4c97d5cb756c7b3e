"""Speed and localization of `pixelplayer separate`.

    python benchmarks/bench_separate.py [--work DIR] [--seconds 60] [--map-fps F|all]
    python benchmarks/bench_separate.py --run RUN --duets DIR [--limit N]

Speed (always): the paper-size PixelPlayer (pixelplayer-paper, 41.6M parameters,
random weights: speed does not depend on training) in a temporary run folder separates a
synthetic 320x240, 25 fps video with a tone, `--sources 2`. Timed after start-up (model load
and one warm-up call on a short clip). Target: under 0.15x real time (60 s in under 9 s) on two
CPU cores. Another process's load slows it down: the load average is printed beside it.

Localization (with --run and --duets; DIR made by `pixelplayer data synth OUT --duets N
--trios N`, duets and trios alike):
  grounding with a grounding head, first: its map of probabilities read with its own decision
            (> 0.5) on the same balanced samples (target >= 95 % right; distractors <= 5 % and
            background <= 3 % called sounding), then over all cells of every frame where an
            instrument sounds the field's CIoU@0.3 and AUC and NSA (`localization.
            grounding_scores`; targets CIoU >= 60, NSA >= 98.5), and the share of videos where
            separate finds as many sources as instruments sound (target >= 95 %).
  accuracy  per sampled frame of every duet, the cells of the feature grid whose centre lies on
            an instrument's picture (its opaque pixels, redrawn from the duet's meta file) while
            the instrument sounds, and as many drawn from the rest (background, the transparent
            corners of the boxes, the silent distractors). An instrument sounds in a frame when
            its stem holds at least 1 % of the duets' energy over the frame's span (1/fps s):
            the melodies rest, and in 23 % of the sounding frames of the default duets one
            instrument holds under 0.1 % (a resting instrument's cells are left out; a second
            line counts them as silent, a third as sounding, the rule of earlier figures). Each
            frame's energy map is divided by its total (loud and quiet moments on one scale;
            silent frames are skipped), and one threshold for all duets, the median of all
            sampled values (the classes are balanced, so the median is the unbiased split),
            says "sounding" (the energy map; with a grounding head, the second reading).
            Target: >= 90 % right. A last line counts every cell of an
            instrument's box as the instrument.
  SDR gain  each instrument's sound = the cells in its (median over frames) box, heard as the
            model hears a clip (`separate_video(boxes=...)`: the cells' features max-pooled),
            and, second line, the cell at the box's centre (`points=...`); SDR of that against
            its stem minus the SDR of the mixture against the stem (`metrics.score_batch`).
            Target: >= 4 dB (with a grounding head, >= 10 dB).
The ground truth and the accuracy are pixelplayer.localization's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from pixelplayer.audio import load_audio
from pixelplayer.config import load_config
from pixelplayer.localization import (
    BOXES,
    RULES,
    accuracy,
    duet_samples,
    frame_ious,
    grounding_scores,
    sounding_sources,
)
from pixelplayer.metrics import score_batch
from pixelplayer.models.registry import save_checkpoint
from pixelplayer.run import Run
from pixelplayer.separation import MAP_FPS, Separator
from pixelplayer.separation.regions import SOUNDING_FRAMES
from pixelplayer.training import build_model
from pixelplayer.video import read_frames, write_video

PAPER = "pixelplayer-paper"


# --- speed ------------------------------------------------------------------------------------


def paper_run(folder: Path) -> Path:
    """A run folder holding the paper-size model with random weights."""
    cfg = load_config(PAPER)
    model, kwargs = build_model(cfg)
    run = Run(folder)
    run.save_config(cfg)
    save_checkpoint(run.checkpoint(), model, cfg.model, kwargs)
    return folder


def test_video(path: Path, seconds: float, size=(320, 240), fps: float = 25, sr: int = 44100):
    """A square that swells with a 330 Hz tone's loudness on a still background, plus the tone."""
    if path.is_file():
        return path
    w, h = size
    n = int(round(seconds * fps))
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t) ** 2
    tone = 0.3 * env * (np.sin(2 * np.pi * 330 * t) + 0.5 * np.sin(2 * np.pi * 660 * t))
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([xx * 200 // w, yy * 200 // h, np.full_like(xx, 90)], -1)
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = background
        r = int(30 + 20 * env[min(len(env) - 1, int(i / fps * sr))])
        cx, cy = w // 3, h // 2
        frames[i, cy - r : cy + r, cx - r : cx + r] = (240, 200, 40)
    write_video(path, frames, fps, tone.astype(np.float32), sr)
    return path


def speed(work: Path, seconds: float, map_fps: float | None) -> None:
    run = paper_run(work / "paper-run")
    video = test_video(work / f"tone-{seconds:g}s.mp4", seconds)
    warm = test_video(work / "tone-2s.mp4", 2.0)
    start = time.perf_counter()
    sep = Separator.from_run(run, device="cpu")
    sep.separate_video(warm, sources=2, progress=False, map_fps=map_fps)
    print(f"start-up (load + warm-up call): {time.perf_counter() - start:.1f} s")
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    r = sep.separate_video(video, sources=2, progress=False, map_fps=map_fps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"separate: {r.duration:.1f} s of video in {wall:.1f} s of work "
        f"({wall / r.duration:.3f} x real time; {cpu:.1f} s CPU; load before {load:.1f}; "
        f"map_fps {map_fps}) -> target < 0.15 x: {'met' if wall < 0.15 * r.duration else 'NOT met'}"
    )
    wall = time.perf_counter()
    r = sep.separate_video(video, sources=2, progress=False, map_fps=map_fps, out=work / "tone-out")
    wall = time.perf_counter() - wall
    print(
        f"separate + files: {r.duration:.1f} s of video in {wall:.1f} s "
        f"({wall / r.duration:.3f} x real time)"
    )


# --- localization -----------------------------------------------------------------------------


def nothing_to_see(sep: Separator, duet: Path, work: Path) -> None:
    """A duet's sound over all-black and all-white frames, and its frames in silence: what the
    run makes of them (the map should stay dark, no source found)."""
    r = sep.separate_video(duet, progress=False)
    frames = read_frames(duet, fps=r.fps)  # (T, H, W, 3)
    silence = np.zeros_like(r.mixture)
    cases = {
        "black frames": (np.zeros_like(frames), r.mixture),
        "white frames": (np.full_like(frames, 255), r.mixture),
        "silent soundtrack": (frames, silence),
    }
    for name, (pictures, sound) in cases.items():
        path = work / f"{name.replace(' ', '_')}.mp4"
        write_video(path, pictures, r.fps, sound, r.sr)
        got = sep.separate_video(path, progress=False)
        lit = "" if got.sounding is None else f"; {100 * np.mean(got.sounding > 0.5):.1f} %"
        print(f"  {name}: {len(got.source_waves)} sources found{lit} of the cells called sounding")


def localization(run: Path, duets: Path, limit: int | None, map_fps: float | None) -> None:
    metas = sorted((duets / "meta").glob("*.json"))
    ensembles = ("duet", "trio")
    metas = [m for m in metas if json.loads(m.read_text()).get("kind") in ensembles][:limit]
    if not metas:
        raise SystemExit(
            f"{duets}: no duets or trios (make them with `pixelplayer data synth OUT --duets N "
            "--trios N`)"
        )
    sep = Separator.from_run(run)
    rng = np.random.default_rng(0)
    rules = {  # what is sampled: (map, rule)
        **{rule: ("energy", rule) for rule in RULES},
        BOXES: ("energy", BOXES),
        "motion": ("motion", "sounding instruments"),
    }
    samples = {k: ([], [], []) for k in rules}
    own = ([], [], [])  # the grounding head's map, read with its own decision
    ious, kinds, counted = [], {}, []
    scores = {"box": [], "point": []}
    for path in metas:
        meta = json.loads(path.read_text())
        boxes = [np.median(np.asarray(s["boxes"], float), axis=0) for s in meta["sources"]]
        boxes = [tuple(int(round(v)) for v in b) for b in boxes]
        points = [((b[0] + b[2]) // 2, (b[1] + b[3]) // 2) for b in boxes]
        video = duets / meta["video"]
        r = sep.separate_video(video, points=points, boxes=boxes, progress=False, map_fps=map_fps)
        stems = [
            load_audio(duets / s["stem"], sr=r.sr, allow_silent=True)[0] for s in meta["sources"]
        ]
        n = min(len(r.mixture), *(len(s) for s in stems))
        ref = np.stack([s[:n] for s in stems])[None]  # (1, N, L)
        sounding = sounding_sources(ref[0], r.sr, r.frame_times, r.fps)  # (T, N)
        for name, (kind, rule) in rules.items():
            maps = r.energy if kind == "energy" else r.motion
            if maps is not None:
                size = (r.width, r.height)
                got = duet_samples(maps, r.frame_times, size, meta, sounding, rng, rule)
                for into, more in zip(samples[name], got, strict=True):
                    into.extend(more)
        if r.sounding is not None:
            size = (r.width, r.height)
            got = duet_samples(
                r.sounding, r.frame_times, size, meta, sounding, rng, "sounding instruments", False
            )
            for into, more in zip(own, got, strict=True):
                into.extend(more)
            more_ious, more_kinds = frame_ious(r.sounding, r.frame_times, size, meta, sounding)
            ious += more_ious
            for name, (called, count) in more_kinds.items():
                kinds.setdefault(name, [0, 0])
                kinds[name][0] += called
                kinds[name][1] += count
            # the instruments that sound in the video, as separate counts a cell sounding
            playing = int((sounding.mean(0) >= SOUNDING_FRAMES).sum())
            counted.append(len(r.source_waves) == playing)
        for name, est in (("box", r.box_waves), ("point", r.point_waves)):
            scores[name].append(score_batch(ref, est[None, :, :n], r.mixture[None, :n]))
        gains = scores["box"][-1]["nsdr"][0]
        print(
            f"  {meta['id']} ({' + '.join(meta['classes'])}): SDR gain by box "
            f"{', '.join(f'{x:.1f}' for x in gains)} dB; {len(r.source_waves)} sources found; "
            f"one instrument resting in {100 * np.mean(~sounding.all(1)):.0f} % of the frames"
        )
    if own[0]:
        with tempfile.TemporaryDirectory() as tmp:
            print("nothing to see or hear (the first video's sound or frames replaced):")
            nothing_to_see(sep, duets / json.loads(metas[0].read_text())["video"], Path(tmp))
        acc, count, per_kind = accuracy(*own, threshold=0.5)
        g = grounding_scores(ious, kinds)
        print(
            f"grounding: {100 * acc:.1f} % of {count} sampled cells right in {len(metas)} "
            f"videos (the model's own decision, probability > 0.5) -> target >= 95 %: "
            f"{'met' if acc >= 0.95 else 'NOT met'}"
        )
        print(
            "  called sounding, by what the cell shows: "
            + ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(per_kind.items()))
            + " -> targets distractor <= 5 %, background <= 3 %"
        )
        print(
            f"  CIoU@0.3 {g['ciou']:.1f}, AUC {g['auc']:.1f}, NSA {g['nsa']:.1f} over "
            f"{len(ious)} frames (all cells) -> targets CIoU >= 60, NSA >= 98.5; per kind: "
            + ", ".join(f"{k[9:]} {v:.1f} %" for k, v in sorted(g.items()) if k[:9] == "sounding ")
        )
        print(
            f"  sources found = instruments sounding on {100 * np.mean(counted):.1f} % of "
            f"{len(counted)} videos -> target >= 95 %"
        )
    acc, count, per_kind = accuracy(*samples["sounding instruments"])
    print(
        f"localization: {100 * acc:.1f} % of {count} sampled cells right in {len(metas)} "
        f"videos (cells on the pictures of the instruments sounding in the frame vs on "
        f"background, box corners and distractors, one threshold = median energy share) -> "
        f"target >= 90 %: {'met' if acc >= 0.9 else 'NOT met'}"
    )
    print(
        "  called sounding, by what the cell shows: "
        + ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(per_kind.items()))
    )
    for name, what in (
        ("resting as silent", "a resting instrument's cells counted as silent"),
        ("resting as sounding", "every instrument's cells counted as sounding, resting or not"),
        (BOXES, "every cell in an instrument's box counted as sounding, resting or not"),
        ("motion", "the motion map (the run's audio-motion embedding) in place of the energy"),
    ):
        if samples[name][0]:
            acc, count, _ = accuracy(*samples[name])
            print(f"the same with {what}: {100 * acc:.1f} % of {count} sampled cells right")
    for name, how in (
        ("box", "its box (its cells, as the model pools a clip)"),
        ("point", "its box centre"),
    ):
        sdr, mix, gain = (
            np.concatenate([np.ravel(x[k]) for x in scores[name]])
            for k in ("sdr", "sdr_mix", "nsdr")
        )
        ok = np.isfinite(gain)
        if not ok.any():  # every estimate silent: score_batch leaves them unscored
            print(f"separation by {how}: none of {len(gain)} estimates could be scored (silent)")
            continue
        mean = float(np.mean(gain[ok]))
        print(
            f"separation by {how}: SDR {np.mean(sdr[ok]):.2f} dB, mixture {np.mean(mix[ok]):.2f} "
            f"dB, gain {mean:.2f} dB over {ok.sum()} instruments -> target >= 4 dB: "
            f"{'met' if mean >= 4 else 'NOT met'}"
        )


def _map_fps(text: str) -> float | None:
    return None if text == "all" else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="keeps the test videos and the run (default: a temp dir)")
    parser.add_argument("--seconds", type=float, default=60.0, help="test video length (60)")
    parser.add_argument(
        "--map-fps", type=_map_fps, default=MAP_FPS, help="as `separate --map-fps` (1)"
    )
    parser.add_argument("--run", type=Path, help="trained run for the localization figures")
    parser.add_argument("--duets", type=Path, help="folder made by `pixelplayer data synth`")
    parser.add_argument("--limit", type=int, help="use the first N duets only")
    parser.add_argument("--no-speed", action="store_true", help="localization figures only")
    args = parser.parse_args()
    if not args.no_speed:
        with tempfile.TemporaryDirectory() as tmp:
            speed(Path(args.work or tmp), args.seconds, args.map_fps)
    if args.run and args.duets:
        localization(args.run, args.duets, args.limit, args.map_fps)


if __name__ == "__main__":
    main()
