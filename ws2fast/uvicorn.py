"""ws2fast as uvicorn's WebSocket implementation: ``uvicorn app:app --ws ws2fast.uvicorn:WebSocketProtocol``.

uvicorn resolves its ``--ws`` option with ``import_from_string`` when it is not one of its own
names, and its HTTP/1.1 protocols (``--http h11`` and ``--http httptools``) hand an Upgrade
request to that class: they construct it with ``config``, ``server_state`` and ``app_state``,
call ``connection_made(transport)`` and ``data_received(request bytes)``, and switch the
transport to it.  :class:`WebSocketProtocol` answers that request with ws2fast's HTTP/1.1
engine, and runs the application's ASGI WebSocket events over ws2fast's compiled WebSocket
session: frames are parsed, unmasked and built in C, messages reach ``receive()`` without a
Python call per frame.

What the application sees is what uvicorn's own implementations give it (the same scope, the
same events, Close 1012 on shutdown, the ``websocket.http.response`` extension), and uvicorn's
options apply: ``ws_max_size``, ``ws_ping_interval``, ``ws_ping_timeout``,
``ws_per_message_deflate``.  ``ws_max_queue`` has nothing to bound: as uvicorn's sans-IO
implementations do, reading pauses while the application has a message it did not take yet, so
the messages of one read at most wait.  WebSocket over HTTP/2 needs ws2fast's own server: uvicorn speaks HTTP/1.1 to
WebSocket clients.

uvicorn takes ``--ws`` as an import string since 0.36.0 (before, ``--ws`` is a choice among its
own names, and ``Config(ws=...)`` a name or a class); it hands WebSocket classes the
``app_state`` this one needs since 0.21.0, so from Python ``Config(app, ws=WebSocketProtocol)``
needs 0.21.0.  Tested with uvicorn 0.54.0 (its own WebSocket tests run against this class).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl

from ._asgi import ASGIWebSocket, websocket_scope
from .aio.connection import Connection
from .config import Config as _Config
from .events import RequestReceived, WebSocketRequested

__all__ = ["WebSocketProtocol"]

_logger = logging.getLogger("uvicorn.error")


def ws2fast_config(config: Any) -> _Config:
    """The ws2fast :class:`~ws2fast.Config` that means what a uvicorn ``Config`` says."""
    interval = config.ws_ping_interval
    interval = interval if interval is not None and interval > 0 else None
    return _Config(
        max_message_size=config.ws_max_size,
        permessage_deflate=bool(config.ws_per_message_deflate),
        compression_window_bits=12,         # (uvicorn's: 12-bit windows, memLevel 5)
        compression_memory_level=5,
        ping_interval=interval,
        ping_timeout=config.ws_ping_timeout if interval is not None else None,
        # uvicorn's HTTP protocol read the request under its own timeouts, and uvicorn closes
        # at once (no lingering close); the close handshake's timeout is close_timeout below.
        handshake_timeout=None,
        idle_timeout=None,
        lingering_time=None,
    )


class WebSocketProtocol(Connection):
    """uvicorn's WebSocket protocol contract, on ws2fast's engine (see the module's docstring).

    ``close_timeout`` (10 s, as uvicorn's): how long the application's ``websocket.close``
    waits for the client's Close before the transport is closed anyway.
    """

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        super().__init__(client_side=False, config=ws2fast_config(config), owner=self, http2=False,
                         max_queue=0)
        self.uvicorn_config = config
        self.app = config.loaded_app
        self.root_path = config.root_path
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.logger = _logger
        self.close_timeout = 10.0
        self.close_timer: asyncio.TimerHandle | None = None
        self.asgi: ASGIWebSocket | None = None
        self.server: Any = None
        self.client: Any = None
        self.scheme = "ws"

    # -- what uvicorn's HTTP protocols and server call ------------------------------------------

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # asyncio and uvloop disable Nagle on TCP connections, but not on those of a socket
            # uvicorn was given with --fd (it wraps it as AF_UNIX): there the last small frames
            # of a burst would wait for the peer's delayed ACK (40 ms).  (On a UNIX socket: no-op.)
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections.add(self)
        self.server = get_local_addr(transport)
        self.client = get_remote_addr(transport)
        self.scheme = "wss" if is_ssl(transport) else "ws"
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """The Upgrade request, as uvicorn's HTTP protocol read it (and, on transports that do
        not take buffered protocols, what follows)."""
        if self._discarding or self._lost:
            return
        self._received(data)
        if self.asgi is None and not self._lost:
            # Not a WebSocket handshake ws2fast accepts: it answered (400 or 426); that is all.
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_close_timer()
        super().connection_lost(exc)
        if self.asgi is not None:
            self.asgi.lost()

    def shutdown(self) -> None:
        """uvicorn shuts down: Close 1012 on an open WebSocket (500 before the answer), then
        the transport closes."""
        if self._lost:
            return
        asgi = self.asgi
        if asgi is not None and self.close_timer is None:
            asgi.shutdown(1012)
        self._cancel_close_timer()
        self._close()

    # -- the owner's calls (Connection) ----------------------------------------------------------

    def _connection_lost(self, conn: Connection) -> None:
        self.connections.discard(self)

    def _websocket_requested(self, conn: Connection, event: WebSocketRequested) -> None:
        scope = websocket_scope(event, http_version="1.1", scheme=self.scheme, server=self.server,
                                client=self.client, root_path=self.root_path, state=self.app_state.copy(),
                                asgi_version=self.uvicorn_config.asgi_version)
        self.asgi = ASGIWebSocket(self, event, scope, self, default_headers=self.default_headers,
                                  disconnected=ClientDisconnected, logger=self.logger)
        task = self.loop.create_task(self.run_asgi(self.asgi))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _request_complete(self, conn: Connection, stream_id: int, event: RequestReceived, body: bytes) -> None:
        pass                # (only an Upgrade request comes here; anything else was answered)

    def _after_websocket_closed(self) -> None:
        # The close handshake is over (or the WebSocket failed): the engine ends the transport.
        self._cancel_close_timer()
        super()._after_websocket_closed()

    # -- the ASGI host's calls ---------------------------------------------------------------------

    def app_closing(self) -> None:
        if self.close_timer is None and not self._lost:
            self.close_timer = self.loop.call_later(self.close_timeout, self._close_timed_out)

    def answered(self) -> None:
        if not self._lost:
            self._close()

    def _close_timed_out(self) -> None:
        self.close_timer = None
        if not self._lost:
            self._close()

    def _close(self) -> None:
        if self.transport is not None and not self._lost:
            self.flush()                    # (what the application sent this loop turn)
            self.transport.close()

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    async def run_asgi(self, asgi: ASGIWebSocket) -> None:
        try:
            result = await self.app(asgi.scope, asgi.receive, asgi.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            if not asgi.answered:
                asgi.fail()
            # (after the 101 the transport just closes, as uvicorn's own implementations do:
            # uvicorn's tests ask that the client see 1006; ws2fast's ASGI server sends 1011)
        else:
            if not asgi.answered:
                self.logger.error("ASGI callable returned without completing handshake.")
                asgi.fail()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not self._lost:
            self._close()
