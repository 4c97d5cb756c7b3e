"""Files written whole: a reader, or a run resumed after a kill, never finds half a file under
its final name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write, renamed onto `path` when the block ends.

    The temporary name is `index.csv.part`, which no search for `*.csv` finds if a killed run
    leaves it; `keep_suffix` gives `clip.part.mp4` for writers that choose a format by the name
    (PyAV). If the block raises, the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = f"{path.stem}.part{path.suffix}" if keep_suffix else f"{path.name}.part"
    tmp = path.with_name(name)
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
