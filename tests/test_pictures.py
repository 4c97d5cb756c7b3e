"""The training pictures' sources: GCompris's drawings read from its Qt resource file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from pixelplayer.data import pictures
from pixelplayer.data.qt_resources import read_qt_resources
from pixelplayer.data.synth import clip
from pixelplayer.errors import PixelPlayerError

SQUARE = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect x="5" y="5" \
width="30" height="10" fill="#a52"/></svg>'


def write_rcc(path: Path, files: dict[str, bytes], compress: frozenset = frozenset()) -> Path:
    """A version-2 Qt resource file holding `files` ({"dir/sub/name": bytes}) laid out as Qt's
    rcc does: nodes breadth-first, each directory's children contiguous."""
    root: dict = {}
    for name in files:
        *dirs, leaf = name.split("/")
        node = root
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = name
    names, blobs, nodes = bytearray(), bytearray(), [b""]

    def name_at(name: str) -> int:
        names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return len(names) - 6 - 2 * len(name)

    todo = [(0, "", root)]  # (node index, name, children)
    while todo:
        index, name, children = todo.pop(0)
        first = len(nodes)
        nodes += [b""] * len(children)
        nodes[index] = struct.pack(">iHiiq", name_at(name) if index else 0, 2, len(children),
                                   first, 0)  # fmt: skip
        for at, (key, value) in enumerate(sorted(children.items()), first):
            if isinstance(value, dict):
                todo.append((at, key, value))
                continue
            blob, flags = files[value], 0
            if value in compress:
                blob, flags = struct.pack(">I", len(blob)) + zlib.compress(blob), 1
            nodes[at] = struct.pack(">iHhhiq", name_at(key), flags, 0, 0, len(blobs), 0)
            blobs.extend(struct.pack(">i", len(blob)) + blob)
    tree_at = 20
    blobs_at = tree_at + 22 * len(nodes)
    header = b"qres" + struct.pack(">iiii", 2, tree_at, blobs_at, blobs_at + len(blobs))
    path.write_bytes(header + b"".join(nodes) + bytes(blobs) + bytes(names))
    return path


def test_qt_resources_read_back_plain_and_compressed(tmp_path):
    files = {"a/b/one.svg": SQUARE, "a/two.txt": b"plain text " * 50, "three": b""}
    rcc = write_rcc(tmp_path / "x.rcc", files, compress=frozenset({"a/two.txt"}))
    assert read_qt_resources(rcc) == {f"/{k}": v for k, v in files.items()}
    (tmp_path / "cut.rcc").write_bytes(rcc.read_bytes()[:40])  # its tree cut short
    (tmp_path / "square.svg").write_bytes(SQUARE)  # no Qt resource file at all
    for bad in ("cut.rcc", "square.svg"):
        with pytest.raises(PixelPlayerError, match="not a readable Qt resource file"):
            read_qt_resources(tmp_path / bad)


@pytest.fixture
def gcompris(tmp_path, monkeypatch) -> Path:
    """A GCompris instruments resource holding one drawing, the violin's."""
    rcc = write_rcc(tmp_path / "instruments.rcc", {
        "gcompris/src/activities/instruments/resource/violin.svg": SQUARE,
    })  # fmt: skip
    monkeypatch.setattr(pictures, "GCOMPRIS_RCC", rcc)
    pictures._gcompris.cache_clear()
    pictures.picture.cache_clear()  # drawn once per process: not the installed drawing
    yield rcc
    pictures._gcompris.cache_clear()
    pictures.picture.cache_clear()


def test_gcompris_drawing_is_a_training_picture_with_its_source(gcompris):
    labels = pictures.training_pictures("violin")
    assert labels[-1] == "gcompris:violin"
    assert "gcompris:cello" not in pictures.training_pictures("cello")  # not in this file
    assert pictures.source_of("gcompris:violin")["package"] == "debian:gcompris-qt-data"
    im = np.asarray(pictures.picture("gcompris:violin"))
    assert im.shape[1] > im.shape[0] > 0 and (im[..., 3] > 0).all()  # cropped to the rectangle
    with pytest.raises(PixelPlayerError, match="gcompris-qt-data"):
        pictures.picture("gcompris:tuba")


def test_the_shaded_drawing_is_drawn_in_a_third_of_the_clips_or_more(gcompris):
    rng = np.random.default_rng(0)
    n = len(pictures.training_pictures("violin"))
    picks = [clip._pick_picture("violin", None, False, rng) for _ in range(3000)]
    share = np.mean([p == "gcompris:violin" for p in picks])
    expected = clip.SHADED_SHARE + (1 - clip.SHADED_SHARE) / n
    assert abs(share - expected) < 0.03
    assert len(set(picks)) == n  # the other pictures are still drawn


def test_without_gcompris_the_library_stands(monkeypatch, tmp_path):
    monkeypatch.setattr(pictures, "GCOMPRIS_RCC", tmp_path / "none.rcc")
    pictures._gcompris.cache_clear()
    try:
        assert not any(x.startswith("gcompris:") for x in pictures.training_pictures("violin"))
    finally:
        pictures._gcompris.cache_clear()
