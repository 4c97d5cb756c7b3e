"""The pictures of the generated world: which pictures show each class and each silent object,
where each comes from (package and licence), and which are held out for testing.

A picture is named by a label, the "image" of a meta file:
  emoji:U+1F3BB                 a glyph of Noto Color Emoji (Debian fonts-noto-color-emoji)
  iconify:<set>/<icon>          an icon of an Iconify set (npm @iconify-json/<set>), SVG
  gcompris:<name>               a drawing of GCompris's instruments activity (Debian
                                gcompris-qt-data), SVG: shaded like the instrument itself
  <path>.png|jpg|svg            a file: a user's picture or a held-out one

Training draws from the emoji font, the Iconify sets below (emoji styles of six makers and
the silhouettes of two icon sets, coloured at random) and GCompris's drawings, the only ones
with an instrument's own shading and proportions. The held-out pictures, the photo
cut-outs of Debian's tuxpaint-stamps-default, are never drawn for training: only
`data synth --holdout pictures|both` uses them, to test on pictures no model has seen.
"""

from __future__ import annotations

import colorsys
import functools
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pixelplayer.data.qt_resources import read_qt_resources
from pixelplayer.errors import PixelPlayerError

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_PPEM = 109  # Noto Color Emoji holds bitmaps at this size only
EMOJI_PREFIX = "emoji:U+"
ICONIFY_PREFIX = "iconify:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PICTURE_PIXELS = 50_000_000  # sprites are drawn at most 512 px: larger only costs memory
RENDER_PX = 384  # SVG icons are rendered at this size, then drawn smaller
ASSETS_ENV = "PIXELPLAYER_ASSETS"  # a folder holding node_modules/@iconify-json/<set>
TUXPAINT_MUSIC = Path("/usr/share/tuxpaint/stamps/hobbies/music")
GCOMPRIS_PREFIX = "gcompris:"
GCOMPRIS_RCC = Path("/usr/share/gcompris-qt/rcc/instruments.rcc")
GCOMPRIS_DIR = "/gcompris/src/activities/instruments/resource/"
GCOMPRIS_SOURCE = {
    "package": "debian:gcompris-qt-data",
    "licence": "GPL-3",
    "maker": "GCompris (Bruno Coudoin and others)",
}


@dataclass(frozen=True)
class IconSet:
    """An Iconify icon set: its npm package, licence and maker."""

    name: str
    licence: str
    maker: str
    mono: bool = False  # silhouettes in currentColor: drawn in a random colour

    @property
    def package(self) -> str:
        return f"@iconify-json/{self.name}"


ICON_SETS: dict[str, IconSet] = {
    s.name: s
    for s in (
        IconSet("twemoji", "CC-BY-4.0", "Twitter"),
        IconSet("openmoji", "CC-BY-SA-4.0", "OpenMoji"),
        IconSet("fluent-emoji-flat", "MIT", "Microsoft"),
        IconSet("fluent-emoji", "MIT", "Microsoft"),
        IconSet("emojione", "CC-BY-4.0", "Emoji One"),
        IconSet("noto-v1", "Apache-2.0", "Google"),
        IconSet("fxemoji", "Apache-2.0", "Mozilla"),
        IconSet("game-icons", "CC-BY-3.0", "Game Icons", mono=True),
        IconSet("qlementine-icons", "MIT", "Olivier Clero", mono=True),
    )
}
EMOJI_SOURCE = {"package": "debian:fonts-noto-color-emoji", "licence": "OFL-1.1", "maker": "Google"}

# Noto Color Emoji code points of the classes and silent objects that have one
EMOJI: dict[str, int] = {
    "violin": 0x1F3BB,
    "acoustic_guitar": 0x1F3B8,
    "trumpet": 0x1F3BA,
    "saxophone": 0x1F3B7,
    "flute": 0x1FA88,
    "accordion": 0x1FA97,
    "piano": 0x1F3B9,
    "banjo": 0x1FA95,
    "drums": 0x1F941,
    "french_horn": 0x1F4EF,
    "chair": 0x1FA91,
    "cactus": 0x1F335,
    "books": 0x1F4DA,
    "coffee": 0x2615,
    "potted_plant": 0x1FAB4,
    "light_bulb": 0x1F4A1,
    "teddy_bear": 0x1F9F8,
    "apple": 0x1F34E,
    "couch_and_lamp": 0x1F6CB,
    "framed_picture": 0x1F5BC,
}
# Icon names (the same in every set that has them) of each class and silent object
CLASS_ICONS: dict[str, tuple[str, ...]] = {
    "violin": ("violin",),
    "acoustic_guitar": ("guitar",),
    "trumpet": ("trumpet",),
    "saxophone": ("saxophone",),
    "flute": ("flute",),
    "accordion": ("accordion",),
    "piano": ("musical-keyboard", "grand-piano"),
    "banjo": ("banjo",),
    "drums": ("drum", "long-drum", "drum-kit"),
    "french_horn": ("postal-horn", "french-horn"),
    "cello": ("cello-24", "cello-16"),
    "clarinet": ("clarinet",),
    "tuba": ("tuba", "tuba-16"),
    "xylophone": ("xylophone",),
}
# GCompris's drawing of each class (its xylophone has none)
GCOMPRIS_DRAWINGS: dict[str, str] = {
    "violin": "violin",
    "acoustic_guitar": "guitar",
    "trumpet": "trumpet",
    "saxophone": "saxophone",
    "flute": "flute_traversiere",
    "accordion": "accordion",
    "piano": "piano",
    "banjo": "banjo",
    "drums": "drum_kit",
    "french_horn": "horn",
    "cello": "cello",
    "clarinet": "clarinet",
    "tuba": "tuba",
}
DISTRACTOR_ICONS: dict[str, str] = {
    "chair": "chair",
    "cactus": "cactus",
    "books": "books",
    "coffee": "hot-beverage",
    "potted_plant": "potted-plant",
    "light_bulb": "light-bulb",
    "teddy_bear": "teddy-bear",
    "apple": "red-apple",
    "couch_and_lamp": "couch-and-lamp",
    "framed_picture": "framed-picture",
}

# Held out for testing, never drawn in training: photo cut-outs of Debian's
# tuxpaint-stamps-default, for the classes it has (its bassoon and electric guitars have none)
HOLDOUT_PACKAGE = "tuxpaint-stamps-default"
HOLDOUT_PICTURES: dict[str, tuple[str, ...]] = {
    "violin": ("string/violin.png", "string/violin2.svg"),
    "acoustic_guitar": ("string/guitar_classical.png", "string/guitar2.png"),
    "cello": ("string/cello.png",),
    "trumpet": ("brass/trumpet.png",),
    "drums": ("percussion/drumkit.png", "percussion/drum_tomtom_floor.png"),
}


def asset_dirs() -> list[Path]:
    """Where the npm packages may be: $PIXELPLAYER_ASSETS, then the environment's share/."""
    dirs = [Path(os.environ[ASSETS_ENV])] if os.environ.get(ASSETS_ENV) else []
    return [*dirs, Path(sys.prefix) / "share" / "pixelplayer"]


def npm_packages() -> list[str]:
    """The npm packages that hold the training pictures (scripts/setup.sh installs them)."""
    return [s.package for s in ICON_SETS.values()]


@functools.cache
def _icon_set(name: str) -> dict | None:
    """The Iconify JSON of a set, or None when its package is not installed."""
    for base in asset_dirs():
        path = base / "node_modules" / "@iconify-json" / name / "icons.json"
        if path.is_file():
            return json.loads(path.read_text())
    return None


def _icon_entry(data: dict, icon: str) -> dict | None:
    if icon in data["icons"]:
        return data["icons"][icon]
    alias = data.get("aliases", {}).get(icon)
    if alias is None:
        return None
    parent = _icon_entry(data, alias["parent"])
    return (
        None if parent is None else {**parent, **{k: v for k, v in alias.items() if k != "parent"}}
    )


@functools.cache
def _gcompris() -> dict[str, bytes] | None:
    """GCompris's instruments activity files, or None when gcompris-qt-data is not installed."""
    return read_qt_resources(GCOMPRIS_RCC) if GCOMPRIS_RCC.is_file() else None


def _gcompris_svg(name: str) -> bytes | None:
    """The SVG of one GCompris drawing, or None when it is not installed."""
    files = _gcompris()
    return None if files is None else files.get(f"{GCOMPRIS_DIR}{name}.svg")


def training_pictures(name: str) -> list[str]:
    """Labels of every installed training picture of a class or silent object, in a fixed
    order: the emoji glyph first, then each installed Iconify set's icons, then GCompris's."""
    code = EMOJI.get(name)
    icons = CLASS_ICONS.get(name) or (DISTRACTOR_ICONS[name],)
    labels = [f"{EMOJI_PREFIX}{code:04X}"] if code is not None else []
    for set_name in ICON_SETS:
        data = _icon_set(set_name)
        if data is not None:
            labels += [f"{ICONIFY_PREFIX}{set_name}/{i}" for i in icons if _icon_entry(data, i)]
    drawing = GCOMPRIS_DRAWINGS.get(name)
    if drawing and _gcompris_svg(drawing) is not None:
        labels.append(f"{GCOMPRIS_PREFIX}{drawing}")
    return labels


def holdout_pictures(name: str) -> list[str]:
    """Paths of the held-out pictures of a class ([] when the package has none of it).
    Raises when the package is not installed: installing it is the user's choice."""
    if not TUXPAINT_MUSIC.is_dir():
        raise PixelPlayerError(
            f"the held-out pictures need Debian's {HOLDOUT_PACKAGE} "
            f"(apt-get install {HOLDOUT_PACKAGE})"
        )
    return [
        str(TUXPAINT_MUSIC / p)
        for p in HOLDOUT_PICTURES.get(name, ())
        if (TUXPAINT_MUSIC / p).is_file()
    ]


def source_of(label: str) -> dict[str, str]:
    """Package, licence and maker of a picture, for the meta file."""
    if label.startswith(EMOJI_PREFIX):
        return dict(EMOJI_SOURCE)
    if label.startswith(ICONIFY_PREFIX):
        s = ICON_SETS[_set_name(label)]
        return {"package": f"npm:{s.package}", "licence": s.licence, "maker": s.maker}
    if label.startswith(GCOMPRIS_PREFIX):
        return dict(GCOMPRIS_SOURCE)
    if label.startswith(str(TUXPAINT_MUSIC)):
        return {"package": f"debian:{HOLDOUT_PACKAGE}", "licence": "GPL-2.0+", "maker": "Tux Paint"}
    return {"package": "user", "licence": "", "maker": ""}


def is_mono(label: str) -> bool:
    """A silhouette (one colour): the generator colours it."""
    return label.startswith(ICONIFY_PREFIX) and ICON_SETS[_set_name(label)].mono


def _set_name(label: str) -> str:
    return label[len(ICONIFY_PREFIX) :].split("/")[0]


# --- drawing a label as an RGBA picture ----------------------------------------------------------

_EMOJI: list[ImageFont.FreeTypeFont] = []


@functools.lru_cache(maxsize=512)
def picture(label: str) -> Image.Image:
    """The RGBA picture of a label, cropped to its opaque part; drawn once per process.
    Shared between calls: copy before changing it."""
    if label.startswith(EMOJI_PREFIX):
        im = _emoji(int(label[len(EMOJI_PREFIX) :], 16))
    elif label.startswith(ICONIFY_PREFIX):
        im = _iconify(*label[len(ICONIFY_PREFIX) :].split("/", 1))
    elif label.startswith(GCOMPRIS_PREFIX):
        im = _gcompris_drawing(label[len(GCOMPRIS_PREFIX) :])
    elif label.lower().endswith(".svg"):
        im = _svg(Path(label).read_bytes().decode("utf-8", "replace"), label)
    else:
        im = _user_picture(Path(label))
    return crop_alpha(im, label)


def _emoji(code: int) -> Image.Image:
    if not _EMOJI:
        if not EMOJI_FONT.is_file():
            raise PixelPlayerError(
                f"{EMOJI_FONT}: no emoji font for the default pictures; "
                "apt-get install fonts-noto-color-emoji, or give --images DIR"
            )
        _EMOJI.append(ImageFont.truetype(str(EMOJI_FONT), EMOJI_PPEM))
    font = _EMOJI[0]
    x0, y0, x1, y1 = font.getbbox(chr(code))
    im = Image.new("RGBA", (x1 + 8, y1 + 8), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((4, 4), chr(code), font=font, embedded_color=True)
    return im


def _iconify(set_name: str, icon: str) -> Image.Image:
    data = _icon_set(set_name)
    entry = None if data is None else _icon_entry(data, icon)
    if entry is None:
        raise PixelPlayerError(
            f"{ICONIFY_PREFIX}{set_name}/{icon}: no such icon installed "
            f"(npm install @iconify-json/{set_name}: scripts/setup.sh does it)"
        )
    w, h = entry.get("width", data.get("width", 16)), entry.get("height", data.get("height", 16))
    left, top = entry.get("left", data.get("left", 0)), entry.get("top", data.get("top", 0))
    body = entry["body"].replace("currentColor", "#000")  # silhouettes: coloured later
    if entry.get("hFlip"):
        body = f'<g transform="translate({2 * left + w} 0) scale(-1 1)">{body}</g>'
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="{left} {top} {w} {h}">{body}</svg>'
    )
    return _svg(svg, f"{set_name}/{icon}", aspect=w / h)


def _gcompris_drawing(name: str) -> Image.Image:
    svg = _gcompris_svg(name)
    if svg is None:
        raise PixelPlayerError(
            f"{GCOMPRIS_PREFIX}{name}: no such drawing installed "
            "(apt-get install gcompris-qt-data: scripts/setup.sh does it)"
        )
    return _svg(svg.decode("utf-8", "replace"), f"{GCOMPRIS_PREFIX}{name}")


def _svg(svg: str, name: str, aspect: float = 1.0) -> Image.Image:
    import resvg_py

    try:
        png = resvg_py.svg_to_bytes(
            svg_string=svg,
            width=int(RENDER_PX * min(aspect, 1)),
            height=int(RENDER_PX / max(aspect, 1)),
            skip_system_fonts=True,
        )
    except Exception as exc:  # resvg raises its own kinds for malformed SVG
        raise PixelPlayerError(f"{name}: cannot draw this SVG ({exc})") from exc
    return Image.open(io.BytesIO(bytes(png))).convert("RGBA")


def _user_picture(path: Path) -> Image.Image:
    """A picture file as RGBA: a cut-out keeps its alpha, a photo is an opaque rectangle."""
    try:
        with Image.open(path) as src:
            if src.width * src.height > MAX_PICTURE_PIXELS:
                raise PixelPlayerError(
                    f"{path}: the picture is {src.width}x{src.height} px; give one under "
                    f"{MAX_PICTURE_PIXELS // 1_000_000} megapixels (it is drawn at most 512 px)"
                )
            im = _eight_bit(ImageOps.exif_transpose(src))
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            im = im.convert("RGBA") if has_alpha else im.convert("RGB").convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        detail = " ".join(str(exc).split())
        raise PixelPlayerError(f"{path}: unreadable image ({detail})") from exc
    im.thumbnail((512, 512), Image.LANCZOS)  # sprites are never drawn larger
    return im


def _eight_bit(im: Image.Image) -> Image.Image:
    """16-bit and float grey ("I;16", "I", "F") as 8-bit "L": Pillow's own conversion clips
    every value above 255, so most such pictures would turn white."""
    if im.mode not in ("I;16", "I;16B", "I;16L", "I", "F"):
        return im
    values = np.asarray(im, np.float64)
    top = 65535.0 if im.mode.startswith("I;16") else max(float(np.nanmax(values)), 1.0)
    scaled = np.clip(np.nan_to_num(values) / top * 255.0, 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), "L")


def crop_alpha(im: Image.Image, name: str) -> Image.Image:
    bbox = im.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if bbox is None:
        raise PixelPlayerError(f"{name}: the picture is fully transparent")
    return im.crop(bbox)


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


# --- appearance: the same picture seen differently -----------------------------------------------


def random_pose(rng: np.random.Generator, mono: bool) -> dict[str, float | bool | list[int]]:
    """How a clip shows a picture: mirrored, turned, recoloured and lit from one side."""
    pose: dict[str, float | bool | list[int]] = {
        "flip": bool(rng.random() < 0.5),
        "angle": round(float(rng.uniform(-25, 25)), 2),  # degrees, counter-clockwise
        "hue": round(float(rng.uniform(-0.06, 0.06)), 3),  # a turn of the colour wheel
        "saturation": round(float(rng.uniform(0.6, 1.3)), 3),
        "brightness": round(float(rng.uniform(0.7, 1.2)), 3),
        "light": round(float(rng.uniform(-0.25, 0.25)), 3),  # brighter on one side
        "light_angle": round(float(rng.uniform(0, 360)), 1),
    }
    if mono:
        hsv = (rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.25, 0.85))
        pose["tint"] = [int(c * 255) for c in colorsys.hsv_to_rgb(*hsv)]
    return pose


def posed(label: str, pose: dict | None) -> Image.Image:
    """The picture of `label` as a clip shows it (`random_pose`); shape changes (flip, angle)
    come first, so `posed_alpha` can redo them alone."""
    im = picture(label)
    if not pose:
        return im
    im = _shape(im, pose)
    rgb, alpha = np.asarray(im, np.float32)[..., :3], np.asarray(im)[..., 3]
    if "tint" in pose:  # a silhouette: one colour, keeping its inner shading
        grey = rgb.mean(-1, keepdims=True) / 255.0
        rgb = np.asarray(pose["tint"], np.float32) * (0.55 + 0.45 * grey) + 90 * grey
    rgb = _recolour(rgb, float(pose["hue"]), float(pose["saturation"]))
    h, w = alpha.shape
    a = np.deg2rad(float(pose["light_angle"]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(a) * (xx / max(w - 1, 1) - 0.5) + np.sin(a) * (yy / max(h - 1, 1) - 0.5)) * 2
    rgb = rgb * (float(pose["brightness"]) * (1 + float(pose["light"]) * ramp))[..., None]
    out = np.concatenate([np.clip(rgb, 0, 255), alpha[..., None]], -1).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


def _shape(im: Image.Image, pose: dict) -> Image.Image:
    if pose.get("flip"):
        im = ImageOps.mirror(im)
    if pose.get("angle"):
        im = im.rotate(float(pose["angle"]), Image.BICUBIC, expand=True)
        im = crop_alpha(im, "rotated picture")
    return im


@functools.lru_cache(maxsize=256)
def _shaped_alpha(label: str, flip: bool, angle: float) -> Image.Image:
    return _shape(picture(label), {"flip": flip, "angle": angle}).getchannel("A")


def posed_alpha(label: str, pose: dict | None) -> Image.Image:
    """The "L" opacity of the posed picture (colour changes do not move it)."""
    pose = pose or {}
    return _shaped_alpha(label, bool(pose.get("flip")), float(pose.get("angle", 0.0)))


def _recolour(rgb: np.ndarray, hue: float, saturation: float) -> np.ndarray:
    """Turn the hue and scale the saturation of (H, W, 3) float RGB in [0, 255]."""
    if hue == 0 and saturation == 1:
        return rgb
    hsv = np.asarray(
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).convert("HSV"), np.float32
    )
    hsv[..., 0] = (hsv[..., 0] + hue * 255) % 255
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    back = Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")
    return np.asarray(back, np.float32)
