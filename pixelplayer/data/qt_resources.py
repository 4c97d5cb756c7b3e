"""Read the files packed in a compiled Qt resource file (.rcc), as GCompris ships its pictures.

The format (Qt's rcc, versions 1 to 3): a "qres" header giving the offsets of a tree of nodes,
of the file data and of the names. A directory node lists its children; a file node points at
its data, zlib-compressed when its flag says so (4-byte big-endian length, then the stream).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pixelplayer.errors import PixelPlayerError

COMPRESSED, DIRECTORY, ZSTD = 0x01, 0x02, 0x04


def read_qt_resources(path: str | Path) -> dict[str, bytes]:
    """Every file of an .rcc as {"/its/path": bytes}."""
    data = Path(path).read_bytes()
    try:
        if data[:4] != b"qres":
            raise ValueError("no 'qres' header")
        version, tree, blobs, names = struct.unpack(">iiii", data[4:20])
        node_size = 14 if version == 1 else 22  # version 2 adds a last-modified time
        files: dict[str, bytes] = {}
        todo = [(0, "")]  # (node index, parent path)
        while todo:
            index, parent = todo.pop()
            at = tree + index * node_size
            name_at, flags = struct.unpack(">iH", data[at : at + 6])
            name = _name(data, names + name_at) if index else ""
            if flags & DIRECTORY:
                count, first = struct.unpack(">ii", data[at + 6 : at + 14])
                todo += [(child, f"{parent}{name}/") for child in range(first, first + count)]
                continue
            (offset,) = struct.unpack(">i", data[at + 10 : at + 14])
            (size,) = struct.unpack(">i", data[blobs + offset : blobs + offset + 4])
            blob = data[blobs + offset + 4 : blobs + offset + 4 + size]
            if flags & ZSTD:
                raise ValueError(f"{parent}{name} is zstd-compressed, which is not read here")
            files[f"{parent}{name}"] = zlib.decompress(blob[4:]) if flags & COMPRESSED else blob
    except (ValueError, struct.error, zlib.error) as exc:
        raise PixelPlayerError(f"{path}: not a readable Qt resource file ({exc})") from exc
    return files


def _name(data: bytes, at: int) -> str:
    (length,) = struct.unpack(">H", data[at : at + 2])  # then a 4-byte hash, then UTF-16
    return data[at + 6 : at + 6 + 2 * length].decode("utf-16-be")
