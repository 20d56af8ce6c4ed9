"""Long per-file work (preparing, checking, generating videos) over worker processes, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from tqdm import tqdm
from tqdm.contrib.concurrent import process_map

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_with_progress(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int = 1,
    description: str = "",
    progress: bool | None = None,
) -> list[Result]:
    """``[function(item) for item in items]``, in the items' order, over ``workers`` processes (tqdm's
    `process_map`; ``function`` must be picklable: a module-level function or a partial of one), with a bar of
    counts, rate and ETA on stderr (``progress=None``: only on a terminal). The results are the same whatever
    ``workers`` is; one worker (or one item) runs in this process."""
    items = list(items)
    bar = {"desc": description, "unit": "file", "disable": None if progress is None else not progress}
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in tqdm(items, **bar)]
    return process_map(function, items, max_workers=min(workers, len(items)), chunksize=1, **bar)
