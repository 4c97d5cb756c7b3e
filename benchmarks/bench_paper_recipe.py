"""The paper preset's training recipe before and after it followed the reference code: the loss
over 20 SGD steps on one fixed batch.

    python benchmarks/bench_paper_recipe.py [--batch 8] [--steps 20] [--threads 1] [--seed 0]
    python benchmarks/bench_paper_recipe.py --masks [--batch 8] [--seed 0]

Both runs train the paper preset's model (41.6M parameters) from the same initial weights on the
same fixed random batch (harmonic tones in noise, random frames), as `pixelplayer train` does a
step (its autocast, its loss), `--steps` times:

  before: the recipe the preset had (`spec.mask_rule=argmax spec.loss_norm=weight_sum
          train.projection_lr=frame`: the loudest source's one-hot mask, the weighted BCE
          divided by the sum of the weights, the frame net's projection at lr_frame);
  after:  the preset as it is (the reference's: mag_n > 0.5 mag_mix, the mean of weight x BCE,
          the projection at lr_sound).

Each run's own loss has its own scale, so each line also gives the reference loss (the
after-recipe's, which tests/test_paper_recipe.py checks against the reference's formulae) of
the same network outputs: one yardstick for both. Prints one line per recipe.

`--masks` trains nothing: it prints how the two mask rules differ on that batch (the share of
bins where half_mix marks both sources, or none, and where it differs from argmax).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from pixelplayer import mixsep
from pixelplayer.config import load_config
from pixelplayer.precision import amp_dtype, autocast
from pixelplayer.training import build_model
from pixelplayer.training.optim import make_optimizer

PAPER = "pixelplayer-paper"
RECIPES = {
    "before": ["spec.mask_rule=argmax", "spec.loss_norm=weight_sum", "train.projection_lr=frame"],
    "after": [],
}


def fixed_batch(batch: int, cfg, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, L) sources, each a harmonic tone of its own pitch and level in a little noise,
    and (B, N, 3, T_f, S, S) normalised random frames."""
    s = cfg.sample
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(s.audio_len) / s.sr
    pitch = 110 * 2 ** (torch.rand(batch, s.num_mix, 1, generator=g) * 4)  # 110-1760 Hz
    level = 0.1 + 0.4 * torch.rand(batch, s.num_mix, 1, generator=g)
    tone = sum(torch.sin(2 * math.pi * h * pitch * t) / h for h in (1, 2, 3))
    audios = level * tone + 0.02 * torch.randn(batch, s.num_mix, s.audio_len, generator=g)
    shape = (batch, s.num_mix, 3, s.num_frames, s.frame_size, s.frame_size)
    return audios / s.num_mix, torch.randn(shape, generator=g)


def run(overrides: list[str], batch: int, steps: int, seed: int) -> dict:
    cfg = load_config(PAPER, [f"train.batch_size={batch}", *overrides])
    yardstick = load_config(PAPER).spec  # the reference's loss
    audios, frames = fixed_batch(batch, cfg, seed)
    mix = audios.sum(1)
    torch.manual_seed(cfg.train.seed)
    model, _ = build_model(cfg)
    model.train()
    optimizer = make_optimizer(model, cfg)
    dtype = amp_dtype("cpu", cfg.train.amp)
    own, ref = [], []
    started = time.perf_counter()
    for step in range(steps + 1):  # the loss before each step, and after the last
        with autocast("cpu", dtype):
            _, mag = mixsep.network_input(mix, cfg.spec)
            masks, weight = mixsep.targets(audios, mag, cfg.spec)
            logits = model(mag, frames)
        loss = mixsep.loss(logits.float(), masks, weight, cfg.spec)
        with torch.no_grad():
            ref_masks, ref_weight = mixsep.targets(audios, mag, yardstick)
            ref.append(mixsep.loss(logits.float(), ref_masks, ref_weight, yardstick).item())
        own.append(loss.item())
        if step < steps:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return {"own": own, "ref": ref, "seconds": time.perf_counter() - started, "dtype": dtype}


def compare_masks(batch: int, seed: int) -> str:
    """How the two mask rules differ on the fixed batch: shares of bins and of loss weight."""
    cfg = load_config(PAPER)
    audios, _ = fixed_batch(batch, cfg, seed)
    _, mag = mixsep.network_input(audios.sum(1), cfg.spec)
    half, weight = mixsep.targets(audios, mag, cfg.spec)
    one_hot, _ = mixsep.targets(audios, mag, load_config(PAPER, ["spec.mask_rule=argmax"]).spec)
    held = half.sum(1)
    differ = (half != one_hot).float()
    return (
        f"masks of the fixed batch (batch {batch}, seed {seed}): half_mix marks both sources in "
        f"{100 * (held == 2).float().mean():.1f} % of bins, none in "
        f"{100 * (held == 0).float().mean():.1f} %; it differs from argmax in "
        f"{100 * differ.mean():.1f} % of bins, {100 * (differ * weight).sum() / weight.sum():.1f} "
        "% of the loss weight"
    )


def _fall(losses: list[float]) -> str:
    return f"{losses[0]:.4f} -> {losses[-1]:.4f} ({100 * (losses[-1] / losses[0] - 1):+.1f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed batch")
    parser.add_argument("--masks", action="store_true", help="compare the mask rules only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.masks:
        print(compare_masks(args.batch, args.seed))
        return
    for name, overrides in RECIPES.items():
        r = run(overrides, args.batch, args.steps, args.seed)
        dtype = str(r["dtype"]).removeprefix("torch.") if r["dtype"] else "float32"
        print(
            f"{name}: paper preset, batch {args.batch}, {args.steps} SGD steps on one fixed batch "
            f"({dtype}, {args.threads} thread(s), {r['seconds'] / args.steps:.1f} s/step): own "
            f"loss {_fall(r['own'])}; reference loss {_fall(r['ref'])}",
            flush=True,
        )


if __name__ == "__main__":
    main()
