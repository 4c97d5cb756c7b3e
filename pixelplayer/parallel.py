"""Process pools for batch jobs (synth, prepare).

Workers are spawned, not forked: a fork taken after torch has started its thread pool can hang
in the child (the parent's locks are copied held), which is exactly the state of a test run
or a notebook that already used torch.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator


def worker_count(workers: int | None, tasks: int) -> int:
    """The requested count (default: every core), never more than there are tasks."""
    return max(1, min(workers or os.cpu_count() or 1, tasks))


def imap_unordered(
    fn: Callable, tasks: Iterable, workers: int, initializer=None, initargs: tuple = ()
) -> Iterator:
    """fn over tasks in `workers` spawned processes (in this process when one suffices)."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=initializer, initargs=initargs) as pool:
        yield from pool.imap_unordered(fn, tasks, chunksize=1)
