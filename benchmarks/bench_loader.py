"""Time the training data loader with the decoded-clip cache and without, at a config's preset.

    python benchmarks/bench_loader.py --data PREPARED [--batches 20] [--step-seconds 0.9]
        [--config pixelplayer-cpu] [--workers N]

Builds PREPARED's cache first when it has none for the config's frame_size and sr (in place:
PREPARED/cache/). Then draws training mixtures through a DataLoader as `pixelplayer train` does
(same batch size and worker count) from the cache and from the JPEG + wav files, and prints one
line: mixtures/s of each against what training consumes (batch size / step seconds) and the
ratios, then mixtures per CPU second of the loading processes (main + workers, from /proc: a
figure that other load on a shared machine changes less). Target: the cached loader delivers at
least 10x what training consumes. The first batch of each loader (worker start-up) is not timed;
the cache is read through the page cache, warm after a build.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from torch.utils.data import DataLoader

from pixelplayer.config import load_config
from pixelplayer.data.cache import build_cache
from pixelplayer.data.dataset import MixDataset
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.training.samplers import default_workers


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of this process and of `pids` (from /proc), in seconds."""
    t = os.times()
    total = t.user + t.system
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def mixtures_per_second(
    data: MixDataset, batch: int, workers: int, batches: int
) -> tuple[float, float]:
    """(mixtures per wall second, per CPU second of the loading processes) over `batches`
    batches, after one untimed batch (worker start-up)."""
    loader = DataLoader(data, batch_size=batch, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    start, cpu = time.perf_counter(), cpu_seconds(pids)
    for _ in range(batches):
        next(it)
    wall, cpu = time.perf_counter() - start, cpu_seconds(pids) - cpu
    return batches * batch / wall, batches * batch / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepared folder (its cache is built here)")
    parser.add_argument("--batches", type=int, default=20, help="timed batches (default 20)")
    parser.add_argument("--step-seconds", type=float, default=0.9, help="training step time")
    parser.add_argument("--config", default="pixelplayer-cpu")
    parser.add_argument("--workers", type=int, default=None, help="default: as training")
    args = parser.parse_args()
    cfg = load_config(args.config)
    s, batch = cfg.sample, cfg.train.batch_size
    workers = default_workers() if args.workers is None else args.workers
    folder, built = build_cache(args.data, s.frame_size, s.sr)
    if built:
        print(f"built {folder}", file=sys.stderr)
    clips = read_index(resolve_index(args.data, "train"))
    rates = {}
    for name, cache in (("cached", True), ("decoding", False)):
        data = MixDataset(clips, s, length=(args.batches + 1) * batch, train=True, cache=cache)
        assert (data.cache is not None) == cache
        rates[name] = mixtures_per_second(data, batch, workers, args.batches)
    need = batch / args.step_seconds
    (cached, cached_cpu), (decoding, decoding_cpu) = rates["cached"], rates["decoding"]
    print(
        f"loader, batch {batch} of {s.num_mix} clips x {s.num_frames} frames {s.frame_size} px + "
        f"{s.audio_len} samples, {workers} worker(s): cached {cached:.1f} mixtures/s, "
        f"decoding {decoding:.1f} mixtures/s ({cached / decoding:.1f}x); "
        f"training consumes {need:.1f}/s ({batch} per {args.step_seconds:g} s step): "
        f"cached {cached / need:.1f}x, decoding {decoding / need:.1f}x; per CPU second of the "
        f"loading processes: cached {cached_cpu:.1f}, decoding {decoding_cpu:.1f} mixtures"
    )


if __name__ == "__main__":
    main()
