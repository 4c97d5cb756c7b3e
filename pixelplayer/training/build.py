"""The mask model a config names, built for training: its kwargs checked, AMnet's two trained
parts loaded from the runs its config names (models themselves never read another run)."""

from __future__ import annotations

import inspect

import torch.nn as nn

from pixelplayer.config import Config
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.models.amnet import AMNet
from pixelplayer.models.pixelplayer import PixelPlayer
from pixelplayer.models.registry import build, get_class
from pixelplayer.run import Run

# model_kwargs of `model: amnet`: the two runs it builds on, and the refiner's kwargs
AMNET_KEYS = ("appearance_run", "ame_run", "refiner")


def build_model(cfg: Config) -> tuple[nn.Module, dict]:
    """-> (the model, the kwargs its checkpoints store: enough for `registry.load_model` to
    rebuild it without the files it was built from)."""
    if cfg.model == "amnet":
        model, kwargs = build_amnet(cfg)
    else:
        params = inspect.signature(get_class(cfg.model)).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            check_model_kwargs(cfg.model, cfg.model_kwargs, list(params))
        kwargs = dict(cfg.model_kwargs)
        if cfg.frame_weights:
            kwargs["frame"] = {**kwargs.get("frame", {}), "pretrained": cfg.frame_weights}
        model = build(cfg.model, **kwargs)
        # the weights now live in the state dict; a checkpoint must not need the file again
        kwargs.get("frame", {}).pop("pretrained", None)
    sound_net = getattr(getattr(model, "appearance", model), "sound_net", None)
    if sound_net is not None:
        _check_spectrogram_size(cfg, sound_net.levels)
    return model, kwargs


def check_model_kwargs(model: str, given: dict, valid: list[str]) -> None:
    """A model_kwargs key the model does not take is an error naming those it does.

    Only the top level: nested dicts (frame, sound) go to sub-networks.
    """
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise PixelPlayerError(
            f"unknown config key model_kwargs.{unknown[0]} for model {model!r}; "
            f"valid keys in model_kwargs: {', '.join(valid)}"
        )


def build_amnet(cfg: Config) -> tuple[AMNet, dict]:
    """AMnet over the trained runs model_kwargs.appearance_run (a PixelPlayer) and ame_run
    (an AME), each read from its best.pt; checked first: AMnet's stages must read what their
    runs were trained on (the appearance run's spectrogram and rate, the AME run's frame size
    and rate)."""
    check_model_kwargs("amnet", cfg.model_kwargs, list(AMNET_KEYS))
    if cfg.frame_weights:
        raise PixelPlayerError("amnet's frame net is its appearance run's: drop frame_weights")
    runs = {}
    for key, model, check in (
        ("appearance_run", "pixelplayer", _check_appearance_run),
        ("ame_run", "ame", _check_ame_run),
    ):
        folder = cfg.model_kwargs.get(key)
        run = Run(folder) if folder else None
        if run is None or not run.exists():
            raise PixelPlayerError(
                f"amnet builds on a trained {model} run: set model_kwargs.{key} to its folder "
                f"(got {folder!r})"
            )
        if run.config.model != model:
            article = "an" if model[0] in "aeiou" else "a"
            raise PixelPlayerError(
                f"{folder} is a {run.config.model} run; model_kwargs.{key} needs {article} "
                f"{model} run"
            )
        check(cfg, run)
        runs[key] = run
    refiner = {
        "seconds_per_column": cfg.spec.hop / cfg.sample.sr,
        **cfg.model_kwargs.get("refiner", {}),
    }
    appearance, first = runs["appearance_run"].load_model(PixelPlayer)
    ame, second = runs["ame_run"].load_model(AudioMotionEmbedding)
    kwargs = {"refiner": refiner, "fps": float(cfg.sample.fps), "combine": cfg.spec.combine}
    model = AMNet(appearance, ame, **kwargs)
    return model, {"appearance": first["kwargs"], "ame": second["kwargs"], **kwargs}


def _check_appearance_run(cfg: Config, run: Run) -> None:
    other = run.config
    same = ("n_fft", "hop", "log_freq", "freq_rows", "combine")
    diff = [k for k in same if getattr(other.spec, k) != getattr(cfg.spec, k)]
    diff += [
        f"sample.{k}" for k in ("sr", "fps") if getattr(other.sample, k) != getattr(cfg.sample, k)
    ]
    if diff:
        raise PixelPlayerError(
            f"{run.folder} was trained with other {', '.join(diff)}: give amnet the same"
        )


def _check_ame_run(cfg: Config, run: Run) -> None:
    other = run.config.sample
    if other.frame_size != cfg.sample.motion_size or other.fps != cfg.sample.fps:
        raise PixelPlayerError(
            f"{run.folder} embeds {other.frame_size} px frames at {other.fps:g} fps: set "
            f"sample.motion_size={other.frame_size} and sample.fps to match"
        )


def _check_spectrogram_size(cfg: Config, levels: int) -> None:
    """The U-Net halves the spectrogram `levels` times: both sides must divide by 2**levels."""
    step, hop = 2**levels, cfg.spec.hop
    rows = cfg.spec.freq_rows if cfg.spec.log_freq else cfg.spec.n_fft // 2 + 1
    cols = 1 + cfg.sample.audio_len // hop  # STFT frames of one window
    if rows % step:
        raise PixelPlayerError(
            f"the U-Net's {levels} levels need spectrogram rows that divide by {step}, not "
            f"{rows}; use spec.log_freq with spec.freq_rows={step * max(1, round(rows / step))}"
        )
    if cols % step:
        fit = hop * step * max(1, round(cols / step)) - 1
        raise PixelPlayerError(
            f"the U-Net's {levels} levels need a window of STFT frames that divides by {step}, "
            f"but sample.audio_len {cfg.sample.audio_len} with hop {hop} gives {cols}; try "
            f"sample.audio_len={fit}"
        )
