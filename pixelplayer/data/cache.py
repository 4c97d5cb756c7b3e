"""A decoded copy of a dataset, memory-mapped: training then decodes no JPEG, resamples nothing.

`pixelplayer data cache DIR` reads every clip of DIR's train/val/test indexes (or of one index
file) once and writes DIR/cache/<name>-s<size>-sr<sr>/ (<name> is `splits` for a prepared folder,
the index's stem for an index file)::

    frames.npy     uint8, flat: clip c's frames are frames[off : off + n*h*w*3].reshape(n, h, w, 3)
    audio.npy      int16, flat: clip c's audio is audio[off : off + num_samples] * audio_scale
    manifest.json  size, sr, the stored side, the mtime and size of each source index, and per
                   clip its video_id, source paths, num_frames, h, w, offsets, num_samples, scale

Frames are stored as the training path resizes them before its random crop: shorter side
round(1.14 * size), aspect kept, not cropped (PIL bilinear, the same call as decoding). A training
crop and flip is then an array slice, identical to decoding; an evaluation frame (shorter side
`size`, centre crop) is one uint8 resize of the stored frame, a level or two from decoding
because it resizes twice. Keeping the full width (not a centre square) keeps the random crop's
full range on frames that are not square.

Audio is int16 at the training rate: prepared audio is 16-bit PCM, so a mono clip already at `sr`
is stored bit for bit; any other (stereo, float, another rate: resampled once over the whole clip
with soxr) is quantised in steps of 1/32768 (3e-5), half the size of float32. float16 would err
by up to 2.4e-4 near full scale.

A build writes into a temporary folder renamed at the end, so a killed build never leaves a
folder that looks complete; the next build removes what it left. A cache whose source index has
changed since (mtime or size) is refused with a message to rebuild.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image
from tqdm import tqdm

from pixelplayer.audio import resample
from pixelplayer.data.index import SPLITS, Clip, frame_path, read_index, resolve_index
from pixelplayer.errors import MediaError, PixelPlayerError
from pixelplayer.parallel import imap_unordered, worker_count

FORMAT = 1
TRAIN_SCALE = 1.14  # training resizes the shorter side to this times the crop size
CACHE_FOLDER = "cache"
MANIFEST = "manifest.json"
FRAMES_FILE = "frames.npy"
AUDIO_FILE = "audio.npy"
SEARCH_LEVELS = 2  # how far above the clips' common folder a cache is looked for


def stored_side(size: int) -> int:
    """Shorter side of the frames the training path crops `size` px squares from."""
    return int(round(size * TRAIN_SCALE))


def resized_shape(width: int, height: int, side: int, min_size: int) -> tuple[int, int]:
    """(width, height) after resizing the shorter side to `side`, neither below `min_size`."""
    r = side / min(width, height)
    return max(min_size, round(width * r)), max(min_size, round(height * r))


def resize_short_side(img: Image.Image, side: int, min_size: int) -> Image.Image:
    """Bilinear resize of the shorter side to `side` (the one resize decoding and caching share)."""
    return img.resize(resized_shape(*img.size, side, min_size), Image.BILINEAR)


@dataclass
class CachedClip:
    """Where one clip lies in the cache's arrays."""

    video_id: str
    audio_path: str  # relative to the dataset root (the cache folder's grandparent)
    frames_dir: str
    num_frames: int
    height: int
    width: int
    frame_offset: int  # bytes into frames.npy
    audio_offset: int  # samples into audio.npy
    num_samples: int
    audio_scale: float  # float value of one int16 step


def cache_folder(root: Path, name: str, size: int, sr: int) -> Path:
    return Path(root) / CACHE_FOLDER / f"{name}-s{size}-sr{sr}"


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def _fingerprint(index: Path, root: Path) -> dict:
    st = index.stat()
    return {"path": _rel(index, root), "mtime_ns": st.st_mtime_ns, "bytes": st.st_size}


# --- reading ------------------------------------------------------------------------------


class ClipCache:
    """An opened cache: per clip views into its memory-mapped arrays.

    The arrays are opened lazily in each process and never pickled, so a dataset holding a
    ClipCache goes to DataLoader workers (fork or spawn) as a few kilobytes of offsets.
    """

    def __init__(self, folder: Path, manifest: dict):
        self.folder = Path(folder)
        self.root = self.folder.parent.parent
        self.size, self.sr, self.side = manifest["size"], manifest["sr"], manifest["side"]
        self.source = manifest["source"]
        self.sources = manifest["sources"]
        self.frames_bytes, self.audio_samples = manifest["frames_bytes"], manifest["audio_samples"]
        self.clips = {c["video_id"]: CachedClip(**c) for c in manifest["clips"]}
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._pid = -1

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None, "_pid": -1}

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None or self._pid != os.getpid():
            try:
                frames = np.load(self.folder / FRAMES_FILE, mmap_mode="r")
                audio = np.load(self.folder / AUDIO_FILE, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise self._damaged(str(exc)) from exc
            if frames.shape != (self.frames_bytes,) or audio.shape != (self.audio_samples,):
                raise self._damaged("its arrays do not have the sizes its manifest gives")
            # plain ndarray views of the maps: slicing a np.memmap costs more per call
            self._arrays, self._pid = (frames.view(np.ndarray), audio.view(np.ndarray)), os.getpid()
        return self._arrays

    def _damaged(self, why: str) -> PixelPlayerError:
        return PixelPlayerError(
            f"{self.folder}: damaged cache ({why}); delete it, or build it again with "
            f"`pixelplayer data cache {self.root / self.source}`"
        )

    def frames(self, video_id: str) -> np.ndarray:
        """(num_frames, h, w, 3) uint8, a view: frame i resized as training resizes it."""
        c = self.clips[video_id]
        n = c.num_frames * c.height * c.width * 3
        flat = self._open()[0][c.frame_offset : c.frame_offset + n]
        return flat.reshape(c.num_frames, c.height, c.width, 3)

    def audio(self, video_id: str) -> tuple[np.ndarray, float]:
        """((num_samples,) int16 view at `sr`, the float value of one step)."""
        c = self.clips[video_id]
        return self._open()[1][c.audio_offset : c.audio_offset + c.num_samples], c.audio_scale

    def stale_reason(self, clips: list[Clip] | None = None) -> str:
        """'' when the source indexes (and these clips) are as they were built, else why not."""
        for src in self.sources:
            index = self.root / src["path"]
            try:
                st = index.stat()
            except OSError:
                return f"{index} is gone"
            if (st.st_mtime_ns, st.st_size) != (src["mtime_ns"], src["bytes"]):
                return f"{index} changed since it was built"
        for clip in clips or []:
            c = self.clips[clip.video_id]
            now = (_rel(clip.audio_path, self.root), _rel(clip.frames_dir, self.root))
            if now != (c.audio_path, c.frames_dir) or clip.num_frames != c.num_frames:
                return f"clip {clip.video_id} has other files or frames than when it was built"
        return ""

    def check_fresh(self, clips: list[Clip] | None = None) -> None:
        why = self.stale_reason(clips)
        if why:
            raise PixelPlayerError(
                f"{self.folder}: stale cache ({why}); rebuild it with `pixelplayer data cache "
                f"{self.root / self.source}`, or delete it to decode instead"
            )

    def covers(self, clips: list[Clip]) -> bool:
        return all(c.video_id in self.clips for c in clips)


def open_cache(folder: str | Path) -> ClipCache:
    """Open a complete cache folder (its arrays are mapped on first use)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise PixelPlayerError(
            f"{folder}: no cache here (no {MANIFEST}); build one with `pixelplayer data cache`"
        )
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')}, expected {FORMAT}")
        return ClipCache(folder, manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PixelPlayerError(
            f"{folder}: unreadable cache manifest ({exc}); delete the folder and build it again"
        ) from exc


def find_cache(clips: list[Clip], size: int, sr: int) -> ClipCache | None:
    """The cache for `size` and `sr` holding every one of `clips`, or None when there is none.

    Looked for in `cache/` at the clips' common folder and up to two folders above it (for a
    prepared folder that is the folder itself). A cache that holds them but whose index has
    changed since it was built is an error, not a silent fallback to decoding.
    """
    if not clips:
        return None
    try:
        common = Path(
            os.path.commonpath([str(p) for c in clips for p in (c.audio_path, c.frames_dir)])
        )
    except ValueError:  # paths on different drives
        return None
    for root in [common, *common.parents][: SEARCH_LEVELS + 1]:
        for folder in sorted((root / CACHE_FOLDER).glob(f"*-s{size}-sr{sr}")):
            if not (folder / MANIFEST).is_file():  # temporary folders of a build have no name match
                continue
            cache = open_cache(folder)
            if cache.size == size and cache.sr == sr and cache.covers(clips):
                cache.check_fresh(clips)
                return cache
    return None


# --- building -----------------------------------------------------------------------------


def cache_sources(source: str | Path) -> tuple[Path, str, list[Path]]:
    """(dataset root, cache name, index files) for a prepared folder or one index file."""
    p = Path(source)
    if p.is_dir():
        indexes = [p / f"{s}.csv" for s in SPLITS if (p / f"{s}.csv").is_file()]
        if not indexes:
            resolve_index(p, "train")  # raises its message: what the folder holds, what to run
        return p, "splits", indexes
    index = resolve_index(p, "train")
    return index.parent, index.stem, [index]


def _union(indexes: list[Path]) -> list[Clip]:
    """Clips of all indexes by video_id; the same id naming other files is an error."""
    by_id: dict[str, Clip] = {}
    for index in indexes:
        for clip in read_index(index):
            seen = by_id.setdefault(clip.video_id, clip)
            if (seen.audio_path, seen.frames_dir) != (clip.audio_path, clip.frames_dir):
                raise PixelPlayerError(
                    f"{index}: video_id {clip.video_id} names other files than in another "
                    "index; give each index to `pixelplayer data cache` on its own"
                )
    if not by_id:
        raise PixelPlayerError(f"{', '.join(map(str, indexes))}: no clips to cache")
    return list(by_id.values())


def _plan(clips: list[Clip], root: Path, size: int, sr: int) -> list[CachedClip]:
    """Offsets of every clip, from the first frame's size and the audio header."""
    side, plan, frame_off, audio_off = stored_side(size), [], 0, 0
    for clip in clips:
        first = frame_path(clip.frames_dir, 0)
        try:
            with Image.open(first) as im:
                width, height = resized_shape(*im.size, side, size)
        except Exception as exc:  # PIL raises many kinds
            raise MediaError(first, "unreadable", str(exc)) from exc
        try:
            info = sf.info(str(clip.audio_path))
        except Exception as exc:
            raise MediaError(clip.audio_path, "unreadable", str(exc)) from exc
        # soxr's output length is about frames * sr / rate: one spare sample covers its rounding
        room = (
            info.frames
            if info.samplerate == sr
            else math.ceil(info.frames * sr / info.samplerate) + 1
        )
        plan.append(
            CachedClip(
                clip.video_id,
                _rel(clip.audio_path, root),
                _rel(clip.frames_dir, root),
                clip.num_frames,
                height,
                width,
                frame_off,
                audio_off,
                room,
                0.0,
            )
        )
        frame_off += clip.num_frames * height * width * 3
        audio_off += room
    return plan


_WRITERS: dict[str, np.ndarray] = {}  # per process: the arrays of the cache being built


def _writer(path: Path) -> np.ndarray:
    key = str(path)
    if key not in _WRITERS:
        _WRITERS[key] = np.lib.format.open_memmap(path, mode="r+")
    return _WRITERS[key]


def _quantise(wav: np.ndarray) -> tuple[np.ndarray, float]:
    """(L,) float -> (int16, step): step 1/32768 (exact for 16-bit PCM) unless the peak is >= 1."""
    peak = float(np.abs(wav).max()) if len(wav) else 0.0
    step = 1 / 32768 if peak <= 32767 / 32768 else peak / 32767
    return np.round(wav / step).clip(-32768, 32767).astype(np.int16), step


def _cache_clip(task: tuple[str, int, CachedClip, int, int]) -> tuple[int, int, float, str]:
    """Pool worker: decode one clip into the arrays -> (its number, samples, step, error or '').

    Errors come back as text: a MediaError does not survive the pickling between processes.
    """
    try:
        return (*_decode_clip(*task), "")
    except PixelPlayerError as exc:
        return task[1], 0, 0.0, str(exc)


def _decode_clip(
    folder: str, number: int, c: CachedClip, size: int, sr: int
) -> tuple[int, int, float]:
    root = Path(folder).parent.parent
    frames_dir, audio_path = root / c.frames_dir, root / c.audio_path
    frames = _writer(Path(folder) / FRAMES_FILE)
    n = c.num_frames * c.height * c.width * 3
    view = frames[c.frame_offset : c.frame_offset + n].reshape(c.num_frames, c.height, c.width, 3)
    for i in range(c.num_frames):
        path = frame_path(frames_dir, i)
        try:
            with Image.open(path) as im:
                img = resize_short_side(im.convert("RGB"), stored_side(size), size)
        except Exception as exc:
            raise MediaError(path, "unreadable", str(exc)) from exc
        if img.size != (c.width, c.height):
            raise MediaError(path, "frame size differs from the clip's first frame")
        view[i] = np.asarray(img)
    try:
        wav, rate = sf.read(str(audio_path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise MediaError(audio_path, "unreadable", str(exc)) from exc
    wav = wav.mean(axis=1)
    if rate != sr:
        wav = resample(wav, rate, sr)  # the whole clip at once: no edges inside it
    if not np.isfinite(wav).all():
        raise MediaError(audio_path, "non-finite audio")
    q, step = _quantise(wav[: c.num_samples])
    _writer(Path(folder) / AUDIO_FILE)[c.audio_offset : c.audio_offset + len(q)] = q
    return number, len(q), step


def _remove_leftovers(final: Path) -> None:
    """Temporary folders (.part-PID, .old-PID) of builds that were killed (PID is gone)."""
    for part in final.parent.glob(f"{final.name}.*-*"):
        try:
            os.kill(int(part.name.rsplit("-", 1)[1]), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(part, ignore_errors=True)
        except PermissionError:  # another user's live process
            pass


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise PixelPlayerError(
            f"{folder}: the cache needs {needed / 1e9:.1f} GB and {free / 1e9:.1f} GB are free; "
            "free some space or cache a smaller index"
        )


def build_cache(
    source: str | Path,
    size: int = 224,
    sr: int = 11025,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> tuple[Path, bool]:
    """Cache every clip of `source` (a prepared folder or an index); -> (folder, built).

    A complete cache that is up to date is kept (built False) unless `force`.
    """
    if size <= 0 or sr <= 0:
        raise PixelPlayerError(f"size ({size}) and sr ({sr}) must be > 0")
    root, name, indexes = cache_sources(source)
    final = cache_folder(root, name, size, sr)
    if final.is_dir() and not force:
        try:
            if not open_cache(final).stale_reason():
                return final, False
        except PixelPlayerError:
            pass  # unreadable: rebuilt below
    fingerprints = [_fingerprint(i, root) for i in indexes]  # before reading: edits show as stale
    clips = _union(indexes)
    plan = _plan(clips, root, size, sr)
    frames_bytes = sum(c.num_frames * c.height * c.width * 3 for c in plan)
    audio_samples = sum(c.num_samples for c in plan)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final)
    _check_space(final.parent, frames_bytes + 2 * audio_samples)

    tmp = final.with_name(f"{final.name}.part-{os.getpid()}")
    tmp.mkdir()
    try:
        # sized on disk (sparse) here; the workers fill them in place
        np.lib.format.open_memmap(tmp / FRAMES_FILE, "w+", np.uint8, (frames_bytes,)).flush()
        np.lib.format.open_memmap(tmp / AUDIO_FILE, "w+", np.int16, (audio_samples,)).flush()
        tasks = [(str(tmp), i, c, size, sr) for i, c in enumerate(plan)]
        bar = tqdm(total=len(tasks), unit="clip", desc="cache", disable=not progress)
        with bar:
            for number, samples, step, error in imap_unordered(
                _cache_clip, tasks, worker_count(workers, len(tasks))
            ):
                if error:
                    raise PixelPlayerError(f"{error}; fix or drop the clip, then cache again")
                plan[number].num_samples, plan[number].audio_scale = samples, step
                bar.update(1)
        for w in _WRITERS.values():
            w.flush()
        _WRITERS.clear()
        manifest = {
            "format": FORMAT,
            "size": size,
            "sr": sr,
            "side": stored_side(size),
            "source": "." if name == "splits" else _rel(indexes[0], root),
            "sources": fingerprints,
            "frames_bytes": frames_bytes,
            "audio_samples": audio_samples,
            "clips": [asdict(c) for c in plan],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        if final.exists():
            final.rename(old)  # a directory cannot be replaced in one rename
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        _WRITERS.clear()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, True
