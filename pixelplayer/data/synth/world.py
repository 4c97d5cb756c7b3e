"""The dataset of the generated world: the clips a run makes, made in parallel, kept on resume.

Clip seeds come from (seed, class, index), so a clip is the same whatever the number of
workers and the order they run in; a second run skips clips whose files are already there.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelplayer import checks
from pixelplayer.atomic import write_text_atomic
from pixelplayer.audio import save_audio
from pixelplayer.data import pictures
from pixelplayer.data.synth.clip import DISTRACTOR_DIR, DISTRACTORS, render_clip
from pixelplayer.data.synth.instruments import CLASSES
from pixelplayer.data.synth.soundfont import check_soundfonts, load_soundfont, run_soundfonts
from pixelplayer.errors import PixelPlayerError
from pixelplayer.parallel import imap_unordered, worker_count
from pixelplayer.video import write_video

HOLDOUT_KINDS = ("pictures", "sounds", "both")
ENSEMBLES = {2: "duets", 3: "trios"}  # instruments in one video -> its folder (and id prefix)


@dataclass(frozen=True)
class _Job:
    id: str
    classes: tuple[str, ...]
    seed: int  # the clip seed
    out: str
    settings: dict[str, Any]  # seconds, fps, size, sr, soundfont, images, dataset_seed

    @property
    def video(self) -> str:
        folder = (
            f"videos/{self.classes[0]}" if len(self.classes) == 1 else ENSEMBLES[len(self.classes)]
        )
        return f"{folder}/{self.id}.mp4"

    @property
    def stems(self) -> list[str]:
        if len(self.classes) == 1:
            return [f"stems/{self.id}.wav"]
        return [f"stems/{self.id}_{i}.wav" for i in range(len(self.classes))]

    @property
    def meta(self) -> str:
        return f"meta/{self.id}.json"


def _clip_seed(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def _jobs(
    out: Path,
    classes: list[str],
    clips_per_class: int,
    duets: int,
    same_class: bool,
    seed: int,
    settings: dict[str, Any],
    trios: int = 0,
) -> list[_Job]:
    # a held-out set draws other seeds: its clips never replay a training clip's notes
    held = (1 + HOLDOUT_KINDS.index(settings["holdout"]),) if settings["holdout"] else ()
    jobs = []
    for index in range(clips_per_class):  # interleaved, so a partial run covers every class
        for name in classes:
            s = _clip_seed(seed, 0, zlib.crc32(name.encode()), index, *held)
            jobs.append(_Job(f"{name}_{index:04d}", (name,), s, str(out), settings))
    for players, count in ((2, duets), (3, trios)):
        for index in range(count):
            # duets keep the streams they always had; trios draw their own (key 3)
            key = 1 if players == 2 else players
            rng = np.random.default_rng([seed, key, index])
            if same_class:
                picked = (classes[int(rng.integers(len(classes)))],) * players
            else:
                picked = tuple(classes[int(i)] for i in rng.choice(len(classes), players, False))
            job_seed = _clip_seed(seed, key, index, *held)
            name = f"{ENSEMBLES[players][:-1]}_{index:04d}"
            jobs.append(_Job(name, picked, job_seed, str(out), settings))
    return jobs


def _done(job: _Job) -> dict[str, Any] | None:
    """The meta of a clip an earlier run finished with the same settings, else None."""
    out = Path(job.out)
    try:
        meta = json.loads((out / job.meta).read_text())
    except (OSError, ValueError):
        return None
    same = (
        meta.get("seed") == job.seed
        and meta.get("classes") == list(job.classes)
        and all(meta.get(k) == v for k, v in job.settings.items())
    )
    files = [job.video, *job.stems]
    return meta if same and all((out / f).is_file() for f in files) else None


def _make_clip(job: _Job) -> dict[str, Any]:
    """Render and write one clip; module-level so a spawned worker can run it."""
    s = job.settings
    try:
        clip = render_clip(
            job.classes, job.seed, s["seconds"], s["fps"], s["size"], s["sr"],
            s["soundfont"], s["images"], holdout_pictures=s["holdout"] in ("pictures", "both"),
        )  # fmt: skip
        out = Path(job.out)
        for rel, stem in zip(job.stems, clip.stems, strict=True):
            save_audio(out / rel, stem, s["sr"])
        write_video(out / job.video, clip.frames, s["fps"], clip.audio, s["sr"])
    except PixelPlayerError as exc:
        raise PixelPlayerError(str(exc)) from None  # a plain one pickles back from a worker
    meta: dict[str, Any] = {"id": job.id}
    if len(job.classes) == 1:
        meta["class"] = job.classes[0]
        meta["program"] = clip.info["programs"][0]
    meta.update(clip.info)
    meta.update(video=job.video, stems=list(job.stems), **s)
    for source, stem in zip(meta["sources"], job.stems, strict=True):
        source["stem"] = stem
    _write_json(out / job.meta, meta)  # last: a meta file means the clip is complete
    return meta


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """One top-level key per line, values compact: per-frame boxes stay readable in size."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in obj.items()]
    write_text_atomic(path, "{\n" + ",\n".join(lines) + "\n}\n")


def _init_worker(soundfonts: list[str]) -> None:
    try:
        for font in soundfonts:
            load_soundfont(font)  # load the SoundFonts once, before the first clip
    except PixelPlayerError:
        pass  # the first clip raises it again; a failing initializer would respawn forever


def _check(
    classes: Sequence[str] | None,
    seconds: float,
    fps: float,
    size: int,
    sr: int,
    clips_per_class: int,
    duets: int,
    same_class: bool,
    seed: int,
    soundfonts: list[Path],
    images: Path | None,
    holdout: str | None,
    trios: int = 0,
) -> list[str]:
    """Validate the settings before any work; returns the class list."""
    if holdout is not None and holdout not in HOLDOUT_KINDS:
        raise PixelPlayerError(f"--holdout {holdout}: give one of {', '.join(HOLDOUT_KINDS)}")
    held_pictures = holdout in ("pictures", "both")
    if held_pictures and images is not None:
        raise PixelPlayerError("--holdout pictures draws the held-out pictures: drop --images")
    if classes is None:
        names = list(CLASSES)
        if held_pictures:  # only the classes the held-out pictures show
            names = [c for c in names if pictures.holdout_pictures(c)]
    else:
        names = list(dict.fromkeys(c.strip() for c in classes if c.strip()))
        unknown = [c for c in names if c not in CLASSES]
        if unknown or not names:
            raise PixelPlayerError(
                f"unknown class {', '.join(unknown) or '(none given)'}; "
                f"valid classes: {', '.join(CLASSES)}"
            )
        missing = [c for c in names if held_pictures and not pictures.holdout_pictures(c)]
        if missing:
            raise PixelPlayerError(
                f"no held-out picture of {', '.join(missing)}; the held-out pictures show "
                + ", ".join(c for c in CLASSES if c in pictures.HOLDOUT_PICTURES)
            )
    check_soundfonts(soundfonts)
    checks.number("--size", size, 32, 4096, integer=True)
    if size % 2:
        raise PixelPlayerError(f"--size {size}: give an even number of pixels, at least 32")
    checks.number("--sr", sr, 8000, 96000, integer=True)
    checks.number("--fps", fps, 0, 240, above=True)
    checks.number("--seconds", seconds, 0, 3600, above=True)  # an hour: a clip, not a film
    if seconds * fps < 1:
        raise PixelPlayerError("--seconds and --fps must give at least one frame")
    checks.number("--clips", clips_per_class, 0, 100_000, integer=True)
    checks.number("--duets", duets, 0, 100_000, integer=True)
    checks.number("--trios", trios, 0, 100_000, integer=True)
    checks.number("--seed", seed, 0, 2**32 - 1, integer=True)
    if duets and len(names) < 2 and not same_class:
        raise PixelPlayerError("duets of different classes need two classes; or use --same-class")
    if trios and len(names) < 3 and not same_class:
        raise PixelPlayerError("trios of different classes need three classes; or use --same-class")
    if images is not None:
        if not images.is_dir():
            raise PixelPlayerError(f"{images}: no such folder of pictures")
        empty = [c for c in names if not pictures.image_files(images / c)]
        if empty:
            raise PixelPlayerError(
                f"{images}: no picture (.png/.jpg) for class {', '.join(empty)}; "
                f"put them in {images}/<class>/"
            )
        for c in names:
            for path in pictures.image_files(images / c):
                pictures.picture(str(path))  # an unreadable picture fails now, not in a worker
    needed = [] if images is not None else list(names)
    if images is None or not pictures.image_files(images / DISTRACTOR_DIR):
        needed += list(DISTRACTORS)
    for name in needed:  # a class or object with no installed picture fails before any work
        held = held_pictures and name in CLASSES
        if not (pictures.holdout_pictures(name) if held else pictures.training_pictures(name)):
            raise PixelPlayerError(f"no picture of {name} is installed (run scripts/setup.sh)")
    return names


@dataclass
class SynthReport:
    """What a synth run did. `metas` are those of all its clips (solos, duets, then trios), the
    ones an earlier run made included."""

    out_dir: Path
    metas: list[dict[str, Any]]
    made: int  # rendered by this run; the others were found done
    seconds: float = 0.0  # wall time

    @property
    def duets(self) -> int:
        return sum(m["kind"] == "duet" for m in self.metas)

    @property
    def trios(self) -> int:
        return sum(m["kind"] == "trio" for m in self.metas)


def synthesize(
    out_dir: str | Path,
    classes: Sequence[str] | None = None,
    clips_per_class: int = 40,
    seconds: float = 10.0,
    fps: float = 8,
    size: int = 224,
    sr: int = 11025,
    duets: int = 0,
    same_class: bool = False,
    seed: int = 0,
    soundfont: str | Path | Sequence[str] | None = None,
    images: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    holdout: str | None = None,
    trios: int = 0,
) -> SynthReport:
    """Make the dataset in `out_dir`: `clips_per_class` solo clips of each of `classes` (None:
    all), `duets` duets and `trios` trios, of different classes or, with `same_class`, of one.

    `soundfont` names the fonts to play with (None: the training ones); `images` a folder of
    the user's pictures, IMAGES/<class>/ (and IMAGES/_distractors/ for the silent objects).
    `holdout` makes test clips of what training never uses: "pictures" (the held-out
    pictures), "sounds" (the held-out SoundFont) or "both". Clips already made by an earlier
    run with the same settings are kept, not made again.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out = Path(out_dir)
    soundfonts = run_soundfonts(soundfont, held_out=holdout in ("sounds", "both"))
    images = Path(images).expanduser() if images is not None else None
    seconds, fps = float(seconds), float(fps)
    fps = int(fps) if fps.is_integer() else fps
    size, sr, seed = int(size), int(sr), int(seed)
    names = _check(
        classes, seconds, fps, size, sr, clips_per_class, duets, same_class, seed, soundfonts,
        images, holdout, trios,
    )  # fmt: skip
    settings = {
        "seconds": seconds,
        "fps": fps,
        "size": size,
        "sr": sr,
        "soundfont": [str(f.absolute()) for f in soundfonts],
        "images": str(images.resolve()) if images is not None else None,
        "dataset_seed": seed,
        "holdout": holdout,
    }
    jobs = _jobs(out, names, clips_per_class, duets, same_class, seed, settings, trios)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(
        out / "synth.json",
        {
            **settings,
            "clips_per_class": clips_per_class,
            "duets": duets,
            "trios": trios,
            "same_class": same_class,
            "classes": {
                c: {
                    "program": CLASSES[c].program,
                    "bank": CLASSES[c].bank,
                    "pictures": (
                        pictures.holdout_pictures(c)
                        if holdout in ("pictures", "both")
                        else pictures.training_pictures(c)
                    ),
                    "range": [CLASSES[c].low, CLASSES[c].high],
                }
                for c in names
            },
        },
    )
    metas: dict[str, dict[str, Any]] = {}
    pending = []
    for job in jobs:
        meta = _done(job)
        if meta is None:
            pending.append(job)
        else:
            metas[job.id] = meta
    n_workers = worker_count(workers, len(pending))
    init = (settings["soundfont"],)
    with tqdm(total=len(jobs), initial=len(metas), unit="clip", disable=not progress) as bar:
        for meta in imap_unordered(_make_clip, pending, n_workers, _init_worker, init):
            metas[meta["id"]] = meta
            bar.update()
    return SynthReport(
        out, [metas[job.id] for job in jobs], len(pending), time.perf_counter() - start
    )
