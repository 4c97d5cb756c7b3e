"""Files written whole: a reader, or a run resumed after a kill, never finds half a file under
its final name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write, renamed onto `path` when the block ends.

    The temporary name keeps the suffix (`index.part.csv`), so writers that choose a format by
    the name (PyAV) still do. If the block raises, the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.part{path.suffix}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_text_atomic(path: str | Path, text: str) -> None:
    """`Path.write_text`, whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
