"""Experiment configuration: one YAML file per preset, read into dataclasses.

A key that is not known is an error that names the valid keys, so a typo never falls back to a
default silently. `overrides` ("train.batch_size=8") change single values from the CLI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from pixelplayer.data.dataset import SampleConfig
from pixelplayer.errors import PixelPlayerError
from pixelplayer.mixsep import SpecConfig


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
    grad_clip: float | None = None


@dataclass
class Config:
    model: str = "pixelplayer"
    model_kwargs: dict = field(default_factory=dict)
    frame_weights: str | None = None  # torchvision-format ResNet-18 state dict for the frame net
    sample: SampleConfig = field(default_factory=SampleConfig)
    spec: SpecConfig = field(default_factory=SpecConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

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


def from_dict(data: dict) -> Config:
    data = dict(data or {})
    _check_keys(data, Config, "")
    kwargs = {}
    for name, value in data.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                raise PixelPlayerError(f"config section {name!r} must be a mapping")
            _check_keys(value, SECTIONS[name], f"{name}.")
            try:
                kwargs[name] = SECTIONS[name](**_coerce(SECTIONS[name], value))
            except (TypeError, ValueError) as exc:
                raise PixelPlayerError(f"config section {name!r}: {exc}") from exc
        else:
            kwargs[name] = value
    return Config(**kwargs)


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


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    data = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PixelPlayerError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise PixelPlayerError(f"{path}: not valid YAML ({exc})") from exc
    return from_dict(apply_overrides(data, overrides or []))


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
