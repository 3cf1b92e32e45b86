"""Helpers of the tests of a busy IdP: every argon2 slot taken, as a flood of hashes would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from idp.accounts.passwords import HashingSlots


@contextmanager
def all_slots_taken(slots: HashingSlots, count: int = 1) -> Iterator[None]:
    """Hold ``count`` slots (as hashes in other threads would) until the block ends."""
    release = threading.Event()
    holding = threading.Barrier(count + 1)

    def hold() -> None:
        holding.wait()
        release.wait()

    threads = [threading.Thread(target=slots.run, args=(hold,)) for _ in range(count)]
    for thread in threads:
        thread.start()
    holding.wait()
    try:
        yield
    finally:
        release.set()
        for thread in threads:
            thread.join()
