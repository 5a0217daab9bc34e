"""Ordered collections that page in O(page size), whatever their length.

TensorPix documents no list order. The emulator returns newest first by default, and
can return oldest first or a seeded shuffle so that client code relying on an order is
caught.
"""

from __future__ import annotations

import random

LIST_ORDERS: tuple[str, ...] = ("newest", "oldest", "shuffled")


class Listing:
    """Object ids in creation order, with slicing by any of the list orders.

    The shuffled order is one seeded permutation, rebuilt only when the collection
    changes, so paging through it is consistent.
    """

    def __init__(self, seed: int) -> None:
        self._ids: list[int] = []
        self._seed = seed
        self._shuffled: list[int] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, object_id: int) -> None:
        self._ids.append(object_id)
        self._shuffled = None

    def remove(self, object_id: int) -> None:
        self._ids.remove(object_id)
        self._shuffled = None

    def page(self, order: str, offset: int, limit: int) -> list[int]:
        total = len(self._ids)
        start, stop = min(offset, total), min(offset + limit, total)
        if order == "oldest":
            return self._ids[start:stop]
        if order == "newest":
            return [self._ids[total - 1 - index] for index in range(start, stop)]
        if self._shuffled is None:
            self._shuffled = list(self._ids)
            random.Random(self._seed).shuffle(self._shuffled)
        return self._shuffled[start:stop]
