"""Stills of the generated world: single frames of solo scenes, each with the class it shows,
drawn as a clip's frame is (`clip.stage`) but without audio. They pretrain the frame net to
know instruments (`pixelplayer train --config frames`), the stand-in for the ImageNet weights
the paper starts from: thousands of scenes where a dataset has a few hundred clips.

Only the training pictures are drawn, never the held-out ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelplayer.data.synth.clip import stage
from pixelplayer.data.synth.instruments import CLASSES
from pixelplayer.parallel import imap_unordered, worker_count

STILL_FPS = 8.0  # the motions of a still's silent objects are drawn at a clip's rate
CHUNK = 64  # stills per worker task


def render_still(
    key: Sequence[int], classes: Sequence[str], size: int = 224
) -> tuple[np.ndarray, int]:
    """One solo scene from its key (integers) -> ((size, size, 3) uint8, index of its class
    in `classes`). The instrument stands at rest, at a solo clip's size."""
    rng = np.random.default_rng([*key, 3])
    label = int(rng.integers(len(classes)))
    loudness, onsets = np.ones(1), np.zeros(1)  # (T=1,)
    scene = stage([CLASSES[classes[label]]], [loudness], [onsets], size, STILL_FPS, rng)
    return scene.frames[0], label


def _render_chunk(job: tuple[list[tuple[int, ...]], tuple[str, ...], int]) -> list:
    keys, classes, size = job
    return [(key, *render_still(key, classes, size)) for key in keys]


def render_stills(
    n: int,
    seed: int,
    part: int,
    classes: Sequence[str],
    size: int = 224,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Stills (seed, part, 0..n-1), drawn in parallel -> ((n, size, size, 3) uint8 frames,
    (n,) int64 labels); the same whatever the number of workers. Parts keep sets apart
    (training 0, validation 1)."""
    from tqdm import tqdm

    keys = [(int(seed), int(part), i) for i in range(n)]
    frames = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    jobs = [(keys[i : i + CHUNK], tuple(classes), size) for i in range(0, n, CHUNK)]
    names = {0: "training stills", 1: "validation stills"}
    bar = tqdm(total=n, desc=names.get(part, "stills"), unit="still", disable=not progress)
    for chunk in imap_unordered(_render_chunk, jobs, worker_count(workers, len(jobs))):
        for key, frame, label in chunk:
            frames[key[2]], labels[key[2]] = frame, label
        bar.update(len(chunk))
    bar.close()
    return frames, labels
