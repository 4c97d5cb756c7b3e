"""Train/val/test splits of a prepared dataset: by video, stratified per class, seeded."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

from pixelplayer.data.index import SPLITS, Clip
from pixelplayer.errors import PixelPlayerError


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


def check_split(split: Sequence[float]) -> tuple[float, float, float]:
    """The train, val, test shares as floats, or an error saying what a split is."""
    if len(split) != 3 or any(not math.isfinite(f) or f < 0 for f in split) or sum(split) <= 0:
        raise PixelPlayerError(
            f"split {tuple(split)}: give three shares >= 0 for train, val, test (e.g. 0.8,0.1,0.1)"
        )
    return tuple(float(f) for f in split)  # type: ignore[return-value]
