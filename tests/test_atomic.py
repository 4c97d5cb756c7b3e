from pathlib import Path

import pytest

from pixelplayer.atomic import atomic_path, write_text_atomic


def test_a_file_appears_whole_under_its_name(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "index.csv"
    with atomic_path(path) as tmp:
        assert tmp.name == "index.csv.part"  # a search for *.csv never finds a killed write
        tmp.write_text("a,b\n")
        assert not path.exists()  # nothing under the final name while it is written
    assert path.read_text() == "a,b\n"
    assert list(path.parent.iterdir()) == [path]
    with atomic_path(tmp_path / "clip.mp4", keep_suffix=True) as tmp:
        assert tmp.name == "clip.part.mp4"  # PyAV picks the container by the suffix
        tmp.write_bytes(b"")


def test_a_failed_write_leaves_the_old_file_and_no_part(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]
