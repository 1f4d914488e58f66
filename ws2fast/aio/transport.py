"""Cleartext TCP through ws2fast's compiled socket transport (``Config.native_transport``, on
by default; ``WS2FAST_NATIVE_TRANSPORT=0`` turns it off where the Config leaves it to the
environment).

On asyncio's selector loops, :class:`ws2fast._core.SocketTransport` replaces asyncio's
``_SelectorSocketTransport`` for connections this package makes or accepts: the same transport
surface, with the per-read and per-write paths in C.  Here is what surrounds it: deciding when it
applies, connecting a client socket, and a listening server with its own accept loop
(:class:`NativeServer`, the part of ``asyncio.Server`` that :class:`ws2fast.aio.Server` uses).
TLS and other loops (uvloop's transports are compiled already) keep the loop's own transports.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from .._core import ProtocolCore, SocketTransport
from ..config import Config

__all__ = ["NativeServer", "native_transport_applies", "open_native_connection"]

logger = logging.getLogger("ws2fast")

_BACKLOG = 100
_ACCEPTS_PER_WAKEUP = 100        # bounded: a connect flood cannot starve the loop
_EMFILE_PAUSE = 1.0             # out of file descriptors: stop accepting this long (as asyncio)


def native_transport_applies(loop: asyncio.AbstractEventLoop, config: Config | None, ssl: Any) -> bool:
    """Whether a cleartext connection on ``loop`` uses :class:`SocketTransport`."""
    wanted = config.native_transport if config is not None else None
    if wanted is None:
        wanted = os.environ.get("WS2FAST_NATIVE_TRANSPORT", "1") != "0"
    return bool(wanted) and not ssl and isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)


def _attach(loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: ProtocolCore) -> SocketTransport:
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)      # as asyncio does
    transport = SocketTransport(loop, sock, protocol)
    cast(asyncio.BaseProtocol, protocol).connection_made(cast(asyncio.Transport, transport))  # (it is both)
    transport.start()
    return transport


_P = TypeVar("_P", bound=ProtocolCore)


async def open_native_connection(factory: Callable[[], _P], host: str, port: int) -> _P:
    """Connect to ``host:port`` (each address in turn, as ``create_connection`` does)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"getaddrinfo({host!r}) returned no addresses")
    errors: list[OSError] = []
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        protocol = factory()
        _attach(loop, sock, protocol)
        return protocol
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")


class NativeServer:
    """Listening sockets whose connections get :class:`SocketTransport`: ``sockets``,
    ``close()``, ``wait_closed()``, ``serve_forever()`` as on ``asyncio.Server``."""

    #: the ``loop.create_server`` keywords :meth:`start` takes (with others, the caller keeps
    #: asyncio's server)
    OPTIONS = frozenset({"sock", "backlog", "reuse_address", "reuse_port"})

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], ProtocolCore],
                 sockets: list[socket.socket]) -> None:
        self._loop = loop
        self._factory = factory
        self.sockets = tuple(sockets)
        self._serving = True
        self._closed = loop.create_future()
        for sock in sockets:
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._accept, sock)

    @classmethod
    async def start(cls, factory: Callable[[], ProtocolCore], host: str | Sequence[str] | None, port: int, *,
                    sock: socket.socket | None = None, backlog: int = _BACKLOG,
                    reuse_address: bool | None = None, reuse_port: bool | None = None) -> NativeServer:
        """Listen on every address of ``host`` (a name, several, or None for all interfaces)
        at ``port``, or on ``sock``; as ``loop.create_server`` does."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            return cls(loop, factory, [sock])
        hosts = [host or None] if host is None or isinstance(host, str) else list(host)
        infos = []
        for name in hosts:
            infos += await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned no addresses")
        sockets: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                listener = socket.socket(family, kind, proto)
                sockets.append(listener)
                if reuse_address is not False:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                listener.bind(address)
                listener.listen(backlog)
        except BaseException:
            for listener in sockets:
                listener.close()
            raise
        return cls(loop, factory, sockets)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    logger.error("ws2fast: accept() failed (%s): pausing %g s", exc, _EMFILE_PAUSE)
                    self._loop.remove_reader(listener.fileno())
                    self._loop.call_later(_EMFILE_PAUSE, self._resume_accepting, listener)
                    return
                raise
            try:
                _attach(self._loop, sock, self._factory())
            except Exception:
                logger.exception("ws2fast: setting up an accepted connection failed")
                sock.close()

    def _resume_accepting(self, listener: socket.socket) -> None:
        if self._serving:
            self._loop.add_reader(listener.fileno(), self._accept, listener)

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        """Stop accepting and close the listening sockets (connections stay)."""
        if not self._serving:
            return
        self._serving = False
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        if self._serving:
            await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            raise
