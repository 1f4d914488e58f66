"""The engine interface: what an I/O layer needs of a sans-IO connection.

:class:`~ws2fast.H1Connection` and :class:`~ws2fast.H2Connection` both implement
:class:`Engine`, so that an I/O layer (the asyncio layer here; a relay, an ASGI server or a
uvicorn protocol tomorrow) drives either without asking which it holds.  Stream ids are 0 over
HTTP/1.1.  Where the versions differ, the interface says so as a capability
(:attr:`Engine.multiplexed`) or a result (:attr:`Engine.closed` after a reset), not as a kind.

The per-message part of the interface (feed bytes, send a message, take the bytes to write,
give window back) is also compiled, as ``ws2fast._core.EngineCore``, so that the asyncio
layer's read path makes no Python call; its Python names are :meth:`Engine.receive_data`,
:meth:`Engine.send_message`, :meth:`Engine.data_to_send` and :meth:`Engine.acknowledge`.

mypy checks that both connections satisfy this protocol (the ``_engine`` lines at the end of
their modules).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .config import Config

__all__ = ["Engine"]

Headers = Iterable[tuple[bytes | str, bytes | str]]


class Engine(Protocol):
    """A sans-IO connection as an I/O layer drives it."""

    client_side: bool
    config: Config

    @property
    def multiplexed(self) -> bool:
        """Many WebSockets and requests at once (HTTP/2), or one exchange at a time."""

    @property
    def http_version(self) -> str:
        """"HTTP/2" or "HTTP/1.1"."""

    @property
    def closed(self) -> bool:
        """Nothing more will be read or written: close the transport."""

    @property
    def open_streams(self) -> int:
        """Exchanges (WebSockets, requests) in progress or winding down."""

    @property
    def can_open_stream(self) -> bool:
        """Client: whether a WebSocket or request may be opened now."""

    @property
    def going_away(self) -> bool:
        """No new exchange will be taken on this connection (GOAWAY either way, or ended)."""

    @property
    def websockets_allowed(self) -> bool | None:
        """Client: whether the server lets WebSockets open on this connection; None while that
        is unknown (HTTP/2 before the server's SETTINGS)."""

    # -- bytes in and out ---------------------------------------------------------------------

    def receive_data(self, data: Any) -> list[Any]:
        """Feed bytes received; the events they completed."""

    def receive_eof(self) -> list[Any]:
        """The peer closed its sending side; the events that makes."""

    def data_to_send(self) -> bytes:
        """The bytes to write now (and forget them)."""

    def next_timeout(self) -> float | None:
        """The clock time (``Config.clock``) at which :meth:`handle_timeouts` has work."""

    def handle_timeouts(self) -> list[Any]:
        """Apply the timeouts due; the events that makes."""

    # -- WebSockets -----------------------------------------------------------------------------

    def open_websocket(self, path: str, authority: str, *, scheme: str = ...,
                       subprotocols: Iterable[str] = (), extensions: Iterable[str] | None = None,
                       origin: str | None = None, headers: Headers = ()) -> int:
        """Client: send a WebSocket handshake; its stream id."""

    def accept_websocket(self, stream_id: int, subprotocol: str | None = None,
                         extensions: Iterable[str] | None = None, headers: Headers = ()) -> list[Any]:
        """Server: accept a requested WebSocket; events of messages that came before."""

    def reject_websocket(self, stream_id: int, status: int = 403, headers: Headers = (),
                         body: bytes = b"") -> Any:
        """Server: refuse a requested WebSocket with an HTTP response."""

    def has_stream(self, stream_id: int) -> bool:
        """Whether ``stream_id`` is still there (not reset or ended meanwhile)."""

    def send_message(self, stream_id: int, data: Any) -> None:
        """Send one message: ``str`` as text, bytes-like as binary."""

    def send_fragment(self, stream_id: int, data: Any, *, first: bool, fin: bool,
                      text: bool = False) -> None:
        """Send one frame of a fragmented message."""

    def ping(self, stream_id: int, payload: bytes = b"") -> None:
        """Send a WebSocket ping."""

    def send_pong(self, stream_id: int, payload: bytes = b"") -> None:
        """Send a WebSocket pong."""

    def close_websocket(self, stream_id: int, code: int = 1000, reason: str = "") -> list[Any]:
        """Start (or complete) the close handshake; events it completed now."""

    def abort_websocket(self, stream_id: int) -> None:
        """Give the WebSocket up at once (RST_STREAM; over HTTP/1.1 :attr:`closed` turns true)."""

    def acknowledge(self, stream_id: int, nbytes: int) -> None:
        """The application took messages of ``nbytes`` wire octets: window may go back."""

    def outgoing_buffered(self, stream_id: int) -> int:
        """Octets queued on the stream that wait for flow-control window."""

    def sent_early(self, stream_id: int) -> tuple[Any, ...]:
        """Client: the messages sent on the stream before the server answered its handshake,
        while it has not (``Config.early_handshake``; always empty over HTTP/1.1)."""

    def receive_into(self, stream_id: int, buffer: Any) -> None:
        """Unmask the next binary message straight into ``buffer`` if it fits."""

    def cancel_receive_into(self, stream_id: int) -> None:
        """Forget the buffer registered by :meth:`receive_into`."""

    # -- plain HTTP -----------------------------------------------------------------------------

    def send_request(self, method: str, path: str, authority: str, *, scheme: str = ...,
                     headers: Headers = (), body: bytes | None = b"", end_stream: bool = True) -> int:
        """Client: send a request; its stream id."""

    def response_pending(self, stream_id: int) -> bool:
        """Server: whether the request on ``stream_id`` awaits its response head."""

    def send_response(self, stream_id: int, status: int, headers: Headers = (),
                      body: bytes | None = b"", *, end_stream: bool = True) -> Any:
        """Server: answer a request (with ``end_stream=False`` the body follows with
        :meth:`send_body`); what it returns are events to dispatch (HTTP/1.1: pipelined
        requests read meanwhile), or None."""

    def send_continue(self, stream_id: int) -> bool:
        """Server: send ``100 Continue`` if the client waits for it (``Expect: 100-continue``);
        True if sent (HTTP/1.1 only; HTTP/2 clients get none)."""

    def send_body(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> Any:
        """Send more of a plain body (under flow control over HTTP/2); the events to dispatch,
        or None, as :meth:`send_response`."""

    def reset_stream(self, stream_id: int, error_code: int = ...) -> None:
        """Abandon an exchange (RST_STREAM; over HTTP/1.1 :attr:`closed` turns true)."""

    # -- the connection -------------------------------------------------------------------------

    def send_connection_ping(self, payload: bytes) -> bool:
        """A ping of the connection itself (HTTP/2 PING); False when the protocol has none."""

    def goaway(self) -> None:
        """Take no new exchange; those in progress finish (HTTP/2 GOAWAY(NO_ERROR))."""
