# The compiled half of the asyncio layer (ws2fast.aio.connection.Connection and
# ws2fast.aio.websocket.WebSocket subclass these): the per-read path, so that a read that
# completes messages costs no Python call of ours between asyncio and the application.
#
#   get_buffer -> buffer_updated -> receive_data (H2Core, in C) -> _dispatch -> the listener's
#   on_message, or the WebSocket's queue -> flush -> transport.write
#
# and WebSocket.send_nowait.  Everything else (connection set-up, handshakes, requests, control
# events, deadlines, keepalive, backpressure policy) stays in the Python subclasses, which this
# calls for any event that is not a message.  Included by core.pyx after h2core.pxi.

import logging as _logging

_aio_logger = _logging.getLogger("ws2fast")

# WebSocketCore._send_soon: how much may wait for the loop turn's single write
cdef enum:
    _FLUSH_AT = 65536


cdef class WebSocketCore:
    """The compiled half of :class:`ws2fast.aio.WebSocket` (which subclasses it).

    Not meant to be used alone: its fields are the Python WebSocket's and its connection's.
    """
    cdef public ProtocolCore _connection
    cdef public uint32_t stream_id
    cdef public object _listener        # a WebSocketListener, or None (coroutine API)
    cdef public object _messages        # collections.deque of messages not yet taken
    cdef public object _waiter          # the future a recv() sleeps on, or None
    cdef public object _closed          # a future, done once the WebSocket is closed
    cdef public bint _close_started     # close() was called
    cdef public bint _counted           # its queued messages count against the connection

    def send_nowait(self, message):
        """Send a message now, without waiting for window or transport (for listeners).

        What flow control does not let out yet is queued; :attr:`buffered_amount` says how much
        waits, so a producer can slow down.
        """
        self._frame(message)
        self._connection.schedule_flush()

    def _take(self):
        """The next queued message's data (there must be one): its window goes back."""
        event = self._messages.popleft()
        self._connection.consumed(self, event)
        return _message_data(event)

    def _send_ready(self, message):
        """Frame ``message`` (str or bytes-like) and write it: True when nothing waits after
        it (the caller need not wait for window or transport), else False."""
        cdef ProtocolCore c = self._connection
        self._frame(message)
        c.flush()
        if c._paused_writing or c._lost:
            return False
        return c.engine._outgoing_buffered(self.stream_id) == 0

    def _send_soon(self, message):
        """Frame ``message`` (str or bytes-like); it is written with what else this loop turn
        sends: at the end of the batch being read, when the caller's receive would wait
        (:attr:`ProtocolCore._unflushed` says there is some), on the next loop turn, or at once
        once 64 KiB wait.  True when the caller need not wait; False while the transport asked
        us to stop writing or flow control holds what was sent."""
        cdef ProtocolCore c = self._connection
        cdef Py_ssize_t n
        self._frame(message)
        try:
            n = len(message)
        except TypeError:
            n = _FLUSH_AT
        c._unflushed += n
        if c._unflushed >= _FLUSH_AT:
            c.flush()
        else:
            c.schedule_flush()
        if c._paused_writing or c._lost:
            return False
        return c.engine._outgoing_buffered(self.stream_id) == 0

    cdef int _frame(self, message) except -1:
        # Queue the message's frame on the engine that carries this WebSocket.
        if self._close_started or self._closed.done():
            raise self._closed_error()
        self._connection.engine._send_message(self.stream_id, message)
        return 0

    cdef int _deliver(self, event) except -1:
        self._messages.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return 0


cdef inline object _message_data(event):
    # What the application gets: the str, the bytes, or a copy of what a registered buffer
    # received (the buffer is the parser's to reuse).
    if type(event) is TextMessage:
        return (<TextMessage>event).data
    if (<BinaryMessage>event).into_buffer:
        return bytes(memoryview((<BinaryMessage>event).data).cast("B")[:(<BinaryMessage>event).nbytes])
    return (<BinaryMessage>event).data


cdef inline Py_ssize_t _wire_size(event):
    if type(event) is TextMessage:
        return (<TextMessage>event).wire_size
    return (<BinaryMessage>event).wire_size


cdef class ProtocolCore:
    """The compiled half of :class:`ws2fast.aio.connection.Connection` (which subclasses it
    together with ``asyncio.BufferedProtocol``).

    Not meant to be used alone: the Python connection sets its fields and provides the
    methods declared in ``ws2fast._upcalls.ProtocolCoreUpcalls``.
    """
    cdef public object loop
    cdef public EngineCore engine       # H2Connection or H1Connection, None until known
    cdef public object transport
    cdef public object _view            # the receive buffer (a memoryview)
    cdef public dict websockets         # stream id -> WebSocket
    cdef public list _send_waiters      # futures of send()s waiting for window / transport
    cdef public object _timer           # the H2Connection's timeout timer, or None
    cdef public bint _lost              # connection_lost() was called
    cdef public bint _in_batch          # dispatching the events of one read
    cdef public bint _flush_scheduled
    cdef public bint _reading_paused
    cdef public bint _paused_writing    # the transport asked us to stop writing
    cdef public bint _discarding        # lingering close: input is read and dropped, nothing written
    cdef public Py_ssize_t _discard_left  # ... this many more octets at most
    cdef public Py_ssize_t _queued      # messages delivered to WebSockets, not yet taken
    cdef public Py_ssize_t _max_queued  # Config.max_queued_messages
    cdef public Py_ssize_t max_queue    # HTTP/1.1: messages one WebSocket may hold
    cdef public Py_ssize_t _unflushed   # octets framed by WebSocketCore._send_soon, not written yet
    cdef bint _other_events             # an event that is not a message came (see _send_moved)
    cdef uint64_t _progress_seen        # the engine's _progress() when senders were last woken

    def __cinit__(self, *args, **kwargs):
        self.websockets = {}
        self._send_waiters = []

    # -- asyncio.BufferedProtocol ----------------------------------------------------------

    def get_buffer(self, sizehint):
        return self._view

    def buffer_updated(self, Py_ssize_t nbytes):
        self._bytes_in(nbytes)

    cdef int _bytes_in(self, Py_ssize_t nbytes) except -1:
        # nbytes were read into _view (by asyncio's transport, or by SocketTransport directly)
        if self._discarding:
            self._discard_left -= nbytes
            if self._discard_left < 0:
                self._linger_done()             # read as much as we drop: close now
            return 0
        if self.engine is None:
            self._sniff(self._view[:nbytes])        # decides the protocol, then _received
        else:
            self._received(self._view[:nbytes])
        return 0

    cpdef _received(self, data):
        """Feed bytes to the connection, hand out its events, write what it answered."""
        cdef list events
        try:
            events = self.engine._receive_events(data)
        except Exception:
            _aio_logger.exception("ws2fast: receive_data failed")
            self.abort()
            return None
        if events:
            self._in_batch = True
            try:
                self._dispatch(events)
            finally:
                self._in_batch = False
        if self._send_waiters and self._send_moved():
            self._wake_senders()            # a WINDOW_UPDATE makes no event, but opens windows
        self.flush()
        return None

    cdef bint _send_moved(self):
        # Whether what senders wait for may have changed since they were last woken: HTTP/2
        # DATA queued for window went out (or was dropped), or an event other than a message
        # came (a WebSocket closed, a stream was reset, the connection ended).  Waking them on
        # every read instead costs a task switch per read while the peer's window stays shut.
        cdef bint moved = self._other_events
        cdef uint64_t progress = self.engine._progress()
        if progress != self._progress_seen:
            self._progress_seen = progress
            moved = True
        self._other_events = False
        return moved

    # -- events ------------------------------------------------------------------------------

    cpdef _dispatch(self, list events):
        """Messages go to their WebSocket's listener or queue; any other event to ``_event``."""
        cdef WebSocketCore ws
        cdef dict websockets = self.websockets
        cdef uint32_t sid
        cdef bint multiplexed = self.engine.multiplexed
        for event in events:
            kind = type(event)
            if kind is TextMessage or kind is BinaryMessage:
                sid = (<TextMessage>event).stream_id if kind is TextMessage \
                    else (<BinaryMessage>event).stream_id
                ws = websockets.get(sid)
                if ws is None:
                    continue
                if ws._listener is not None:
                    self._listen(ws, event)
                    continue
                ws._deliver(event)
                self._queued += 1
                if self._queued > self._max_queued or (not multiplexed and len(ws._messages) > self.max_queue):
                    self._pause_reading()
            else:
                self._other_events = True
                self._event(event)
        if self._send_waiters and self._send_moved():
            self._wake_senders()
        return None

    cdef int _listen(self, WebSocketCore ws, event) except -1:
        try:
            ws._listener.on_message(ws, _message_data(event))
        except Exception:
            _aio_logger.exception("ws2fast: on_message failed: closing with 1011")
            self.close_websocket(ws, 1011, "internal error")
        if self.engine is not None:             # (the listener may have ended everything)
            self.engine._ack(ws.stream_id, _wire_size(event))
        return 0

    cpdef _uncount(self, WebSocketCore ws):
        """A closed WebSocket: its queued messages no longer hold the connection's reading."""
        if ws._counted:
            ws._counted = False
            self._queued -= len(ws._messages)
        return None

    cpdef consumed(self, WebSocketCore ws, event):
        """The application took ``event``: give its window back / resume reading."""
        cdef EngineCore engine = self.engine
        if ws._counted:
            self._queued -= 1
        engine._ack(ws.stream_id, _wire_size(event))
        if engine._has_output() and not self._unflushed:
            self.flush()        # (with messages framed by _send_soon, their write carries it)
        # Over a multiplexed connection only the connection's queue holds reading back; over
        # HTTP/1.1 also the one WebSocket's (max_queue).
        if self._reading_paused and self._queued <= self._max_queued // 2 \
                and (engine.multiplexed or len(ws._messages) <= self.max_queue // 2):
            self._resume_reading()

    # -- output ------------------------------------------------------------------------------

    cpdef flush(self):
        """Write what the connection has queued; close the transport when it says so."""
        cdef EngineCore engine = self.engine
        cdef bytes data
        if engine is None or self.transport is None or self._lost or self._discarding:
            return None
        self._unflushed = 0
        data = engine._take_all()
        if data:
            self.transport.write(data)
        if self._timer is not None or engine._has_deadlines():
            self._arm_timer()
        if engine._finished():
            self.close_transport()
        return None

    cpdef schedule_flush(self):
        """Flush soon: at the end of the batch being read, or on the next loop turn."""
        if not self._in_batch and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)
        return None

    def _scheduled_flush(self):
        self._flush_scheduled = False
        self.flush()
