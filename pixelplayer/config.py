"""Experiment configuration: one YAML file per preset, read into dataclasses.

A key that is not known is an error that names the valid keys, so a typo never falls back to a
default silently. `overrides` ("train.batch_size=8") change single values from the CLI.
model_kwargs are the model's business: they are checked where the model is built
(pixelplayer.training.build, and the AME's and AV-MIML's `options`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from pixelplayer.data.dataset import SampleConfig
from pixelplayer.errors import PixelPlayerError
from pixelplayer.mixsep import SpecConfig

PROJECTION_LRS = ("frame", "sound")
ON_NAN = ("stop", "skip")


@dataclass
class OptimConfig:
    optimizer: str = "sgd"  # sgd | adam
    lr_frame: float = 1e-4
    lr_sound: float = 1e-3
    lr_synth: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 80
    epochs: int = 100
    epoch_size: int = 20000  # mixtures drawn per epoch
    lr_steps: list[int] = field(default_factory=lambda: [40, 80])  # epochs where lr *= 0.1
    lr_decay_every: int = 0  # epochs; lr *= lr_decay after every this many (0 = never)
    lr_decay: float = 0.94
    max_minutes: float | None = None  # stop (with a checkpoint) after this much training time
    val_mixtures: int = 128
    val_every: int = 1  # epochs
    mask_threshold: float | None = 0.5  # binary masks are thresholded when separating
    workers: int | None = None  # DataLoader workers; None = min(4, cores - 1)
    seed: int = 0
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs with native bf16
    on_nan: str = "stop"  # a non-finite loss: stop (error) | skip (the batch, counted)
    # the learning rate of the frame net's last layer (its projection to K channels): "frame"
    # (lr_frame, with the rest of the frame net) or "sound" (lr_sound, as the reference code)
    projection_lr: str = "frame"

    def __post_init__(self):
        for key, valid in (("projection_lr", PROJECTION_LRS), ("on_nan", ON_NAN)):
            if getattr(self, key) not in valid:
                raise ValueError(
                    f"{key} must be one of {', '.join(valid)}, not {getattr(self, key)!r}"
                )


@dataclass
class Config:
    model: str = "pixelplayer"
    model_kwargs: dict = field(default_factory=dict)
    frame_weights: str | None = None  # ImageNet weights file of the frame net's backbone
    sample: SampleConfig = field(default_factory=SampleConfig)
    spec: SpecConfig = field(default_factory=SpecConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    # fine-tuning: a run folder (its best.pt, else last.pt) or checkpoint whose weights start a
    # new run, tensor by tensor where names and shapes match (see training.init.init_weights)
    init: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


SECTIONS = {"sample": SampleConfig, "spec": SpecConfig, "train": OptimConfig}


def _check_keys(given: dict, cls, where: str) -> None:
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(given) - set(valid))
    if unknown:
        section = f" in {where[:-1]}" if where else ""
        raise PixelPlayerError(
            f"unknown config key {where}{unknown[0]}; valid keys{section}: {', '.join(valid)}"
        )


def _coerce(cls, values: dict) -> dict:
    """Numbers written as strings ('1e-3' is a string to YAML 1.1) become floats."""
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    out = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and types[key].startswith("float"):
            try:
                out[key] = float(value)
            except ValueError as exc:
                raise PixelPlayerError(f"config key {key}: {value!r} is not a number") from exc
    return out


# values that must be > 0 (or >= 0): anything else fails deep inside training with a traceback
POSITIVE = {
    "sample": {"sr", "audio_len", "fps", "num_frames", "frame_size", "num_mix"},
    "spec": {"n_fft", "hop", "freq_rows"},
    "train": {"batch_size", "epoch_size", "val_mixtures", "val_every"},
}
NONNEGATIVE = {
    "sample": {"stride_frames"},
    "train": {"epochs", "lr_decay_every", "workers", "seed", "lr_frame", "lr_sound", "lr_synth"},
}
# values that size memory: past these a run asks for gigabytes (frame_size 100000: 40 GB a frame)
AT_MOST = {
    "sample": {
        "frame_size": 4096,
        "sr": 384000,
        "fps": 1000,
        "audio_len": 1 << 24,
        "num_frames": 1024,
        "num_mix": 64,
    },
    "spec": {"n_fft": 1 << 16, "freq_rows": 1 << 14},
}
_KINDS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (dict,)}


def _fits(value, annotation: str) -> bool:
    """Whether a YAML value fits a field's annotation ("int", "float | None", "list[int]", ...).

    Annotations this does not know pass unchecked; a bool is not a number here.
    """
    for part in (p.strip() for p in annotation.split("|")):
        outer, _, inner = part.partition("[")
        if part == "None" and value is None:
            return True
        if outer == "list" and isinstance(value, list):
            return not inner or all(_fits(v, inner.rstrip("]")) for v in value)
        if outer not in _KINDS and outer not in ("list", "None"):
            return True
        kinds = _KINDS.get(outer, ())
        if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
            return True
    return False


def _check_values(values: dict, cls, where: str) -> None:
    """A value of the wrong type or sign is an error naming the key and what it expects."""
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    section = where.rstrip(".")
    for key, value in values.items():
        if not _fits(value, types[key]):
            raise PixelPlayerError(f"config key {where}{key} must be {types[key]}, not {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise PixelPlayerError(f"config key {where}{key}: {value!r} is not a finite number")
            most = AT_MOST.get(section, {}).get(key)
            if most is not None and value > most:
                raise PixelPlayerError(
                    f"config key {where}{key}: {value!r} is out of range; give at most {most}"
                )
            if key in POSITIVE.get(section, ()) and value <= 0:
                raise PixelPlayerError(f"config key {where}{key}: {value!r} must be > 0")
            if key in NONNEGATIVE.get(section, ()) and value < 0:
                raise PixelPlayerError(f"config key {where}{key}: {value!r} must be >= 0")


# keys that are gone, with the value that left them off: the config.yaml of a run trained
# before they went still loads when it holds that value (it trained without them)
REMOVED = {("spec", "cell_weight"): 1.0, ("train", "grad_clip"): None}


def _without_removed(data: dict) -> dict:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for (section, key), off in REMOVED.items():
        part = data.get(section)
        if isinstance(part, dict) and key in part:
            if part[key] != off:
                raise PixelPlayerError(
                    f"config key {section}.{key} was removed (an experiment that did not reach "
                    f"its goal); this config sets it to {part[key]!r}"
                )
            del part[key]
    return data


def from_dict(data: dict) -> Config:
    if data is not None and not isinstance(data, dict):
        raise PixelPlayerError(
            f"a config is a mapping of model, model_kwargs, sample, spec, train; "
            f"not a {type(data).__name__}"
        )
    data = _without_removed(dict(data or {}))
    _check_keys(data, Config, "")
    _check_values({k: v for k, v in data.items() if k not in SECTIONS}, Config, "")
    kwargs = {}
    for name, value in data.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                raise PixelPlayerError(f"config section {name!r} must be a mapping")
            _check_keys(value, SECTIONS[name], f"{name}.")
            value = _coerce(SECTIONS[name], value)
            _check_values(value, SECTIONS[name], f"{name}.")
            try:
                kwargs[name] = SECTIONS[name](**value)
            except (TypeError, ValueError) as exc:
                raise PixelPlayerError(f"config section {name!r}: {exc}") from exc
        else:
            kwargs[name] = value
    cfg = Config(**kwargs)
    if cfg.spec.hop > cfg.spec.n_fft // 2:  # Hann windows further apart leave gaps: no iSTFT
        raise PixelPlayerError(
            f"config key spec.hop {cfg.spec.hop} must be at most n_fft / 2 = {cfg.spec.n_fft // 2}"
        )
    return cfg


def _parse_value(text: str):
    return yaml.safe_load(text)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """'train.batch_size=8' -> data['train']['batch_size'] = 8 (values parsed as YAML)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise PixelPlayerError(f"override {item!r} must look like section.key=value")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PixelPlayerError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = _parse_value(value)
    return data


PRESETS = Path(__file__).resolve().parent / "presets"  # package data: pixelplayer/presets/*.yaml


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def config_path(name: str | Path) -> Path:
    """A config file, or the name of a preset that ships with the package (pixelplayer-cpu)."""
    path = Path(name)
    if path.is_file():
        return path
    preset = PRESETS / f"{name}.yaml"
    if str(name) in preset_names():
        return preset
    raise PixelPlayerError(
        f"{name}: no such config file or preset (presets: {', '.join(preset_names())})"
    )


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """A config file or preset name (`config_path`), with "section.key=value" overrides."""
    data = {}
    if path is not None:
        path = config_path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            # one line: the problem and where, not PyYAML's multi-line excerpt of the file
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise PixelPlayerError(f"{path}: not valid YAML ({problem}{at})") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise PixelPlayerError(f"{path}: cannot read the config ({exc})") from exc
        if not isinstance(data, dict):
            raise PixelPlayerError(
                f"{path}: a config is a mapping of model, model_kwargs, sample, spec, train; "
                f"not a {type(data).__name__}"
            )
    return from_dict(apply_overrides(data, overrides or []))


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
