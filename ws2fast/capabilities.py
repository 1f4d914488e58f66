"""What this process has learnt about origins' support for WebSockets over HTTP/2, so that
``connect(uri, early="auto")`` speculates (sends its extended CONNECT before the server's
SETTINGS) only where that is likely to work, like a browser's Alt-Svc cache.

An origin is ``(scheme, host, port)``; what is known of it is one of:

- ``ADVERTISED``: its SETTINGS carried ENABLE_CONNECT_PROTOCOL = 1 (speculation may work);
- ``EARLY``: it accepted a speculative extended CONNECT;
- ``STRICT``: it advertises the setting but refused a speculative CONNECT (an HTTP/2 stack
  that applies its SETTINGS only once they are acknowledged does that): do not speculate;
- ``NONE``: its HTTP/2 SETTINGS did not allow extended CONNECT: use HTTP/1.1.

Entries expire after ``lifetime`` seconds; at most ``max_entries`` are kept (the oldest go
first).  :data:`capability_cache` is the process-wide instance ``connect`` uses;
``capability_cache.clear()`` forgets everything.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["CapabilityCache", "capability_cache", "ADVERTISED", "EARLY", "STRICT", "NONE"]

ADVERTISED, EARLY, STRICT, NONE = "advertised", "early", "strict", "none"
_KINDS = (ADVERTISED, EARLY, STRICT, NONE)

Origin = tuple[str, str, int]


class CapabilityCache:
    """Origin -> what it supports, with a lifetime and a size bound."""

    def __init__(self, max_entries: int = 1024, lifetime: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive int, not {max_entries!r}")
        if not isinstance(lifetime, (int, float)) or not lifetime > 0:
            raise ValueError(f"lifetime must be a positive number of seconds, not {lifetime!r}")
        self.max_entries = max_entries
        self.lifetime = float(lifetime)
        self._clock = clock
        self._entries: OrderedDict[Origin, tuple[str, float]] = OrderedDict()

    @staticmethod
    def origin(scheme: str, host: str, port: int) -> Origin:
        """The cache key (``ws``/``http`` and ``wss``/``https`` count as one origin each)."""
        secure = scheme in ("wss", "https")
        return ("https" if secure else "http", host.lower(), int(port))

    def get(self, origin: Origin) -> str | None:
        """What is known of ``origin`` (one of the module's constants), or None."""
        entry = self._entries.get(origin)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            del self._entries[origin]
            return None
        return entry[0]

    def should_speculate(self, origin: Origin) -> bool:
        """Whether ``early="auto"`` sends its extended CONNECT before the server's SETTINGS."""
        return self.get(origin) in (ADVERTISED, EARLY)

    def learn(self, origin: Origin, kind: str) -> None:
        """Record what ``origin`` showed.  ``ADVERTISED`` does not overwrite what a speculation
        taught (``EARLY`` or ``STRICT``): it is what every connection shows."""
        if kind not in _KINDS:
            raise ValueError(f"unknown capability {kind!r}")
        if kind == ADVERTISED and self.get(origin) in (EARLY, STRICT):
            kind = self._entries[origin][0]
        self._entries.pop(origin, None)
        self._entries[origin] = (kind, self._clock() + self.lifetime)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, origin: Origin) -> None:
        self._entries.pop(origin, None)

    def clear(self) -> None:
        """Forget every origin."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: the cache ``ws2fast.connect`` and ``ws2fast.Client`` use
capability_cache = CapabilityCache()
