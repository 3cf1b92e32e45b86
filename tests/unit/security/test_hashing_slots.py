"""At most a fixed number of argon2 computations run at once in one process."""

from __future__ import annotations

import threading
import time

import pytest

from idp.accounts.passwords import HashingBusy, HashingSlots, PasswordHasher
from idp.config import Argon2Parameters
from tests.hashing_support import all_slots_taken

CHEAP = Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1)


class SlowHasher:
    """A fake hash that takes a while and notes how many ran at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.finished = 0

    def hash(self) -> str:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.02)
        with self._lock:
            self.running -= 1
            self.finished += 1
        return "$argon2id$fake"


def test_no_more_hashes_run_at_once_than_the_process_allows() -> None:
    slots, hasher = HashingSlots(3, wait_seconds=30), SlowHasher()
    threads = [threading.Thread(target=slots.run, args=(hasher.hash,)) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.most_at_once == 3
    assert hasher.finished == 40


def test_a_hash_waiting_too_long_for_its_turn_is_refused_as_overload() -> None:
    slots, hasher = HashingSlots(2, wait_seconds=0.05), SlowHasher()
    with all_slots_taken(slots, 2), pytest.raises(HashingBusy):
        slots.run(hasher.hash)
    assert hasher.finished == 0
    assert slots.run(hasher.hash) == "$argon2id$fake"


def test_every_password_hash_and_verification_needs_a_slot() -> None:
    slots = HashingSlots(1, wait_seconds=0.05)
    hasher = PasswordHasher(CHEAP, slots)
    stored = hasher.hash("Kräftig-Grün 42")
    with all_slots_taken(slots):
        with pytest.raises(HashingBusy):
            hasher.hash("Kräftig-Grün 42")
        with pytest.raises(HashingBusy):
            hasher.verify(stored, "Kräftig-Grün 42")
        with pytest.raises(HashingBusy):
            hasher.verify(None, "an unknown user's guess")
    assert hasher.verify(stored, "Kräftig-Grün 42")
