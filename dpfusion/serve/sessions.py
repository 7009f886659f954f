"""Per-tab state: a random id, one bitstream, its original, a few decoded images; all of it expires."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from dpfusion.bitstream import DpfFile
from dpfusion.session import DecodeSession


@dataclass
class Session:
    """What one page (browser tab) works on; the page holds the id in memory, never in a cookie.

    ``decoder`` is the bitstream opened once (parsed, entropy-decoded): every tau the slider asks
    for renders from it."""

    data: bytes
    file: DpfFile
    decoder: DecodeSession
    original: np.ndarray | None
    stem: str
    cache_size: int
    notes: list[str] = field(default_factory=list)
    images: OrderedDict[Hashable, np.ndarray] = field(default_factory=OrderedDict)

    def cached(self, key: Hashable) -> np.ndarray | None:
        image = self.images.get(key)
        if image is not None:
            self.images.move_to_end(key)
        return image

    def remember(self, key: Hashable, image: np.ndarray) -> None:
        self.images[key] = image
        self.images.move_to_end(key)
        while len(self.images) > self.cache_size:
            self.images.popitem(last=False)


class SessionStore:
    """Sessions by id, dropped after ``ttl_s`` idle seconds or when more than ``max_sessions`` exist."""

    def __init__(self, ttl_s: float, max_sessions: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: Session) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._expire()
            self._sessions[key] = (session, self._clock())
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return key

    def get(self, key: str) -> Session | None:
        """The session, its idle clock restarted; None when unknown or expired."""
        with self._lock:
            self._expire()
            entry = self._sessions.get(key)
            if entry is None:
                return None
            self._sessions[key] = (entry[0], self._clock())
            self._sessions.move_to_end(key)
            return entry[0]

    def replace(self, key: str, session: Session) -> None:
        with self._lock:
            if key in self._sessions:
                self._sessions[key] = (session, self._clock())

    def remove(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def _expire(self) -> None:
        deadline = self._clock() - self.ttl_s
        while self._sessions and next(iter(self._sessions.values()))[1] < deadline:
            self._sessions.popitem(last=False)
