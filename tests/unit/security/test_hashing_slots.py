"""At most a fixed number of argon2 computations run at once in one process, in threads of
lower CPU priority than the requests' (issue 12: SSO must not queue behind hashing)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from idp.accounts.passwords import HashingBusy, HashingSlots, PasswordHasher
from idp.config import Argon2Parameters, ConfigError, load_config
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


@pytest.mark.parametrize("nice", [0, 10])
def test_no_more_hashes_run_at_once_than_the_process_allows(nice: int) -> None:
    slots, hasher = HashingSlots(3, wait_seconds=30, nice=nice), SlowHasher()
    threads = [threading.Thread(target=slots.run, args=(hasher.hash,)) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.most_at_once == 3
    assert hasher.finished == 40


@pytest.mark.parametrize("nice", [0, 10])
def test_a_hash_waiting_too_long_for_its_turn_is_refused_as_overload(nice: int) -> None:
    slots, hasher = HashingSlots(2, wait_seconds=0.05, nice=nice), SlowHasher()
    with all_slots_taken(slots, 2), pytest.raises(HashingBusy):
        slots.run(hasher.hash)
    assert hasher.finished == 0
    assert slots.run(hasher.hash) == "$argon2id$fake"


@pytest.mark.parametrize("nice", [0, 10])
def test_every_password_hash_and_verification_needs_a_slot(nice: int) -> None:
    slots = HashingSlots(1, wait_seconds=0.05, nice=nice)
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


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_hashes_run_in_threads_of_lower_priority_and_the_request_thread_keeps_its_own() -> None:
    slots = HashingSlots(2, wait_seconds=1, nice=7)
    own = _niceness()
    seen = slots.run(lambda: (threading.get_native_id(), _niceness()))
    assert seen[0] != threading.get_native_id()
    assert seen[1] == min(19, own + 7)
    assert _niceness() == own
    # nice=0: the request's own thread, as before.
    assert HashingSlots(1, wait_seconds=1).run(threading.get_native_id) == \
        threading.get_native_id()


def test_a_failing_hash_raises_in_the_caller_and_frees_its_slot() -> None:
    slots = HashingSlots(1, wait_seconds=0.05, nice=5)

    def broken() -> str:
        raise ValueError("argon2 said no")

    with pytest.raises(ValueError, match="argon2 said no"):
        slots.run(broken)
    assert slots.run(lambda: "free again") == "free again"


def test_a_priority_outside_what_nice_allows_is_refused() -> None:
    with pytest.raises(ValueError):
        HashingSlots(1, wait_seconds=1, nice=20)


# On one CPU: four argon2 hashes (GIL released, as in production) keep running through the slots
# while the main thread, a cheap request, does a piece of Python work. It prints the share of the
# process's CPU time that work got meanwhile (a share, so that other load on the machine does not
# count): at the hashes' priority the CPU is shared five ways (~0.2).
_CHEAP_BESIDE_HASHES = """
import os, statistics, sys, threading, time
from argon2.low_level import Type, hash_secret_raw
from idp.accounts.passwords import HashingSlots

os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
slots, stop, started = HashingSlots(4, 5, int(sys.argv[1])), threading.Event(), threading.Barrier(5)

def hashing():
    started.wait()
    while not stop.is_set():
        hash_secret_raw(b"password", b"somesalt", 8, 8192, 1, 32, Type.ID)  # ~50 ms

def cheap():
    process, own = time.process_time(), time.thread_time()
    sum(i * i for i in range(400_000))
    return (time.thread_time() - own) / (time.process_time() - process)

threads = [threading.Thread(target=slots.run, args=(hashing,)) for _ in range(4)]
for thread in threads:
    thread.start()
started.wait()
time.sleep(0.1)
print(statistics.median(cheap() for _ in range(3)))
stop.set()
for thread in threads:
    thread.join()
"""


def _share_beside_hashes(nice: int) -> float:
    result = subprocess.run([sys.executable, "-c", _CHEAP_BESIDE_HASHES, str(nice)],
                            capture_output=True, text=True, timeout=60, check=True)
    return float(result.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_a_cheap_request_keeps_the_cpu_while_four_hashes_run_beside_it() -> None:
    # The same work beside hashes at its own priority (nice=0, the behaviour before) shows that
    # the measurement can tell: there it gets about a fifth of the CPU.
    assert _share_beside_hashes(0) < 0.5
    assert _share_beside_hashes(19) > 0.75


def test_the_priority_of_the_hashes_is_a_setting_within_what_nice_allows(tmp_path: Path) -> None:
    def loaded(raw: str | None) -> int:
        env = {"IDP_ENV": "development"} | ({"IDP_ARGON2_NICE": raw} if raw is not None else {})
        return load_config(env, instance_path=tmp_path, secret_key="s" * 40).argon2_nice

    assert loaded(None) == 19
    assert loaded("0") == 0
    for wrong in ("20", "-1", "lower"):
        with pytest.raises(ConfigError, match="IDP_ARGON2_NICE"):
            loaded(wrong)
