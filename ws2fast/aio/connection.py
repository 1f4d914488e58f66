"""Connection: one transport, driven by a sans-IO H1Connection or H2Connection.

An ``asyncio.BufferedProtocol``: asyncio reads into our receive buffer (``get_buffer``), and
``buffer_updated`` hands the new bytes to the connection, whose compiled core parses them in
place.  The receive buffer is one per thread, shared by every connection: asyncio calls
``get_buffer``, reads, and calls ``buffer_updated`` in one go, and nothing keeps a reference
into the buffer once ``receive_data`` returns (what must outlive a read is copied), so an idle
connection costs no 64 KiB buffer of its own.  Events go to the WebSocket objects (messages,
pongs, closes) or to the server/client that owns this connection (requests, handshake
answers).  Output is written after every batch.

Backpressure both ways: the HTTP/2 receive window is given back only as the application takes
messages (``release_on_consume``); over HTTP/1.1, reading pauses while a WebSocket has more than
``max_queue`` messages waiting, and over either while the connection's WebSockets hold more than
``Config.max_queued_messages`` between them.  ``send`` waits for flow-control window and for the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from .. import events as ev
from .._core import PREFACE, CloseReceived, Ping, Pong, ProtocolCore
from ..config import Config
from ..errors import ErrorCode
from ..exceptions import ConnectionLost, HandshakeFailed, LocalProtocolError
from ..h1connection import H1Connection
from ..h2connection import H2Connection
from .websocket import WebSocket

__all__ = ["Connection"]

logger = logging.getLogger("ws2fast")

_RECEIVE_BUFFER = 65536
_shared = threading.local()


def _receive_buffer() -> memoryview:
    """This thread's receive buffer (see the module docstring)."""
    view = getattr(_shared, "view", None)
    if view is None:
        view = _shared.view = memoryview(bytearray(_RECEIVE_BUFFER))
    return view
_MAX_BODY = 1 << 20         # plain request bodies (and refusal bodies) kept in memory


class _Owner(Protocol):
    """What a connection tells whoever made it (the Server); underscored, so that they stay off
    the Server's public surface."""

    def _connection_lost(self, conn: Connection) -> None: ...
    def _websocket_requested(self, conn: Connection, event: Any) -> None: ...
    def _request_complete(self, conn: Connection, stream_id: int, event: Any, body: bytes) -> None: ...


class _WebSocketHooks(Protocol):
    """What a connection calls on its WebSockets (ws2fast.aio.websocket.WebSocket, "called by
    the connection")."""

    def _pong(self, payload: bytes) -> None: ...
    def _set_closed(self, code: int, reason: str) -> None: ...
    def _bind(self, connection: Any, stream_id: int) -> None: ...
    def _early_attempt(self, undelivered: tuple) -> None: ...
    def _accepted(self, connection: Any, stream_id: int, headers: tuple, subprotocol: str | None,
                  extensions: tuple[str, ...], listener: Any) -> None: ...
    def _keepalive(self, now: float, new_round: bool, timeout: float | None) -> float | None: ...


class _Handshake:
    """A WebSocket handshake a client waits for on one stream (HTTP/1.1: stream 0)."""

    __slots__ = ("future", "path", "listener", "owns_connection", "ws")

    def __init__(self, future: asyncio.Future[Any], path: str, listener: Any, owns_connection: bool,
                 ws: WebSocket | None) -> None:
        self.future = future                # -> the WebSocket, or the WebSocketRejected event
        self.path = path
        self.listener = listener            # a WebSocketListener subclass, or None
        self.owns_connection = owns_connection
        self.ws = ws                        # an early WebSocket to carry on, else None (made then)


class Connection(ProtocolCore, asyncio.BufferedProtocol):
    """The protocol object of one transport (client or server side).

    Its per-read path (``get_buffer``, ``buffer_updated``, dispatching messages, ``flush``,
    ``consumed``) is compiled: :class:`ws2fast._core.ProtocolCore`, which calls back here for
    every event that is not a message (:meth:`_event`).
    """

    def __init__(self, *, client_side: bool, config: Config | None = None, owner: _Owner | None = None,
                 http2: bool | None = None, max_queue: int = 16) -> None:
        self.loop = asyncio.get_running_loop()
        config = config if config is not None else Config()
        # The asyncio layer gives window back as messages are taken: backpressure.
        self.config = replace(config, release_on_consume=True)
        self.client_side = client_side
        self.owner = owner
        self.max_queue = max_queue
        self._http2 = http2                   # None: decide (ALPN / preface)
        # self.engine (compiled field): the H2Connection or H1Connection, once known
        self.transport: asyncio.Transport | None = None
        self._view = _receive_buffer()
        self._sniffed = b""
        self.websockets: dict[int, WebSocket] = {}
        self._paused_writing = False
        self._write_stall: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._queued = 0                                 # messages delivered, not yet taken
        self._max_queued = self.config.max_queued_messages
        self._send_waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline = 0.0
        self.closed = self.loop.create_future()
        self.ready = self.loop.create_future()          # set when the protocol is known
        self.settings_received = self.loop.create_future()
        self._handshakes: dict[int, _Handshake] = {}
        self._requests: dict[int, list[Any]] = {}         # stream -> [head, body, complete]
        self._refusals: dict[int, list[Any]] = {}         # refused WebSockets' responses
        self._lost = False
        self._in_batch = False
        self._flush_scheduled = False
        # keepalive: one timer per connection, for its HTTP/2 PING and every WebSocket's ping
        self._keepalive: asyncio.TimerHandle | None = None
        self._keepalive_round = 0.0                      # when the next round of pings goes out
        self._http2_ping: bytes | None = None            # our unanswered PING's payload
        self._http2_ping_deadline = 0.0
        self._ping_counter = 0
        # server: the handshake deadline, then the idle deadline (slowloris, idle connections)
        self._deadline: asyncio.TimerHandle | None = None
        self._greeted = False                            # the first request / SETTINGS came
        self._handling = 0                               # requests whose handler runs
        self._linger_timer: asyncio.TimerHandle | None = None
        # client: futures of Client.websocket() calls waiting for a stream slot
        self._slot_waiters: list[asyncio.Future[None]] = []

    # -- what runs on this connection ---------------------------------------------------------

    @property
    def http_version(self) -> str:
        return "HTTP/1.1" if self.engine is None else self.engine.http_version

    @property
    def _multiplexed(self) -> bool:
        return self.engine is not None and self.engine.multiplexed

    def _start(self, http2: bool) -> None:
        # The one place that knows the kinds: from here on, only the engine interface.
        if http2:
            engine = H2Connection(self.client_side, self.config)
            engine.initiate()
            self.engine = engine
        else:
            self.engine = H1Connection(self.client_side, self.config)
        if not self.ready.done():
            self.ready.set_result(self.http_version)

    # -- asyncio.BufferedProtocol --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if not self.client_side and self.config.handshake_timeout is not None:
            self._deadline = self.loop.call_later(self.config.handshake_timeout, self._on_deadline)
        if self.config.ping_interval is not None:
            self._keepalive_round = self.loop.time() + self.config.ping_interval
            self._keepalive = self.loop.call_at(self._keepalive_round, self._keepalive_tick)
        alpn = None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
        if self._http2 is None and alpn is not None:
            self._http2 = alpn == "h2"
        if self._http2 is not None:
            self._start(self._http2)
            self.flush()
        elif self.client_side:
            self._start(False)
        # else: a cleartext server decides from the first bytes (HTTP/2 preface or not)

    # get_buffer() and buffer_updated() are compiled (ProtocolCore): they feed the connection
    # through _received(); until the protocol is known, the bytes come here.

    def _sniff(self, data: memoryview) -> None:
        """A cleartext server's first bytes: the HTTP/2 preface, or HTTP/1.1.

        A request line starting ``PRI `` is an HTTP/2 client (the method is reserved for the
        preface, RFC 7540 §11.6): if the rest does not match, it is answered as HTTP/2, with
        GOAWAY(PROTOCOL_ERROR) saying so (§3.4), not as a bad HTTP/1.1 request."""
        self._sniffed += bytes(data)
        if self._sniffed[:len(PREFACE)] != PREFACE[:len(self._sniffed)]:
            self._start(self._sniffed.startswith(b"PRI "))
        elif len(self._sniffed) >= len(PREFACE):
            self._start(True)
        else:
            return
        first, self._sniffed = self._sniffed, b""
        self._received(first)

    def eof_received(self) -> bool | None:
        if self._discarding:
            return None                     # the peer closed too: the lingering close is over
        if self.engine is not None:
            self._dispatch(self.engine.receive_eof())
            self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
        if self._write_stall is not None:
            self._write_stall.cancel()
            self._write_stall = None
        for handle in (self._keepalive, self._deadline, self._linger_timer):
            if handle is not None:
                handle.cancel()
        self._keepalive = self._deadline = self._linger_timer = None
        for ws in list(self.websockets.values()):
            ws._set_closed(ws.close_code if ws.close_code is not None else 1006, ws.close_reason)
        self.websockets.clear()
        for entry in self._handshakes.values():
            if not entry.future.done():
                entry.future.set_exception(ConnectionLost("the connection was lost"))
        for future in (self.ready, self.settings_received):
            if not future.done():
                if future is self.settings_received and self._multiplexed and self.client_side:
                    error: Exception = HandshakeFailed(
                        "the server closed the connection before sending its HTTP/2 SETTINGS: it does "
                        "not speak HTTP/2 here (for ws://, HTTP/2 needs prior knowledge on the server)")
                else:
                    error = ConnectionLost("the connection was lost")
                future.set_exception(error)
                future.exception()                   # nobody may be waiting: no warning
        self._wake_senders()
        self._wake_slot_waiters()
        if not self.closed.done():
            self.closed.set_result(None)
        if self.owner is not None:
            self.owner._connection_lost(self)

    def pause_writing(self) -> None:
        self._paused_writing = True
        stall = self.config.send_stall_timeout
        if stall is not None and self._write_stall is None:
            # A peer that never reads (TCP window closed, our transport buffer full) may not
            # hold the connection forever: drop it after Config.send_stall_timeout.
            self._write_stall = self.loop.call_later(stall, self._stalled_writing)

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._write_stall is not None:
            self._write_stall.cancel()
            self._write_stall = None
        self._wake_senders()

    def _stalled_writing(self) -> None:
        self._write_stall = None
        if self._paused_writing and not self._lost:
            logger.info("ws2fast: the peer read nothing for %g s (Config.send_stall_timeout): "
                        "dropping the connection", self.config.send_stall_timeout)
            self.abort()

    # -- output ------------------------------------------------------------------------------

    # flush() is compiled (ProtocolCore): it writes what the connection queued, arms the
    # HTTP/2 timeout timer (_arm_timer) and closes the transport when the connection says so.

    def close_transport(self, linger: bool = True) -> None:
        """End the connection: a client closes at once; a server lingers (Config.lingering_time):
        it shuts down its sending side once what it wrote is out, then reads and drops what
        still comes until the peer closes too, at most lingering_time seconds and
        lingering_bytes octets.  Closing a socket with unread input makes the kernel send a TCP
        reset, and a peer that is still writing (a flood we just ended with GOAWAY) may then
        never read our last words."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._discarding:
            if not linger:
                self._linger_done()
            return
        linger_time = self.config.lingering_time
        if self.client_side or linger_time is None or not linger or self._lost:
            transport.close()
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()       # TLS cannot half-close: it just keeps reading
        except OSError:                     # the peer is gone already
            transport.abort()
            return
        self._discarding = True
        self._discard_left = self.config.lingering_bytes
        self._linger_timer = self.loop.call_later(linger_time, self._linger_done)

    def _linger_done(self) -> None:
        """The lingering close ran out of time or of octets: close now (at once, if what we
        wrote still cannot go out)."""
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _arm_timer(self) -> None:
        deadline = self.engine.next_timeout()
        if self._timer is not None:
            if deadline is not None and self._timer_deadline == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer_deadline = deadline
            self._timer = self.loop.call_later(max(0.0, deadline - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._lost:
            return
        self._dispatch(self.engine.handle_timeouts())
        self.flush()

    async def flush_and_wait(self, ws: WebSocket) -> None:
        """After a send: write, then wait while the stream's window or the transport is full
        (or until the WebSocket or the connection is gone)."""
        self.flush()
        engine = self.engine
        while not self._lost and not ws.closed:
            if not self._paused_writing and not engine.outgoing_buffered(ws.stream_id):
                return
            waiter = self.loop.create_future()
            self._send_waiters.append(waiter)
            await waiter

    def add_slot_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Client: resolve ``waiter`` when a stream may have ended here (a slot may be free)."""
        self._slot_waiters.append(waiter)

    def _wake_slot_waiters(self) -> None:
        waiters, self._slot_waiters = self._slot_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _wake_senders(self) -> None:
        waiters, self._send_waiters = self._send_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- events --------------------------------------------------------------------------------

    # _dispatch(events) is compiled (ProtocolCore): messages go to their WebSocket's listener
    # or queue there; every other event comes here, in order.

    def _event(self, event: Any) -> None:
        if self._slot_waiters:
            self._wake_slot_waiters()           # a stream may have ended: a slot may be free
        kind = type(event)
        if kind is Pong:
            ws = self.websockets.get(event.stream_id)
            if ws is not None:
                ws._pong(event.payload)
        elif kind is Ping or kind is CloseReceived:
            ws = self.websockets.get(event.stream_id)
            if ws is not None and kind is CloseReceived and ws.close_code is None:
                ws.close_code, ws.close_reason = event.code, event.reason
        elif kind is ev.WebSocketClosed:
            ws = self.websockets.pop(event.stream_id, None)
            if ws is not None:
                self._uncount(ws)
                ws._set_closed(event.code, event.reason)
            self._after_websocket_closed()
        else:
            self._other_event(event)

    def _other_event(self, event: Any) -> None:
        kind = type(event)
        pending: list[Any] | None           # a request's [head, body, complete future]
        if kind is ev.PingAcknowledged:
            if event.data == self._http2_ping:
                self._http2_ping = None
        elif kind is ev.SettingsReceived:
            if not self.settings_received.done():
                self.settings_received.set_result(event.settings)
            if not self._greeted and not self.client_side:
                self._greeted = True                    # the HTTP/2 preface is complete
                self._cancel_deadline()
                self._maybe_idle()
        elif kind in (ev.WebSocketAccepted, ev.WebSocketRejected):
            entry = self._handshakes.pop(event.stream_id, None)
            if entry is not None and not entry.future.done():
                result: Any = event
                if kind is ev.WebSocketAccepted:
                    # Made (or, early, bound) now, so that messages right behind the answer find it.
                    listener = entry.listener() if entry.listener is not None else None
                    if entry.ws is None:
                        result = WebSocket(self, event.stream_id, path=entry.path, headers=event.headers,
                                           subprotocol=event.subprotocol, extensions=event.extensions,
                                           listener=listener, owns_connection=entry.owns_connection)
                    else:
                        result = entry.ws
                        result._accepted(self, event.stream_id, event.headers, event.subprotocol,
                                         event.extensions, listener)
                    self.websockets[event.stream_id] = result
                    if listener is not None:
                        listener.on_open(result)
                elif entry.ws is not None:
                    entry.ws._early_attempt(())     # send() holds messages until what follows
                entry.future.set_result(result)
            if kind is ev.WebSocketRejected and event.status:
                pending = [event, bytearray(), self.loop.create_future()]
                self._requests[event.stream_id] = pending
                self._refusals[event.stream_id] = pending
        elif kind is ev.DataReceived:
            pending = self._requests.get(event.stream_id)
            if pending is not None:
                pending[1] += event.data
                if len(pending[1]) > _MAX_BODY:
                    self._requests.pop(event.stream_id, None)
                    pending[2].set_result(False)
                    if not self.client_side:
                        self.respond(event.stream_id, 413, [(b"content-type", b"text/plain")],
                                     b"request body too large\n")
        elif kind is ev.StreamEnded or kind is ev.StreamReset:
            pending = self._requests.pop(event.stream_id, None)
            if pending is not None:
                pending[2].set_result(kind is ev.StreamEnded)
                if not self.client_side and self.owner is not None and kind is ev.StreamEnded:
                    self.owner._request_complete(self, event.stream_id, pending[0], bytes(pending[1]))
            elif kind is ev.StreamReset:
                logger.debug("ws2fast: %s", event)
            if pending is not None and kind is ev.StreamReset:
                self._maybe_idle()
        elif kind is ev.RequestReceived:
            self._requests[event.stream_id] = [event, bytearray(), self.loop.create_future()]
        elif kind is ev.ResponseReceived:
            pending = self._requests.get(event.stream_id)
            if pending is not None:
                pending[0] = event
        elif kind is ev.WebSocketRequested:
            if self.owner is not None:
                self.owner._websocket_requested(self, event)
        elif kind is ev.ConnectionTerminated:
            if not event.remote or event.error_code != ErrorCode.NO_ERROR:
                logger.info("ws2fast: connection terminated: %s", event)
            if self.client_side and not self.settings_received.done():
                self.settings_received.set_exception(HandshakeFailed(
                    event.message or f"the server ended the connection before its SETTINGS: {event}"))
                self.settings_received.exception()      # nobody may be waiting: no warning
            for sid, entry in self._handshakes.items():
                if entry.future.done() or (event.remote and (sid > event.last_stream_id
                                                             or event.error_code == ErrorCode.NO_ERROR)):
                    # Above last_stream_id: not processed, WebSocketRejected follows (with what
                    # was sent early); at or below it after a graceful GOAWAY: may still complete.
                    continue
                entry.future.set_exception(ConnectionLost(f"the connection ended: {event}"))

    def _after_websocket_closed(self) -> None:
        if self._reading_paused and self._queued <= self._max_queued // 2:
            self._resume_reading()
        self._maybe_idle()

    # -- server deadlines: handshake (slowloris) and idle ---------------------------------------

    def begin_handling(self) -> None:
        """Server: a request (or WebSocket request) is complete and its handler starts."""
        self._greeted = True
        self._handling += 1
        self._cancel_deadline()

    def end_handling(self) -> None:
        """Server: that handler is done (responded, refused, or its WebSocket is open)."""
        self._handling -= 1
        self._maybe_idle()

    def _busy(self) -> bool:
        # Over HTTP/1.1 a request still arriving does not count: the next request must arrive
        # whole within idle_timeout.  Over HTTP/2 a request body in progress does.
        return bool(self.websockets) or self._handling > 0 or (self._multiplexed and bool(self._requests))

    def _maybe_idle(self) -> None:
        """Server: start the idle clock if nothing runs on the connection."""
        timeout = self.config.idle_timeout
        if self.client_side or timeout is None or self._deadline is not None or self._lost \
                or not self._greeted or self._busy():
            return
        self._deadline = self.loop.call_later(timeout, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self._lost:
            return
        if not self._greeted:
            logger.info("ws2fast: no complete request within %g s (Config.handshake_timeout): "
                        "closing the connection", self.config.handshake_timeout)
            self.abort()
        elif not self._busy():
            logger.debug("ws2fast: idle for %g s (Config.idle_timeout): closing the connection",
                         self.config.idle_timeout)
            self.goaway()                           # (HTTP/2: GOAWAY(NO_ERROR)), then close:
            if not self.engine.open_streams:        # nothing runs, nothing may start
                self.close_transport()
            else:
                # Only streams winding down are left (WebSockets whose close handshake is
                # done, waiting for the peer's END_STREAM): each ends within close_timeout.
                self._deadline = self.loop.call_later(self.config.close_timeout + 1,
                                                      self.close_transport)

    # -- receive backpressure -----------------------------------------------------------------

    # consumed(ws, event) is compiled (ProtocolCore): the application took a message, so its
    # window goes back (HTTP/2) and reading resumes once the queues are down to half.

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self._lost:
            self._reading_paused = False
            self.transport.resume_reading()

    def receive_into(self, ws: WebSocket, buffer: Any) -> None:
        self.engine.receive_into(ws.stream_id, buffer)

    def cancel_receive_into(self, ws: WebSocket) -> None:
        if self.engine is not None:
            self.engine.cancel_receive_into(ws.stream_id)

    # -- WebSocket control ----------------------------------------------------------------------

    def close_websocket(self, ws: WebSocket, code: int, reason: str) -> None:
        try:
            events = self.engine.close_websocket(ws.stream_id, code, reason)
        except LocalProtocolError:
            return
        if events:
            self._dispatch(events)
        self.flush()

    def abort_websocket(self, ws: WebSocket) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.engine.abort_websocket(ws.stream_id)
        self._flush_or_abort()
        self.websockets.pop(ws.stream_id, None)
        self._uncount(ws)
        ws._set_closed(ws.close_code if ws.close_code is not None else 1006, ws.close_reason)
        self._wake_senders()                # a send() waiting on this WebSocket ends now

    async def open_websocket(self, path: str, authority: str, *, scheme: str, subprotocols: Any = (),
                             extensions: Any = (), origin: str | None = None, headers: Any = (),
                             listener: Any = None, owns_connection: bool = False,
                             ws: WebSocket | None = None) -> WebSocket:
        """Client: open one WebSocket on this connection and wait for the answer
        (``owns_connection``: the connection ends with the WebSocket, as connect() makes it;
        ``ws``: an early WebSocket that carries on over this one)."""
        future = self.start_websocket(path, authority, scheme=scheme, subprotocols=subprotocols,
                                      extensions=extensions, origin=origin, headers=headers,
                                      listener=listener, owns_connection=owns_connection, ws=ws)
        answer = await future
        if isinstance(answer, ev.WebSocketRejected):
            raise await self.refusal(answer)
        return answer

    def start_websocket(self, path: str, authority: str, *, scheme: str, subprotocols: Any = (),
                        extensions: Any = (), origin: str | None = None, headers: Any = (),
                        listener: Any = None, owns_connection: bool = False,
                        ws: WebSocket | None = None) -> asyncio.Future[Any]:
        """Client: send the handshake now; the future resolves to the WebSocket (accepted) or
        the ``WebSocketRejected`` event.  ``ws`` (early): the WebSocket to bind to the new
        stream at once, so that its messages can follow the handshake."""
        sid = self.engine.open_websocket(path, authority, scheme=scheme, subprotocols=subprotocols,
                                         extensions=extensions, origin=origin, headers=headers)
        future = self.loop.create_future()
        self._handshakes[sid] = _Handshake(future, path, listener, owns_connection, ws)
        if ws is not None:
            ws._bind(self, sid)
        self.flush()
        return future

    async def refusal(self, answer: Any, undelivered: tuple = ()) -> HandshakeFailed:
        """The error that reports a refused handshake (with the refusal's body, once it came)."""
        body = b""
        pending = self._refusals.pop(answer.stream_id, None)
        if pending is not None:
            try:
                await asyncio.wait_for(asyncio.shield(pending[2]), self.config.close_timeout)
            except asyncio.TimeoutError:
                self._requests.pop(answer.stream_id, None)
            body = bytes(pending[1])
        return HandshakeFailed(answer.reason or f"the server answered {answer.status}", answer.status,
                               answer.headers, body, undelivered=undelivered)

    def respond(self, stream_id: int, status: int, headers: Any, body: bytes) -> bool:
        """Server: answer a plain request.  False if it no longer awaits an answer (its stream
        was reset, the connection is gone); a response that cannot be sent raises what
        ``send_response`` raises, before anything of it is written."""
        engine = self.engine
        if engine is None or self._lost or not engine.response_pending(stream_id):
            return False
        self.deliver(engine.send_response(stream_id, status, headers, body))
        return True

    def respond_failed(self, stream_id: int) -> None:
        """Server: answering a request failed.  A 500 if nothing of the answer went out; else
        the stream is reset (HTTP/2) or the connection dropped (HTTP/1.1), so that the client
        never waits for the rest."""
        engine = self.engine
        if engine is None or self._lost:
            return
        if engine.response_pending(stream_id):
            self.respond(stream_id, 500, [(b"content-type", b"text/plain")], b"internal error\n")
        else:
            with contextlib.suppress(LocalProtocolError):
                engine.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
            self._flush_or_abort()

    def _flush_or_abort(self) -> None:
        # After abandoning an exchange: over HTTP/2 the RST_STREAM goes out; over HTTP/1.1 the
        # engine says the connection is over, and it is dropped at once.
        if self.engine.closed:
            self.abort()
        else:
            self.flush()

    def deliver(self, events: list[Any] | None) -> None:
        """Hand out events made outside a read (answers to the application's calls), then
        write."""
        if events:
            self._dispatch(events)
        self.flush()

    def accept_websocket(self, ws: WebSocket, subprotocol: str | None, headers: Any) -> list[Any] | None:
        """Server: accept the WebSocket request on ``ws.stream_id``; the events of messages that
        came before the answer (:meth:`deliver` them once the WebSocket's handler or listener
        is ready), or None if the stream went away meanwhile."""
        sid = ws.stream_id
        self.websockets[sid] = ws
        early = self.engine.accept_websocket(sid, subprotocol, headers=headers)
        if not self.engine.has_stream(sid):
            self.websockets.pop(sid, None)
            return None
        return early

    def reject_websocket(self, stream_id: int, status: int, headers: Any, body: bytes) -> None:
        """Server: refuse the WebSocket request on ``stream_id`` with an HTTP response."""
        self.deliver(self.engine.reject_websocket(stream_id, status, headers, body))

    async def request(self, method: str, path: str, authority: str, scheme: str, headers: Any,
                      body: bytes) -> tuple[int, tuple, bytes]:
        """Client: a plain request; returns (status, headers, body)."""
        sid = self.engine.send_request(method, path, authority, scheme=scheme, headers=headers, body=body)
        pending: list[Any] = [None, bytearray(), self.loop.create_future()]
        self._requests[sid] = pending
        self.flush()
        complete = await pending[2]
        response = pending[0]
        if not complete or response is None:
            raise ConnectionLost(f"the response to {method} {path} did not complete")
        return response.status, response.headers, bytes(pending[1])

    def _keepalive_tick(self) -> None:
        """One timer per connection: every ping_interval, a round of pings (an HTTP/2 PING and a
        ping on every WebSocket that has none unanswered); a ping not answered within
        ping_timeout fails its WebSocket (1011), or drops the connection (HTTP/2 PING)."""
        self._keepalive = None
        if self._lost:
            return
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        assert interval is not None
        now = self.loop.time()
        if self._http2_ping is not None and timeout is not None and now >= self._http2_ping_deadline:
            logger.info("ws2fast: no answer to an HTTP/2 PING in %g s: dropping the connection", timeout)
            self.abort()
            return
        new_round = now >= self._keepalive_round
        if new_round:
            self._keepalive_round = now + interval
        deadline = self._keepalive_round
        if self._http2_ping is not None and timeout is not None:
            deadline = min(deadline, self._http2_ping_deadline)
        if self.engine is None:
            self._keepalive = self.loop.call_at(deadline, self._keepalive_tick)
            return
        if new_round and self._http2_ping is None:
            self._ping_counter += 1
            payload = self._ping_counter.to_bytes(8, "big")
            if self.engine.send_connection_ping(payload) and timeout is not None:
                self._http2_ping, self._http2_ping_deadline = payload, now + timeout
                deadline = min(deadline, self._http2_ping_deadline)
        for ws in list(self.websockets.values()):
            ws_deadline = ws._keepalive(now, new_round, timeout)
            if ws_deadline is not None:
                deadline = min(deadline, ws_deadline)
        self.flush()
        if not self._lost:
            self._keepalive = self.loop.call_at(deadline, self._keepalive_tick)

    def goaway(self) -> None:
        """Graceful shutdown of the connection: GOAWAY (HTTP/2; over HTTP/1.1 the exchange in
        progress finishes)."""
        if self.engine is not None and not self._lost:
            self.engine.goaway()
            self.flush()


if TYPE_CHECKING:
    from .._upcalls import ProtocolCoreUpcalls

    def _implements(c: Connection) -> ProtocolCoreUpcalls:      # mypy checks the calls the core makes
        return c

    def _hooks(ws: WebSocket) -> _WebSocketHooks:                # ... and what it calls on WebSockets
        return ws
