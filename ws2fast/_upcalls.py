"""The calls the compiled core makes into its Python subclasses, declared.

Each compiled class of ``ws2fast._core`` that is completed in Python calls methods it does not
define: the Python subclass must provide them, with these signatures.  mypy checks that each
subclass satisfies its protocol (see the ``_implements`` lines at the end of each subclass's
module), and ``tests/test_stubs.py`` checks that every such call in ``_ext/*.pxi`` is declared
here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .exceptions import FrameError, WebSocketProtocolError

__all__ = ["H1CoreUpcalls", "H2CoreUpcalls", "SessionCoreUpcalls", "ProtocolCoreUpcalls",
           "WebSocketCoreUpcalls"]


class H1CoreUpcalls(Protocol):
    """What ``H1Core`` (``_ext/h1core.pxi``) calls on :class:`~ws2fast.H1Connection` until
    the handshake switched the connection to its WebSocket session."""

    def _receive_http(self, data: Any) -> list[Any]:
        """Bytes received while HTTP/1.1 is being parsed."""

    def _http_closed(self) -> bool:
        """Whether HTTP/1.1 says the connection is over (no WebSocket on it)."""


class H2CoreUpcalls(Protocol):
    """What ``H2Core`` (``_ext/h2core.pxi``) calls on :class:`~ws2fast.H2Connection`."""

    def _receive_slow(self, items: list[Any], error: FrameError | None) -> list[Any]:
        """The events of a batch that held more than messages (frames, signals, deferred
        events), or that a connection error (``error``) ended."""


class SessionCoreUpcalls(Protocol):
    """What ``SessionCore`` (``_ext/wssession.pxi``) calls on
    :class:`~ws2fast.websocket.WebSocketSession`."""

    def _take(self, items: list[Any]) -> list[Any]:
        """The events of a parsed batch that held more than data messages."""

    def _receive_failed(self, exc: WebSocketProtocolError) -> list[Any]:
        """The parser failed: fail the WebSocket; the events parsed before the error."""

    def _send_deflated(self, data: Any) -> None:
        """Queue a message when permessage-deflate was agreed."""


class ProtocolCoreUpcalls(Protocol):
    """What ``ProtocolCore`` (``_ext/aio.pxi``) calls on
    :class:`~ws2fast.aio.connection.Connection`."""

    def _sniff(self, data: memoryview) -> None:
        """The first bytes of a server connection: choose HTTP/1.1 or HTTP/2."""

    def _event(self, event: Any) -> None:
        """An event other than a message for a WebSocket."""

    def _wake_senders(self) -> None:
        """Flow-control window or buffer space came back: wake waiting senders."""

    def _pause_reading(self) -> None:
        """Too many messages are queued unread."""

    def _resume_reading(self) -> None:
        """The queues drained."""

    def _arm_timer(self) -> None:
        """Keep a timer for the engine's next deadline."""

    def close_transport(self, linger: bool = True) -> None:
        """The engine is done with the transport."""

    def _linger_done(self) -> None:
        """A lingering close finished discarding."""

    def close_websocket(self, ws: Any, code: int, reason: str) -> None:
        """Start the close handshake of ``ws`` (a listener raised)."""

    def abort(self) -> None:
        """Drop the connection at once."""


class WebSocketCoreUpcalls(Protocol):
    """What ``WebSocketCore`` (``_ext/aio.pxi``) calls on
    :class:`~ws2fast.aio.websocket.WebSocket`."""

    def _closed_error(self) -> Exception:
        """The exception a send on a closed WebSocket raises."""
