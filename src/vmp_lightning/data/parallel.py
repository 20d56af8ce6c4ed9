"""Long per-file work (preparing, checking, generating videos) over worker processes, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_with_progress(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int = 1,
    description: str = "",
    progress: bool | None = None,
) -> list[Result]:
    """``[function(item) for item in items]``, in the items' order, over ``workers`` processes (``function`` must
    be picklable: a module-level function or a partial of one), with a bar of counts, rate and ETA on stderr
    (``progress=None``: only on a terminal). The results are the same whatever ``workers`` is."""
    items = list(items)
    with tqdm(
        total=len(items), desc=description, unit="file", disable=None if progress is None else not progress
    ) as bar:
        if workers <= 1 or len(items) <= 1:
            results = []
            for item in items:
                results.append(function(item))
                bar.update()
            return results
        with ProcessPoolExecutor(min(workers, len(items))) as pool:
            futures = [pool.submit(function, item) for item in items]
            for _ in as_completed(futures):
                bar.update()
            return [future.result() for future in futures]
