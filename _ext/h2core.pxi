# The compiled half of the HTTP/2 connection (ws2fast.h2connection.H2Connection is the other
# half): the per-byte work that must not cost a Python call per frame.
#
# - DATA frames on a stream that carries an accepted WebSocket go from the frame reader straight
#   to that stream's WebSocket parser (FrameReader._data_piece calls H2Core._data_piece); only
#   whole messages and control events reach Python.
# - Receive windows of the connection and of every stream are checked and charged here, and
#   released with batched WINDOW_UPDATEs (one per half window), either as the bytes are parsed
#   or, with release_on_consume, as the application acknowledges messages.
# - Outgoing DATA (WebSocket frames and plain bodies) is written here under the send windows;
#   what does not fit waits in a per-stream queue until WINDOW_UPDATE or SETTINGS open them.
# - The output buffer that data_to_send() drains.
#
# Everything else (SETTINGS, HEADERS, stream states, GOAWAY, policy) is Python.  Included by
# core.pyx after every other layer.

cdef enum:
    _ROUTE_PYTHON = 0       # the current DATA frame goes to Python as DataPieces
    _ROUTE_PARSER = 1       # ... to its stream's WebSocket parser
    _ROUTE_DROP = 2         # ... nowhere (its stream was failed); only the windows count it

cdef enum:
    _MIN_OUTPUT = 1024      # the smallest output buffer allocated

cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject** pv, Py_ssize_t newsize) except -1

cdef enum:
    _SIG_STREAM_ERROR = 1       # code: the RFC 9113 error code to reset the stream with
    _SIG_WEBSOCKET_FAILED = 2   # code: the RFC 6455 close code
    _SIG_END_STREAM = 3         # the peer ended a routed stream

SIGNAL_STREAM_ERROR = _SIG_STREAM_ERROR
SIGNAL_WEBSOCKET_FAILED = _SIG_WEBSOCKET_FAILED
SIGNAL_END_STREAM = _SIG_END_STREAM
_SIGNAL_NAMES = {_SIG_STREAM_ERROR: "stream error", _SIG_WEBSOCKET_FAILED: "WebSocket failed",
                 _SIG_END_STREAM: "end of stream"}


@cython.final
@cython.no_gc
cdef class Signal:
    """Something the compiled hot path found that the Python connection must act on.

    Internal: appears in :meth:`H2Core._receive` output, never in ``receive_data``'s.
    """
    cdef readonly int kind
    cdef readonly uint32_t stream_id
    cdef readonly int code
    cdef readonly object message

    def __repr__(self):
        return "Signal(%s, stream_id=%d, code=%d, %r)" % (
            _SIGNAL_NAMES.get(self.kind, self.kind), self.stream_id, self.code, self.message)


cdef Signal _signal(int kind, uint32_t stream_id, int code, message):
    cdef Signal s = Signal.__new__(Signal)
    s.kind = kind
    s.stream_id = stream_id
    s.code = code
    s.message = message
    return s


cdef class H2Stream:
    """One HTTP/2 stream as the compiled core sees it: windows, the WebSocket parser that its
    DATA goes to (once a WebSocket is accepted) and the queue of DATA waiting for window.

    The ``public`` fields are the Python connection's to set; ``info`` holds its own state.
    """
    cdef readonly uint32_t stream_id
    cdef public FrameParser parser      # DATA is routed to it when set (and not discarding)
    cdef public int64_t recv_window     # what the peer may still send us on this stream
    cdef public int64_t recv_release    # received, consumed, not yet given back
    cdef public int64_t recv_held       # message bytes awaiting acknowledge()
    cdef public int64_t send_window
    cdef public bint local_ended        # END_STREAM sent
    cdef public bint remote_ended       # END_STREAM received
    cdef public bint discard            # routed DATA is dropped (WebSocket closed or failed)
    cdef public bint ws_open            # send_message is allowed (accepted, no Close sent)
    cdef public list sent_early         # client, early: copies of the messages sent before
                                        # the answer (None otherwise)
    cdef public object deflate          # ws2fast.deflate.PerMessageDeflate when negotiated
    cdef public object info
    cdef list _pending                  # bytes objects queued for DATA frames
    cdef Py_ssize_t _pending_offset     # bytes of _pending[0] already sent
    cdef readonly Py_ssize_t pending_bytes
    cdef readonly uint64_t flushed      # queued bytes written out, ever (progress, for stalls)
    cdef public bint pending_end        # END_STREAM goes after the queue
    cdef int64_t _frame_held            # bytes of the current DATA frame held for acknowledge()
    cdef public int64_t partial_held    # held bytes of the message in progress
    cdef public int64_t ack_credit      # bytes of held-back messages already given back early
    cdef uint64_t _py_batch             # the last _receive that handed its DATA to Python

    def __cinit__(self, uint32_t stream_id):
        self.stream_id = stream_id
        self._pending = []

    def __repr__(self):
        return "<H2Stream %d recv=%d send=%d pending=%d%s%s%s>" % (
            self.stream_id, self.recv_window, self.send_window, self.pending_bytes,
            " websocket" if self.parser is not None else "",
            " local-ended" if self.local_ended else "", " remote-ended" if self.remote_ended else "")


cdef class H2Core(EngineCore):
    """The compiled half of :class:`ws2fast.H2Connection` (which subclasses it).

    Not meant to be used alone: its underscored methods are the Python connection's, which
    provides those declared in ``ws2fast._upcalls.H2CoreUpcalls``.
    """
    cdef FrameReader _reader
    # The output buffer is a bytes object of _ocap octets (owned here, refcount 1, never seen
    # outside), _olen of them written.  data_to_send() hands the object itself out, shrunk to
    # _olen: no copy.  An idle connection holds none.
    cdef PyObject* _oobj
    cdef unsigned char* _obuf
    cdef Py_ssize_t _olen
    cdef Py_ssize_t _ocap
    cdef H2Stream _last                 # the stream looked up last (most traffic is on one)
    cdef H2Stream _route                # the stream of the DATA frame being read
    cdef uint32_t _route_sid            # ... and its id (the stream may not exist yet)
    cdef int _mode
    cdef int64_t _flen
    cdef set _blocked                   # streams with queued DATA
    cdef bint _slow                     # the last _receive produced more than messages
    cdef uint64_t _batch                # _receive calls, ever
    # Flow control, written by the core only (the Python layers never touch these).
    cdef int64_t _conn_recv_release
    cdef int64_t _partial_total         # sum of the streams' partial_held
    cdef int64_t _conn_send_window
    # Grows whenever queued DATA goes out or a stream's queue is dropped: what a sender waiting
    # for window watches (the asyncio layer wakes its senders only when it moved).
    cdef uint64_t _send_progress
    #
    # The surface shared with the Python connection (ws2fast/_h2streams.py and the layers above
    # it), each field with the one side that writes it; the stubs (ws2fast/_core.pyi) list the
    # same fields.  Declared here, and initialized in __cinit__, only: the Python side never
    # assigns them afresh.
    #
    # written by the core, read by Python:
    cdef public uint64_t _empty_data    # DATA frames with no payload and no END_STREAM, ever
    cdef public dict streams            # THE stream table, id -> H2Stream: _core_add/_core_remove
    # written by Python from its Config (__init__, initiate, SETTINGS), read by the core:
    cdef public bint _mask_outgoing     # client side: WebSocket frames are masked
    cdef public bint _release_on_consume
    cdef public int64_t _conn_recv_size     # the connection window we keep topping up to
    cdef public int64_t _stream_recv_size   # our SETTINGS_INITIAL_WINDOW_SIZE
    cdef public int64_t _max_outgoing_frame # the peer's SETTINGS_MAX_FRAME_SIZE
    # written by both: Python sets the starting value (initiate), the core keeps it:
    cdef public int64_t _conn_recv_window
    # Python's state, kept here so that the hot path (receive_data, and the asyncio protocol's
    # flush) reads it without a dictionary lookup; written by Python only (the core takes
    # _deferred's events, leaving it empty):
    cdef public bint _initiated             # initiate() was called
    cdef public bint _terminated            # GOAWAY with an error sent, or connection failed
    cdef public list _deferred              # events made by send_* calls, for the next batch
    cdef public set _lingering              # stream ids waiting for an END_STREAM or a deadline
    cdef public list _settings_pending      # our SETTINGS not yet acknowledged, with when sent

    def __cinit__(self, *args, **kwargs):
        self.multiplexed = True
        self._blocked = set()
        self._conn_recv_window = 65535
        self._conn_recv_size = 65535
        self._stream_recv_size = 65535
        self._conn_send_window = 65535
        self._max_outgoing_frame = 16384
        self._deferred = []
        self._lingering = set()
        self._settings_pending = []
        self.streams = {}

    def __dealloc__(self):
        Py_XDECREF(self._oobj)

    # -- set-up by the Python connection ------------------------------------------------------

    def _core_reader(self, FrameReader reader):
        """Route this reader's DATA frames through the core (the reader needs stream_data)."""
        if not reader._stream_data:
            raise ValueError("the reader must be made with stream_data=True")
        reader._core = self
        self._reader = reader

    def _bind_parser(self, H2Stream stream, FrameParser parser):
        """Route the stream's DATA to ``parser``, whose events will carry the stream id."""
        parser._stream_id = stream.stream_id
        stream.parser = parser

    def _core_add(self, H2Stream stream):
        """Put a new stream in the stream table (``streams``)."""
        self.streams[stream.stream_id] = stream

    def _core_remove(self, uint32_t stream_id):
        """Take a stream out of the stream table: its queued output is dropped and its held
        bytes given back to the connection window."""
        cdef H2Stream s = self.streams.pop(stream_id, None)
        if s is None:
            return
        if self._last is s:
            self._last = None
        if self._route is s:
            self._route = None
            self._mode = _ROUTE_DROP if self._mode == _ROUTE_PARSER else self._mode
        self._blocked.discard(s)
        s._pending = []
        s.pending_bytes = 0
        self._send_progress += 1
        s._pending_offset = 0
        if s.recv_held + s.partial_held:
            self._partial_total -= s.partial_held
            self._give_back(None, s.recv_held + s.partial_held)
            s.recv_held = 0
            s.partial_held = 0

    cdef inline H2Stream _lookup(self, uint32_t stream_id):
        cdef H2Stream s = self._last
        if s is not None and s.stream_id == stream_id:
            return s
        s = <H2Stream>self.streams.get(stream_id)
        if s is not None:
            self._last = s
        return s

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data):
        """Feed received bytes; return the events they completed, in order."""
        return self._receive_events(data)

    cdef list _receive_events(self, data):
        # The hot path: a batch of WebSocket messages only (no frame for Python, no deferred
        # event) is returned as the reader made it; anything else goes to the Python half.
        cdef list items
        if self._terminated:
            return []
        if not self._initiated:
            raise LocalProtocolError("call initiate() before receive_data()")
        try:
            items = self._receive_items(data)
        except FrameError as exc:
            return self._receive_slow(exc.frames, exc)
        if not self._slow and not self._deferred:
            return items
        return self._receive_slow(items, None)

    cdef list _receive_items(self, data):
        cdef Py_ssize_t emitted = self._reader._emitted
        self._slow = False
        cdef H2Stream s
        self._batch += 1
        if self._mode == _ROUTE_PYTHON and self._reader._streaming:
            # The rest of a DATA frame goes where it began: to Python, which feeds it to the
            # parser after this batch, so the stream's next frames must follow it there.  (Its
            # stream may have been made since, by Python, from HEADERS read with it.)
            s = self._lookup(self._route_sid)
            if s is not None:
                s._py_batch = self._batch
        frames = self._reader._feed_data(data)
        if self._reader._emitted != emitted:
            self._slow = True
        return frames

    cdef int _data_begin(self, uint32_t sid, uint32_t flen, list out) except -1:
        # A DATA frame's header was read: charge the windows (RFC 9113 §6.9.1) and decide where
        # its payload goes.  Returns a connection error code (the reader fails) or 0.
        cdef H2Stream s
        if flen > self._conn_recv_window:
            return self._reader._fail(_FLOW_CONTROL_ERROR, "DATA frame of %d octets on stream %d "
                                      "exceeds the connection's receive window of %d (RFC 9113 §6.9.1)"
                                      % (flen, sid, self._conn_recv_window))
        self._conn_recv_window -= flen
        self._flen = flen
        self._route_sid = sid
        if flen == 0 and not (self._reader._fflags & _FLAG_END_STREAM):
            self._empty_data += 1               # Python charges Config.empty_frame_limit
            self._slow = True
        s = self._lookup(sid)
        self._route = s
        if s is None:
            self._mode = _ROUTE_PYTHON
            return 0
        if flen > s.recv_window:
            # A stream error: the stream is reset, the connection goes on.
            self._slow = True
            PyList_Append(out, _signal(_SIG_STREAM_ERROR, sid, _FLOW_CONTROL_ERROR,
                                       "DATA frame of %d octets exceeds stream %d's receive window "
                                       "of %d (RFC 9113 §6.9.1)" % (flen, sid, s.recv_window)))
            self._mode = _ROUTE_DROP
            s.discard = True
            return 0
        s.recv_window -= flen
        if s.parser is None or s.remote_ended or s._py_batch == self._batch:
            # Python takes it: no parser yet, or DATA of this stream earlier in this batch went
            # to Python (which feeds it to the parser only after the batch), so this must too,
            # to stay in order behind it.
            self._mode = _ROUTE_PYTHON
            s._py_batch = self._batch
        elif s.discard:
            self._mode = _ROUTE_DROP
        else:
            self._mode = _ROUTE_PARSER
        return 0

    cdef int _data_piece(self, const unsigned char* p, Py_ssize_t k, bint last, bint end_stream,
                         list out) except -1:
        # Payload octets of a routed or dropped DATA frame (padding already removed).
        cdef H2Stream s = self._route
        cdef FrameParser parser
        cdef uint64_t controls, data_before, done_before, partial_before
        cdef int64_t held
        cdef int err
        if self._mode == _ROUTE_PARSER and k:
            parser = s.parser
            controls = parser._controls
            data_before = parser._data_bytes
            done_before = parser._messages_done
            partial_before = parser._partial_bytes()
            err = parser._feed(p, k, out)
            if self._release_on_consume:
                self._hold(s, <int64_t>(parser._data_bytes - data_before), partial_before,
                           parser._messages_done != done_before, parser._partial_bytes())
            if err:
                parser._failed = True
                parser._error_code = err
                s.discard = True
                self._mode = _ROUTE_DROP
                self._slow = True
                PyList_Append(out, _signal(_SIG_WEBSOCKET_FAILED, s.stream_id, err,
                                           parser._error_message))
            elif parser._controls != controls:
                self._slow = True
                if parser._close_seen:
                    s.discard = True            # nothing after a Close counts (RFC 6455 §5.5.1)
        if not last:
            return 0
        if s is None:                           # the stream was forgotten mid-frame
            self._give_back(None, self._flen)
        else:
            held = s._frame_held
            s._frame_held = 0
            self._give_back(s, self._flen - held)
            if held:
                # All of the frame may be held: the window it shrank may now be the one a
                # pending release must reopen (see _give_back).
                self._update_windows(s)
        if end_stream and s is not None:
            s.remote_ended = True
            self._slow = True
            PyList_Append(out, _signal(_SIG_END_STREAM, s.stream_id, 0, None))
        self._route = None
        self._mode = _ROUTE_PYTHON
        return 0

    cdef int _hold(self, H2Stream s, int64_t consumed, uint64_t partial_before, bint completed,
                   uint64_t partial_after) except -1:
        # release_on_consume: message bytes are held back until acknowledge().  Bytes of the
        # message in progress are held too (s.partial_held), unless they pass half the stream
        # window, or the streams' parts together pass half the connection window: then this
        # stream's part goes back at once (and what went back early is credited against the
        # message's acknowledgement).  So a message larger than the window gets through, and
        # parts of messages on many streams can never fill the connection window between them
        # (each below its own limit, none could complete).
        cdef int64_t n
        s._frame_held += consumed
        if completed:
            s.ack_credit += <int64_t>partial_before - s.partial_held
            s.recv_held += s.partial_held + consumed - <int64_t>partial_after
            self._partial_total += <int64_t>partial_after - s.partial_held
            s.partial_held = <int64_t>partial_after
        else:
            s.partial_held += consumed
            self._partial_total += consumed
        if (s.partial_held > (self._stream_recv_size >> 1)
                or self._partial_total > (self._conn_recv_size >> 1)):
            n = s.partial_held
            s.partial_held = 0
            self._partial_total -= n
            self._give_back(s, n)
        return 0

    cdef int _give_back(self, H2Stream s, int64_t n) except -1:
        # n received octets are consumed: let the peer send them again (RFC 9113 §6.9).
        if n <= 0:
            return 0
        self._conn_recv_release += n
        if s is not None and not s.remote_ended:
            s.recv_release += n
        return self._update_windows(s)

    cdef int _update_windows(self, H2Stream s) except -1:
        # One WINDOW_UPDATE per half window, for the connection and for the stream, or sooner
        # when what is waiting to go back is more than the peer may still send: with bytes held
        # for the application, a window can run out while less than half of it is released,
        # and the peer must not be left waiting on a release we sit on.
        cdef int64_t release = self._conn_recv_release
        if release and (release >= (self._conn_recv_size >> 1) or release > self._conn_recv_window):
            self._conn_recv_release = 0
            self._conn_recv_window += release
            self._write_window_update(0, release)
        if s is not None and not s.remote_ended:
            release = s.recv_release
            if release and (release >= (self._stream_recv_size >> 1) or release > s.recv_window):
                s.recv_release = 0
                s.recv_window += release
                self._write_window_update(s.stream_id, release)
        return 0

    def _release(self, uint32_t stream_id, int64_t nbytes):
        """Give back ``nbytes`` of DATA that Python consumed (plain bodies, early data, DATA
        on closed streams): to the stream if it is still known, and to the connection."""
        self._give_back(self._lookup(stream_id) if stream_id else None, nbytes)

    def acknowledge(self, uint32_t stream_id, nbytes):
        """Tell the connection that the application consumed ``nbytes`` of messages on
        ``stream_id``, so their flow-control window can be given back (only needed with
        ``Config(release_on_consume=True)``; ``event.wire_size`` is what a message counts).

        Acknowledging on a stream that has gone is harmless: its bytes went back to the
        connection when it closed.  Only whole messages are held: a message in progress is given
        back as it is parsed, so a message larger than the window still gets through.
        """
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        self._ack(stream_id, min(nbytes, 0x7FFFFFFFFFFFFFFF))

    cdef int _ack(self, uint32_t stream_id, int64_t n) except -1:
        cdef H2Stream s = self._lookup(stream_id)
        cdef int64_t credit
        if s is None or n <= 0:
            return 0
        credit = min(n, s.ack_credit)           # went back already, while it was in progress
        s.ack_credit -= credit
        n = min(n - credit, s.recv_held)        # never more than is held
        s.recv_held -= n
        return self._give_back(s, n)

    # -- output buffer --------------------------------------------------------------------------

    cdef unsigned char* _reserve(self, Py_ssize_t n) except NULL:
        cdef Py_ssize_t cap
        cdef object fresh
        if self._olen + n > self._ocap:
            cap = max(self._olen + n, self._ocap * 2, <Py_ssize_t>_MIN_OUTPUT)
            if self._oobj is NULL:
                fresh = PyBytes_FromStringAndSize(NULL, cap)
                Py_INCREF(fresh)
                self._oobj = <PyObject*>fresh
            else:
                self._resize_output(cap)
            self._obuf = <unsigned char*>PyBytes_AS_STRING(<object>self._oobj)
            self._ocap = cap
        self._olen += n
        return self._obuf + self._olen - n

    cdef int _write_window_update(self, uint32_t stream_id, int64_t increment) except -1:
        cdef unsigned char* w = self._reserve(_FRAME_HEADER_SIZE + 4)
        _put_frame_header(w, 4, _WINDOW_UPDATE, 0, stream_id)
        _put32(w + _FRAME_HEADER_SIZE, <uint32_t>increment)
        return 0

    def _write(self, data):
        """Queue bytes (whole frames) for the peer, ahead of nothing: in call order."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            memcpy(self._reserve(view.len), view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    @property
    def _output_size(self):
        return self._olen

    def data_to_send(self, amount=None):
        """The bytes to write to the peer, and forget them.  ``amount`` limits how many."""
        if amount is None:
            return self._take_output(self._olen)
        if amount < 0:
            raise ValueError("amount must not be negative")
        return self._take_output(min(self._olen, <Py_ssize_t>amount))

    cdef int _resize_output(self, Py_ssize_t size) except -1:
        try:
            _PyBytes_Resize(&self._oobj, size)
        except MemoryError:
            # The object is gone (_PyBytes_Resize freed it), and with it what was queued.
            self._oobj = NULL
            self._obuf = NULL
            self._olen = 0
            self._ocap = 0
            raise
        return 0

    cdef bytes _take_output(self, Py_ssize_t n):
        cdef bytes out
        if n <= 0:
            return b""
        if n < self._olen:                      # part of it: copied out, the rest moves up
            out = PyBytes_FromStringAndSize(<const char*>self._obuf, n)
            memmove(self._obuf, self._obuf + n, self._olen - n)
            self._olen -= n
            return out
        if n < self._ocap:
            self._resize_output(n)
        out = <bytes>self._oobj                 # a new reference; ours is dropped below
        Py_DECREF(out)
        self._oobj = NULL
        self._obuf = NULL
        self._olen = 0
        self._ocap = 0
        return out

    # -- sending ------------------------------------------------------------------------------

    cdef inline H2Stream _websocket(self, uint32_t stream_id):
        cdef H2Stream s = self._lookup(stream_id)
        if s is None or not s.ws_open:
            raise LocalProtocolError("stream %d carries no open WebSocket (never opened, not yet "
                                     "accepted, closing or closed)" % stream_id)
        return s

    def send_message(self, uint32_t stream_id, data):
        """Send one WebSocket message: ``str`` as text, any bytes-like object as binary."""
        self._send_message(stream_id, data)

    cdef int _send_message(self, uint32_t stream_id, data) except -1:
        cdef H2Stream s = self._websocket(stream_id)
        cdef Py_buffer view
        cdef const char* p
        cdef Py_ssize_t n
        if s.sent_early is not None:
            # Sent before the server answered (Config.early_handshake): kept until it does, to
            # report what it did not take.  Uncompressed: nothing is negotiated yet.
            s.sent_early.append(data if PyUnicode_Check(data) or PyBytes_CheckExact(data)
                                else bytes(data))
        if s.deflate is not None:
            return self._send_deflated(s, data)
        if PyUnicode_Check(data):
            p = PyUnicode_AsUTF8AndSize(data, &n)
            self._send_ws(s, 0x81, <const unsigned char*>p, n, False)
        elif PyBytes_CheckExact(data):
            self._send_ws(s, 0x82, <const unsigned char*>PyBytes_AS_STRING(data),
                          PyBytes_GET_SIZE(data), False)
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                self._send_ws(s, 0x82, <const unsigned char*>view.buf, view.len, False)
            finally:
                PyBuffer_Release(&view)
        return 0

    cdef int _send_deflated(self, H2Stream s, data) except -1:
        # permessage-deflate (RFC 7692): compress the message unless it is below the threshold;
        # RSV1 marks a compressed message.
        cdef int b0 = 0x81 if PyUnicode_Check(data) else 0x82
        cdef bytes raw = (<str>data).encode("utf-8") if b0 == 0x81 else bytes(data)
        if PyBytes_GET_SIZE(raw) >= s.deflate.threshold:
            raw = s.deflate.compress(raw)
            b0 |= 0x40
        return self._send_ws(s, b0, <const unsigned char*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), False)

    def _send_ws_frame(self, uint32_t stream_id, int b0, payload, bint end_stream=False):
        """Send one WebSocket frame (first octet ``b0``) on a stream the Python side vouches
        for: control frames, fragments.  ``end_stream`` ends our side after it."""
        cdef H2Stream s = self._lookup(stream_id)
        cdef Py_buffer view
        if s is None:
            raise LocalProtocolError("stream %d is not open" % stream_id)
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            self._send_ws(s, b0, <const unsigned char*>view.buf, view.len, end_stream)
        finally:
            PyBuffer_Release(&view)

    cdef int _send_ws(self, H2Stream s, int b0, const unsigned char* p, Py_ssize_t n,
                      bint end_stream) except -1:
        cdef const uint8_t* key = _next_mask_key() if self._mask_outgoing else NULL
        cdef Py_ssize_t hlen = (2 if n < 126 else 4 if n <= 0xFFFF else 10) + (4 if key is not NULL else 0)
        cdef Py_ssize_t total = hlen + n
        cdef unsigned char* w
        cdef bytes frame
        if s.local_ended or s.pending_end:
            raise LocalProtocolError("stream %d: our side has ended" % s.stream_id)
        if (s.pending_bytes == 0 and total <= self._max_outgoing_frame
                and total <= self._conn_send_window and total <= s.send_window):
            # The common case: one DATA frame, written straight into the output.
            w = self._reserve(_FRAME_HEADER_SIZE + total)
            _put_frame_header(w, <uint32_t>total, _DATA, _FLAG_END_STREAM if end_stream else 0,
                              s.stream_id)
            w += _FRAME_HEADER_SIZE
            w += _write_ws_header(w, b0, <uint64_t>n, key)
            if key is not NULL:
                ws2fast_mask(w, p, n, key, 0)
            elif n:
                memcpy(w, p, n)
            self._conn_send_window -= total
            s.send_window -= total
            if end_stream:
                s.local_ended = True
            return 0
        frame = PyBytes_FromStringAndSize(NULL, total)
        w = <unsigned char*>PyBytes_AS_STRING(frame)
        w += _write_ws_header(w, b0, <uint64_t>n, key)
        if key is not NULL:
            ws2fast_mask(w, p, n, key, 0)
        elif n:
            memcpy(w, p, n)
        self._queue(s, frame, end_stream)
        return 0

    def _send_data(self, uint32_t stream_id, data, bint end_stream=False):
        """Send DATA on a stream (a plain body), as the windows allow; the rest waits."""
        cdef H2Stream s = self._lookup(stream_id)
        if s is None:
            raise LocalProtocolError("stream %d is not open" % stream_id)
        if s.local_ended or s.pending_end:
            raise LocalProtocolError("stream %d: our side has ended" % stream_id)
        self._queue(s, bytes(data), end_stream)

    cdef int _queue(self, H2Stream s, bytes chunk, bint end_stream) except -1:
        if PyBytes_GET_SIZE(chunk):
            s._pending.append(chunk)
            s.pending_bytes += PyBytes_GET_SIZE(chunk)
        if end_stream:
            s.pending_end = True
        return self._flush(s)

    cdef int _flush(self, H2Stream s) except -1:
        # Write as much of the stream's queue as the windows allow, in DATA frames no larger
        # than the peer's SETTINGS_MAX_FRAME_SIZE.
        cdef int64_t avail
        cdef Py_ssize_t n, take, left
        cdef bint end
        cdef unsigned char* w
        cdef bytes head
        while s.pending_bytes:
            avail = min(self._conn_send_window, s.send_window, self._max_outgoing_frame)
            if avail <= 0:
                break
            n = <Py_ssize_t>min(avail, <int64_t>s.pending_bytes)
            end = s.pending_end and n == s.pending_bytes
            w = self._reserve(_FRAME_HEADER_SIZE + n)
            _put_frame_header(w, <uint32_t>n, _DATA, _FLAG_END_STREAM if end else 0, s.stream_id)
            w += _FRAME_HEADER_SIZE
            left = n
            while left:
                head = <bytes>s._pending[0]
                take = min(left, PyBytes_GET_SIZE(head) - s._pending_offset)
                memcpy(w, PyBytes_AS_STRING(head) + s._pending_offset, take)
                w += take
                left -= take
                s._pending_offset += take
                if s._pending_offset == PyBytes_GET_SIZE(head):
                    del s._pending[0]
                    s._pending_offset = 0
            s.pending_bytes -= n
            s.flushed += <uint64_t>n
            self._send_progress += <uint64_t>n
            self._conn_send_window -= n
            s.send_window -= n
            if end:
                s.pending_end = False
                s.local_ended = True
        if s.pending_bytes == 0 and s.pending_end:
            w = self._reserve(_FRAME_HEADER_SIZE)       # an empty DATA frame needs no window
            _put_frame_header(w, 0, _DATA, _FLAG_END_STREAM, s.stream_id)
            s.pending_end = False
            s.local_ended = True
        if s.pending_bytes:
            self._blocked.add(s)
        else:
            self._blocked.discard(s)
        return 0

    @property
    def _blocked_progress(self):
        """(stream id, bytes flushed ever) of each stream whose queue waits for window."""
        return [(s.stream_id, s.flushed) for s in self._blocked]

    @property
    def _blocked_count(self):
        return len(self._blocked)

    def _window_update(self, uint32_t stream_id, int64_t increment):
        """The peer opened a send window: returns 0, or FLOW_CONTROL_ERROR when the window
        would pass 2^31-1 (RFC 9113 §6.9.1) -- for the connection if ``stream_id`` is 0."""
        cdef H2Stream s
        if stream_id == 0:
            if self._conn_send_window + increment > _MAX_WINDOW:
                return _FLOW_CONTROL_ERROR
            self._conn_send_window += increment
            self._flush_blocked()
            return 0
        s = self._lookup(stream_id)
        if s is None:
            return 0
        if s.send_window + increment > _MAX_WINDOW:
            return _FLOW_CONTROL_ERROR
        s.send_window += increment
        if s.pending_bytes or s.pending_end:
            self._flush(s)
        return 0

    def _initial_window_changed(self, int64_t delta):
        """SETTINGS_INITIAL_WINDOW_SIZE changed by ``delta``: every stream's send window moves
        by it (and may go negative).  Returns FLOW_CONTROL_ERROR if one would pass 2^31-1
        (RFC 9113 §6.9.2), else 0."""
        cdef H2Stream s
        for s in self.streams.values():
            if s.send_window + delta > _MAX_WINDOW:
                return _FLOW_CONTROL_ERROR
        for s in self.streams.values():
            s.send_window += delta
        self._flush_blocked()
        return 0

    def _max_frame_changed(self):
        self._flush_blocked()

    cdef int _flush_blocked(self) except -1:
        cdef H2Stream s
        if not self._blocked:
            return 0
        for s in sorted(self._blocked, key=_stream_order):
            if self._conn_send_window <= 0:
                break
            self._flush(s)
        return 0

    def outgoing_buffered(self, uint32_t stream_id):
        """Bytes queued on ``stream_id`` that wait for flow-control window (0 if none)."""
        return self._outgoing_buffered(stream_id)

    cdef Py_ssize_t _outgoing_buffered(self, uint32_t stream_id):
        cdef H2Stream s = self._lookup(stream_id)
        return 0 if s is None else s.pending_bytes

    # -- the rest of the engine interface (engine.pxi) ----------------------------------------

    cdef bytes _take_all(self):
        return self._take_output(self._olen)

    cdef bint _has_output(self):
        return self._olen > 0

    cdef bint _finished(self):
        return self._terminated and not self.streams

    cdef bint _has_deadlines(self):
        return bool(self._lingering or self._settings_pending or self._blocked)

    cdef uint64_t _progress(self):
        return self._send_progress

    def local_window(self, uint32_t stream_id=0):
        """How many DATA octets we may send now on ``stream_id`` (0: the connection's)."""
        cdef H2Stream s
        if stream_id == 0:
            return self._conn_send_window
        s = self._lookup(stream_id)
        if s is None:
            raise LocalProtocolError("stream %d is not open" % stream_id)
        return min(self._conn_send_window, s.send_window)


def _stream_order(H2Stream s):
    return s.stream_id
