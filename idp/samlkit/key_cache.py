"""xmlsec keys loaded once per content, shared by signing, verification and encryption."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import xmlsec

_Cached = TypeVar("_Cached", xmlsec.Key, xmlsec.KeysManager)


class KeyCache:
    """Keys loaded from files, by content hash: pysaml2 writes certificates to new temp files."""

    def __init__(self, size: int = 32) -> None:
        self._keys: OrderedDict[tuple[int, bytes], xmlsec.Key] = OrderedDict()
        self._managers: OrderedDict[tuple[int, bytes], xmlsec.KeysManager] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def load(self, path: str | os.PathLike[str], key_format: int) -> xmlsec.Key:
        """The key in the file ``path``; raises ``OSError`` or ``xmlsec.Error``."""
        return self.load_data(Path(path).read_bytes(), key_format)

    def load_data(self, data: bytes, key_format: int) -> xmlsec.Key:
        """The key in ``data``; raises ``xmlsec.Error``."""
        # Contexts and managers copy the key they are given; the cached one is only read.
        return self._cached(self._keys, (key_format, hashlib.sha256(data).digest()),
                            lambda: xmlsec.Key.from_memory(data, key_format, None))

    def receiver(self, data: bytes, key_format: int) -> xmlsec.KeysManager:
        """A keys manager holding only the public key in ``data``, to encrypt for it.

        Made once per key: a new manager costs ~6 ms (xmlsec sets up an X509 store for it),
        four times the rest of an encryption. Encrypting only reads it (the EncryptedKey's
        KeyInfo, which xmlsec would resolve, is added afterwards).
        """
        def make() -> xmlsec.KeysManager:
            manager = xmlsec.KeysManager()
            manager.add_key(self.load_data(data, key_format))
            return manager

        return self._cached(self._managers, (key_format, hashlib.sha256(data).digest()), make)

    def _cached(self, store: OrderedDict[tuple[int, bytes], _Cached], index: tuple[int, bytes],
                make: Callable[[], _Cached]) -> _Cached:
        with self._lock:
            value = store.get(index)
            if value is not None:
                store.move_to_end(index)
                return value
        value = make()
        with self._lock:
            store[index] = value
            while len(store) > self._size:
                store.popitem(last=False)
        return value
