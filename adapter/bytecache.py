"""A least-recently-used cache bounded by the memory its entries cost, not by their number.

Counting entries let a client that sends large distinct selectors grow the adapter without bound: 4,096
"entries" of 9 KB selectors parse into about 350 MB. Each entry here is charged an estimate of its
resident size (the caller's ``cost``), and the least recently used entries go when the total passes the
budget. An entry that alone costs more than a quarter of the budget is built and returned but not kept,
so one huge request cannot flush everything the HPAs keep asking for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteBoundedCache(Generic[K, V]):
    def __init__(self, capacity_bytes: int, cost: Callable[[K, V], int]) -> None:
        if capacity_bytes < 0:
            raise ValueError("capacity_bytes must not be negative")
        self.capacity_bytes = capacity_bytes
        self._cost = cost
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V) -> None:
        charge = self._cost(key, value)
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if charge > self.capacity_bytes // 4:
            return
        self._entries[key] = (value, charge)
        self.bytes += charge
        while self.bytes > self.capacity_bytes:
            _, (_, freed) = self._entries.popitem(last=False)
            self.bytes -= freed
            self.evictions += 1

    def get_or_build(self, key: K, build: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            value = build()
            self.put(key, value)
        return value
