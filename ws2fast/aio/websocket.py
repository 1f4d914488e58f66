"""The asyncio WebSocket object: ``send``, ``recv``, ``async for``, ``recv_into``, ``ping``,
``close``.  It is the same over HTTP/2 (one stream of a shared connection) and HTTP/1.1 (a whole
connection); :attr:`http_version` says which."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from .._core import BinaryMessage, TextMessage, WebSocketCore
from ..exceptions import ConnectionClosedOK, LocalProtocolError, connection_closed

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import Engine

__all__ = ["WebSocket", "WebSocketListener"]

logger = logging.getLogger("ws2fast")

Data = str | bytes


class _Carrier(Protocol):
    """What a WebSocket uses of the connection that carries it
    (:class:`ws2fast.aio.connection.Connection`; declared here so that this module does not
    import that one)."""

    loop: asyncio.AbstractEventLoop
    config: Config
    transport: Any

    @property
    def engine(self) -> Engine: ...
    @property
    def http_version(self) -> str: ...
    async def flush_and_wait(self, ws: WebSocket) -> None: ...
    def close_websocket(self, ws: WebSocket, code: int, reason: str) -> None: ...
    def abort_websocket(self, ws: WebSocket) -> None: ...
    def receive_into(self, ws: WebSocket, buffer: Any) -> None: ...
    def cancel_receive_into(self, ws: WebSocket) -> None: ...
    def consumed(self, ws: Any, event: Any) -> None: ...
    def goaway(self) -> None: ...
    def close_transport(self, linger: bool = True) -> None: ...


class WebSocketListener:
    """Callbacks instead of coroutines, for the lowest latency: subclass it and pass the class
    as the handler of :func:`ws2fast.serve` (or ``listener=`` to :func:`ws2fast.connect`).

    The callbacks run straight from the code that parsed the bytes (no task switch per message);
    answer with :meth:`WebSocket.send_nowait`.  Window is given back as each callback returns.
    """

    def on_open(self, ws: WebSocket) -> None:
        """The WebSocket is open."""

    def on_message(self, ws: WebSocket, message: Data) -> None:
        """A whole message: ``str`` (text) or ``bytes`` (binary)."""

    def on_close(self, ws: WebSocket, code: int, reason: str) -> None:
        """The WebSocket is closed (1006 when there was no close handshake)."""


class WebSocket(WebSocketCore):
    """One open WebSocket.  Made by :func:`ws2fast.connect`, :meth:`ws2fast.Client.websocket`
    and :func:`ws2fast.serve` (which passes it to the handler).

    Attributes:

    - ``path``: the request target (path and query) the WebSocket was opened on.
    - ``subprotocol``: the subprotocol agreed in the handshake (``Sec-WebSocket-Protocol``),
      or None.
    - ``extensions``: the extensions agreed, as header values (e.g.
      ``("permessage-deflate; server_max_window_bits=13",)``); empty when none.
    - ``headers``: on a client, the server's response headers; on a server, the request's;
      a tuple of ``(name, value)`` byte pairs, names in lowercase.
    - ``request_headers``: on a server, the request's headers (as ``headers``); empty on a
      client.
    - ``close_code``: the close code once the WebSocket is closed (the peer's, or 1006 when the
      connection ended without a close handshake); None while open.
    - ``close_reason``: the close reason that came with it ("" when none).
    - ``stream_id``: the HTTP/2 stream carrying it (0 over HTTP/1.1).

    ``http_version``, ``closed``, ``buffered_amount``, ``local_address`` and
    ``remote_address`` are described where they are defined.  ``send_nowait`` and the delivery
    of messages are compiled (:class:`ws2fast._core.WebSocketCore`).
    """

    _connection: _Carrier           # (the compiled base knows it as a ProtocolCore)

    def __init__(self, connection: _Carrier, stream_id: int, *, path: str, headers: tuple,
                 subprotocol: str | None, extensions: tuple[str, ...] = (), request_headers: tuple = (),
                 listener: WebSocketListener | None = None, owns_connection: bool = False) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self.path = path
        #: the response headers (client) or the request headers (server)
        self.headers = headers
        self.request_headers = request_headers
        self.subprotocol = subprotocol
        self.extensions = extensions
        self.close_code: int | None = None
        self.close_reason = ""
        self._messages: deque[Any] = deque()
        self._counted = True                # its queued messages count against the connection
        self._waiter: asyncio.Future[None] | None = None
        self._into: Any = None
        self._closed = connection.loop.create_future()
        self._pings: dict[bytes, asyncio.Future[float]] = {}
        self._close_started = False
        self._ping_counter = 0
        self._owns_connection = owns_connection     # made by connect(): the connection ends with it
        #: when our keepalive ping must be answered (the connection's keepalive timer checks)
        self._keepalive_deadline: float | None = None
        self._listener = listener           # callbacks instead of recv() (no task per WebSocket)
        # Early (connect(early=True)): settles when the handshake does (None once it succeeded);
        # while a fallback opens another stream or connection, what send() gets waits in _resend.
        self._opening: asyncio.Future[None] | None = None
        self._resend: list[Any] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed.done() else "opening" if self._opening is not None else "open"
        return f"<WebSocket {self.path!r} stream {self.stream_id} {self.http_version} {state}>"

    @property
    def http_version(self) -> str:
        """"HTTP/2" (RFC 8441) or "HTTP/1.1" (RFC 6455 Upgrade)."""
        return self._connection.http_version

    @property
    def closed(self) -> bool:
        """Whether the WebSocket is closed (``close_code`` says how)."""
        return self._closed.done()

    @property
    def local_address(self) -> Any:
        """Our socket address, as the transport reports it (None once the connection is gone)."""
        return self._connection.transport.get_extra_info("sockname") if self._connection.transport else None

    @property
    def remote_address(self) -> Any:
        """The peer's socket address, as the transport reports it (None once the connection is
        gone)."""
        return self._connection.transport.get_extra_info("peername") if self._connection.transport else None

    # -- called by the connection ----------------------------------------------------------

    # _deliver(event) is compiled (WebSocketCore): queue the message, wake recv().

    def _accepted(self, connection: _Carrier, stream_id: int, headers: tuple, subprotocol: str | None,
                  extensions: tuple[str, ...], listener: WebSocketListener | None) -> None:
        # An early WebSocket's handshake succeeded (maybe on another stream or connection than
        # the first attempt's, after a fallback): what the answer agreed, then what waited.
        self._bind(connection, stream_id)
        self.headers, self.subprotocol, self.extensions = headers, subprotocol, extensions
        if listener is not None:
            self._listener = listener
        waiting, self._resend = self._resend, None
        for message in waiting or ():
            self._connection.engine.send_message(stream_id, message)
        if self._opening is not None and not self._opening.done():
            self._opening.set_result(None)

    def _start_opening(self) -> None:
        # Returned before the handshake's answer (early): recv(), ping() and close() wait for it.
        self._opening = self._connection.loop.create_future()

    def _bind(self, connection: _Carrier, stream_id: int) -> None:
        # An attempt of the handshake starts on this stream (early: messages may follow it).
        self._connection, self.stream_id = connection, stream_id

    def _early_attempt(self, undelivered: tuple) -> None:
        # The attempt failed (another stream or connection may take over): what it did not
        # deliver goes again, first; send() holds new messages behind it meanwhile.
        self._resend = [*undelivered, *(self._resend or ())]

    def _not_sent(self) -> tuple:
        # What send() took while no attempt could carry it.
        return tuple(self._resend or ())

    def _opening_failed(self, exc: BaseException) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.set_exception(exc)
            self._opening.exception()           # (nobody may be waiting: no warning)
        self._resend = None
        self._set_closed(1006, str(exc))

    async def _handshake(self) -> None:
        # Early: wait for the handshake's end; raises HandshakeFailed if it failed.
        opening = self._opening
        if opening is not None:
            await asyncio.shield(opening)
            self._opening = None

    def _closed_error(self) -> Exception:
        return connection_closed(self.close_code or 1006, self.close_reason)

    def _pong(self, payload: bytes) -> None:
        # A pong answers the ping with its payload and every ping before it (RFC 6455 §5.5.3);
        # any pong shows the peer is alive.
        self._keepalive_deadline = None
        for key in list(self._pings):
            future = self._pings.pop(key)
            if not future.done():
                future.set_result(self._connection.loop.time())
            if key == payload:
                break

    def _keepalive(self, now: float, new_round: bool, timeout: float | None) -> float | None:
        # The connection's keepalive timer: a ping each round while none is unanswered; one
        # not answered within ``timeout`` fails the WebSocket (1011).  Returns when this
        # WebSocket's ping must be answered (None: nothing to watch).
        if self._close_started or self.closed:
            return None
        c = self._connection
        if self._keepalive_deadline is not None:
            if now >= self._keepalive_deadline:          # (set only when there is a timeout)
                logger.info("ws2fast: no pong in %g s on %r: closing with 1011", timeout, self)
                c.close_websocket(self, 1011, "keepalive ping timeout")
                c.abort_websocket(self)
                return None
        elif new_round:
            self._ping_counter += 1
            try:
                # 8 octets: never the payload of a ping() (4 octets), whose future waits for it
                c.engine.ping(self.stream_id, self._ping_counter.to_bytes(8, "big"))
            except LocalProtocolError:
                return None
            if timeout is not None:
                self._keepalive_deadline = now + timeout
        return self._keepalive_deadline

    def _set_closed(self, code: int, reason: str) -> None:
        if self._closed.done():
            return
        self.close_code, self.close_reason = code, reason
        self._closed.set_result(None)
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.on_close(self, code, reason)
        for future in self._pings.values():
            if not future.done():
                future.set_exception(connection_closed(code, reason))
        self._pings.clear()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self._connection.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- receiving ---------------------------------------------------------------------------

    async def recv(self) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.  Raises
        :class:`~ws2fast.exceptions.ConnectionClosed` once the WebSocket is closed and every
        message received before the close was taken; with ``connect(early=True)``,
        :class:`~ws2fast.exceptions.HandshakeFailed` if the handshake failed."""
        if self._opening is not None:
            await self._handshake()
        while not self._messages:
            if self._closed.done():
                raise self._closed_error()
            self._waiter = waiter = self._connection.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._take()         # compiled (WebSocketCore): dequeue, give the window back

    async def recv_into(self, buffer: Any) -> int:
        """Receive the next *binary* message into ``buffer`` (bytearray, memoryview, numpy
        array...) and return its length.

        If nothing is queued, the buffer is registered with the parser, so the message is
        unmasked straight into it: no intermediate copy.  A message that does not fit, or a text
        message, raises ``ValueError``/``TypeError`` and stays queued for :meth:`recv`.
        """
        view = memoryview(buffer).cast("B")
        while not self._messages:
            if self._closed.done():
                raise connection_closed(self.close_code or 1006, self.close_reason)
            self._connection.receive_into(self, buffer)
            try:
                await self._wait()
            finally:
                if not (self._messages and type(self._messages[0]) is BinaryMessage
                        and self._messages[0].into_buffer):
                    self._connection.cancel_receive_into(self)
        event = self._messages[0]
        if type(event) is TextMessage:
            raise TypeError("the next message is text; take it with recv()")
        if type(event) is BinaryMessage and event.into_buffer and event.data is buffer:
            self._messages.popleft()
            self._connection.consumed(self, event)
            return event.nbytes
        data = event.data if not event.into_buffer else memoryview(event.data).cast("B")[:event.nbytes]
        n = len(data)
        if n > len(view):
            raise ValueError(f"a message of {n} bytes does not fit a buffer of {len(view)}; "
                             "it stays available to recv()")
        view[:n] = data
        self._messages.popleft()
        self._connection.consumed(self, event)
        return n

    def __aiter__(self) -> AsyncIterator[Data]:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: Data | Any | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send a message: ``str`` as text, a bytes-like object as binary, or an iterable /
        async iterable of fragments (all ``str`` or all bytes-like) as one fragmented message.

        Waits while the HTTP/2 flow-control window or the transport's buffer is full, so a
        producer cannot outrun the peer.
        """
        if self._opening is not None:
            if self._opening.done() or not _is_message(message):
                await self._handshake()             # (fragments wait for the handshake)
            elif self._resend is not None:
                self._resend.append(message if isinstance(message, (str, bytes)) else bytes(message))  # type: ignore[arg-type]
                return
        if self._closed.done() or self._close_started:
            raise connection_closed(self.close_code or 1006, self.close_reason)
        if _is_message(message):
            # compiled (WebSocketCore): frame and write; wait only if window or transport is full
            if not self._send_ready(message):  # type: ignore[arg-type]  # (a str or a buffer)
                await self._drain()
            return
        if isinstance(message, AsyncIterable):
            await self._send_fragments(_aiter_fragments(message))
        elif isinstance(message, Iterable):
            await self._send_fragments(_wrap_sync(cast("Iterable[Data]", message)))
        else:
            raise TypeError(f"cannot send {type(message).__name__}")

    # send_nowait(message) is compiled (WebSocketCore): the message is framed now, and written
    # at the end of the batch being read or on the next loop turn.

    @property
    def buffered_amount(self) -> int:
        """Bytes accepted by send but not yet handed to the kernel."""
        c = self._connection
        return c.engine.outgoing_buffered(self.stream_id) + (
            c.transport.get_write_buffer_size() if c.transport is not None else 0)

    async def _drain(self) -> None:
        # After a send: wait while the window or the transport is full; a WebSocket closed
        # meanwhile by the peer (not by us) raises.
        await self._connection.flush_and_wait(self)
        if self._closed.done() and not self._close_started:
            raise self._closed_error()

    async def _send_fragments(self, fragments: AsyncIterator[Data]) -> None:
        c = self._connection
        previous: Data | None = None
        text = False
        first = True
        async for fragment in fragments:
            if previous is not None:
                c.engine.send_fragment(self.stream_id, previous, first=first, fin=False, text=text)
                first = False
                await self._drain()
            else:
                text = isinstance(fragment, str)
            if isinstance(fragment, str) != text:
                raise TypeError("fragments of one message must all be str or all bytes-like")
            previous = fragment
        if previous is None:
            return                                   # nothing at all: no message
        c.engine.send_fragment(self.stream_id, previous, first=first, fin=True, text=text)
        await self._drain()

    async def ping(self, data: bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; returns a future that resolves (to the loop time) when the pong comes."""
        if self._opening is not None:
            await self._handshake()
        if self._closed.done():
            raise connection_closed(self.close_code or 1006, self.close_reason)
        if data is None:
            self._ping_counter += 1
            data = self._ping_counter.to_bytes(4, "big")
        future = self._connection.loop.create_future()
        self._pings[bytes(data)] = future
        self._connection.engine.ping(self.stream_id, bytes(data))
        await self._drain()
        return future

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket: the close handshake (then END_STREAM over HTTP/2), waiting at
        most the close timeout for the peer's answer; then the stream/connection is abandoned."""
        if self._opening is not None:
            try:
                await self._handshake()
            except Exception:
                # It never opened (the error went to whoever awaited it): nothing to close.
                if self._owns_connection:
                    self._connection.close_transport()
                return
        c = self._connection
        self.close_nowait(code, reason)
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), c.config.close_timeout)
        except asyncio.TimeoutError:
            c.abort_websocket(self)
        if self._owns_connection:
            c.goaway()
            c.close_transport()

    def close_nowait(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake now, without waiting for its end (for listeners, which
        cannot await); :meth:`wait_closed` waits for it.  Nothing happens if the WebSocket is
        closing or closed already."""
        if not self._closed.done() and not self._close_started:
            self._close_started = True
            if self._opening is not None and not self._opening.done():
                # (early: the close handshake starts once the WebSocket is open, if it opens)
                self._opening.add_done_callback(
                    lambda opening: None if opening.cancelled() or opening.exception() is not None
                    else self._connection.close_websocket(self, code, reason))
                return
            self._connection.close_websocket(self, code, reason)

    async def wait_open(self) -> None:
        """Wait until the WebSocket is open: with ``connect(early=True)``, until the server
        accepted it (raises :class:`~ws2fast.exceptions.HandshakeFailed` if it did not; what
        ``recv()`` does first); otherwise it is open already."""
        if self._opening is not None:
            await self._handshake()

    async def wait_closed(self) -> None:
        """Wait until the WebSocket is closed."""
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> WebSocket:  # noqa: PYI034
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _is_message(message: Any) -> bool:
    return isinstance(message, (str, bytes, bytearray, memoryview)) or hasattr(message, "__buffer__") \
        or _is_buffer(message)


def _is_buffer(obj: Any) -> bool:
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


async def _wrap_sync(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item


async def _aiter_fragments(items: AsyncIterable[Data]) -> AsyncIterator[Data]:
    async for item in items:
        yield item


if TYPE_CHECKING:
    from .._upcalls import WebSocketCoreUpcalls

    def _implements(c: WebSocket) -> WebSocketCoreUpcalls:      # mypy checks the calls the core makes
        return c
