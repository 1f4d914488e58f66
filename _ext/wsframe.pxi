# WebSocket frame parser (RFC 6455 §5-§7): unmasks each payload straight into the object
# handed out, validates text as it arrives, enforces every framing rule with its close code.
#
# Included by core.pyx after wsmask.pxi and wsevents.pxi.  The per-frame work is all C: Python
# objects are made once per message (the payload object and its event) and once per control
# frame.

@cython.final
cdef class FrameParser:
    """Incremental WebSocket frame parser (RFC 6455 §5), for one direction of one WebSocket.

    ``client_side`` is *our* role, as in wsproto: a client's parser reads the server's frames,
    which must not be masked; a server's parser requires masked frames.
    ``max_message_size`` (bytes, ``None`` for no limit) is enforced when a frame header
    announces its length, before anything is allocated.  ``permessage_deflate=True`` lets a
    data message's first frame carry RSV1; such messages arrive as :class:`CompressedMessage`,
    or, given an :class:`Inflater` (``inflater=``), inflated by it into the
    :class:`TextMessage` or :class:`BinaryMessage` (the compressed
    size is in their ``wire_size``; an inflation error fails the parser with 1009 or 1007).

    ``feed(data)`` takes the bytes in any chunking and returns the events that completed:
    :class:`TextMessage`, :class:`BinaryMessage`, :class:`CompressedMessage`, :class:`Ping`,
    :class:`Pong`, :class:`CloseReceived`.  A violation raises
    :class:`~ws2fast.exceptions.WebSocketProtocolError` whose ``close_code`` is the code to
    close with (1002 framing, 1007 bad UTF-8, 1009 too big); the events completed before it in
    the same call are on the exception (``events``), and the parser refuses further input.

    Payloads are unmasked straight into the object handed out: a ``bytes`` or ``str`` allocated
    at its final size for a single-frame message, a buffer registered with
    :meth:`receive_into` for a binary message that fits it, or one growing buffer for a
    fragmented message.  Text is validated as it arrives, so invalid UTF-8 fails at the first
    byte that cannot belong to valid text, even mid-frame.
    """

    cdef bint _client_side
    cdef bint _deflate
    cdef uint64_t _max_message_size
    cdef bint _failed
    cdef object _error_message
    cdef int _error_code
    # frame header being assembled across inputs
    cdef unsigned char _head[_MAX_WS_HEADER]
    cdef Py_ssize_t _head_got
    # the frame whose payload is being read
    cdef bint _in_payload
    cdef int _opcode
    cdef bint _fin
    cdef uint8_t _key[4]
    cdef uint64_t _remaining
    cdef uint64_t _frame_length
    cdef size_t _phase
    cdef unsigned char* _dst
    # the data message in progress (_msg_opcode == 0: none)
    cdef int _msg_opcode
    cdef bint _msg_compressed
    cdef uint64_t _msg_length           # bytes of the message in complete frames
    cdef object _msg_object             # str/bytes of final size (single-frame message)
    cdef bint _msg_into_user
    cdef bint _msg_nonascii
    cdef int _utf8
    cdef unsigned char* _buf            # fragments of a multi-frame message
    cdef Py_ssize_t _buf_capacity
    # control frame payload
    cdef unsigned char _control[_MAX_CONTROL_PAYLOAD]
    # the buffer registered for the next binary message
    cdef Py_buffer _user
    cdef bint _user_held
    cdef object _user_object
    # set and read by the HTTP/2 connection core (h2core.pxi)
    cdef uint32_t _stream_id            # stamped on every event
    cdef uint64_t _data_bytes           # data-frame payload bytes consumed, ever
    cdef uint64_t _controls             # control and compressed events made, ever
    cdef uint64_t _messages_done        # data messages made, ever
    cdef bint _close_seen
    cdef Inflater _inflater             # inflates compressed messages here when set

    def __cinit__(self, bint client_side, max_message_size=1 << 20, *, bint permessage_deflate=False,
                  Inflater inflater=None):
        self._client_side = client_side
        self._deflate = permessage_deflate
        if inflater is not None and not permessage_deflate:
            raise ValueError("an inflater needs permessage_deflate=True")
        self._inflater = inflater
        if max_message_size is None:
            self._max_message_size = 0xFFFFFFFFFFFFFFFF
        elif 0 <= max_message_size <= 0x7FFFFFFFFFFFFFFF:
            self._max_message_size = max_message_size
        else:
            raise ValueError("max_message_size must be within 0..2^63-1 or None, not %r"
                             % (max_message_size,))
        self._utf8 = WS2FAST_UTF8_ACCEPT

    def __dealloc__(self):
        PyMem_Free(self._buf)
        if self._user_held:
            PyBuffer_Release(&self._user)

    @property
    def client_side(self):
        return self._client_side

    @property
    def max_message_size(self):
        """The message size limit in bytes, or None."""
        return None if self._max_message_size == 0xFFFFFFFFFFFFFFFF else self._max_message_size

    @property
    def receive_buffer(self):
        """The buffer registered for the next binary message, or None."""
        return self._user_object

    def receive_into(self, buffer):
        """Register a writable buffer (bytearray, memoryview, numpy array...) for the next
        binary message.

        If the message fits, its payload is unmasked straight into the buffer's start and the
        :class:`BinaryMessage` has ``into_buffer=True``; the registration is then used up.  A
        message that does not fit, a text message, or a compressed one is delivered as usual and
        the registration stays.  The buffer's bytes past what a message reports are unspecified
        (a message that stopped fitting mid-way may have written there).
        """
        cdef Py_buffer view
        PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
        try:
            self._release_user()
        except BaseException:
            PyBuffer_Release(&view)
            raise
        self._user = view
        self._user_held = True
        self._user_object = buffer

    def cancel_receive_into(self):
        """Forget the registered buffer (a message under way moves to the parser's own)."""
        self._release_user()

    cdef int _release_user(self) except -1:
        # Drop the registration; a message being written into the buffer moves to our own.
        cdef bint frame_open = self._in_payload and not (self._opcode & 0x8)
        cdef Py_ssize_t written
        if self._msg_into_user:
            written = (self._dst - <unsigned char*>self._user.buf) if frame_open \
                else <Py_ssize_t>self._msg_length
            if self._ensure_buffer(self._msg_length + (self._frame_length if frame_open else 0)):
                raise MemoryError(self._error_message)
            memcpy(self._buf, self._user.buf, written)
            if frame_open:
                self._dst = self._buf + written
            self._msg_into_user = False
        if self._user_held:
            PyBuffer_Release(&self._user)
            self._user_held = False
        self._user_object = None
        return 0

    def feed(self, data):
        """Parse ``data`` (any bytes-like object); return the events it completed."""
        return self._feed_data(data)

    cdef list _feed_data(self, data):
        cdef Py_buffer view
        cdef list events = []
        cdef int err
        if self._failed:
            raise WebSocketProtocolError("the frame parser failed earlier: %s" % self._error_message,
                                         close_code=self._error_code)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            err = self._feed(<const unsigned char*>view.buf, view.len, events)
        finally:
            PyBuffer_Release(&view)
        if err:
            self._failed = True
            self._error_code = err
            exc = WebSocketProtocolError(self._error_message, close_code=err)
            exc.events = events
            raise exc
        return events

    cdef int _fail(self, int close_code, message) except -1:
        self._error_message = message
        return close_code

    cdef inline uint64_t _partial_bytes(self) noexcept:
        # Payload bytes of the data message in progress consumed so far (0 if none).
        if not self._msg_opcode:
            return 0
        if self._in_payload and not (self._opcode & 0x8):
            return self._msg_length + (self._frame_length - self._remaining)
        return self._msg_length

    cdef int _feed(self, const unsigned char* p, Py_ssize_t n, list events) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t need, take
        cdef uint64_t left
        cdef int err
        while True:
            if self._in_payload:
                left = <uint64_t>(n - pos)
                take = <Py_ssize_t>(self._remaining if self._remaining < left else left)
                if take:
                    err = self._consume(p + pos, take)
                    if err:
                        return err
                    pos += take
                if self._remaining:
                    return 0
                self._in_payload = False
                err = self._end_frame(events)
                if err:
                    return err
                continue
            if self._head_got == 0:
                # Fastest path: a whole short single-frame message (most of them).
                if n - pos >= 6 and self._msg_opcode == 0:
                    take = self._short_message(p + pos, n - pos, events)
                    if take > 0:
                        pos += take
                        continue
                    if take < 0:
                        return -take
                # Fast path: the whole header is in this input.
                if n - pos >= 2:
                    need = _ws_header_size(p[pos + 1])
                    if n - pos >= need:
                        err = self._begin_frame(p + pos, need)
                        if err:
                            return err
                        pos += need
                        continue
                if pos == n:
                    return 0
            # Assemble a header split across inputs.
            need = 2 if self._head_got < 2 else _ws_header_size(self._head[1])
            take = min(need - self._head_got, n - pos)
            memcpy(self._head + self._head_got, p + pos, take)
            self._head_got += take
            pos += take
            if self._head_got < 2:
                return 0
            need = _ws_header_size(self._head[1])
            if self._head_got < need:
                err = self._check_header(self._head, self._head_got)
                if err:
                    return err
                if pos == n:
                    return 0
                continue
            self._head_got = 0
            err = self._begin_frame(self._head, need)
            if err:
                return err

    cdef inline Py_ssize_t _short_message(self, const unsigned char* p, Py_ssize_t avail,
                                          list events) except? -1:
        # A FIN text/binary frame of < 126 bytes, no RSV, masked as our role requires, wholly in
        # the input, with no message in progress: the common case, done without the state
        # machine.  Returns the bytes consumed, 0 when the frame is not such a frame (the
        # general path then handles it), or -close_code.
        cdef int b0 = p[0]
        cdef int b1 = p[1]
        cdef Py_ssize_t length = b1 & 0x7F
        cdef Py_ssize_t header = 2 if self._client_side else 6
        cdef object payload
        cdef unsigned char* dst
        cdef int nonascii, state
        if (b0 != 0x81 and b0 != 0x82) or length >= 126 or ((b1 & 0x80) == 0) != self._client_side:
            return 0
        if avail < header + length or <uint64_t>length > self._max_message_size:
            return 0
        if b0 == 0x82:
            if self._user_held and length <= self._user.len:
                return 0                                    # goes into the registered buffer
            payload = PyBytes_FromStringAndSize(NULL, length)
            dst = <unsigned char*>PyBytes_AS_STRING(payload)
        else:
            payload = PyUnicode_New(length, 127)
            dst = <unsigned char*>PyUnicode_DATA(payload)
        if self._client_side:
            nonascii = ws2fast_mask_small(dst, p + 2, length, _ZERO_KEY)      # a checked copy
        else:
            nonascii = ws2fast_mask_small(dst, p + 6, length, p + 2)
        if b0 == 0x82:
            event = BinaryMessage.__new__(BinaryMessage)
            (<BinaryMessage>event).data = payload
            (<BinaryMessage>event).nbytes = length
            (<BinaryMessage>event).wire_size = length
            (<BinaryMessage>event).stream_id = self._stream_id
        else:
            if nonascii:
                state = ws2fast_utf8_feed(WS2FAST_UTF8_ACCEPT, dst, length)
                if state != WS2FAST_UTF8_ACCEPT:
                    self._fail(_CLOSE_INVALID_DATA, "invalid UTF-8 in a text message (RFC 6455 §8.1)"
                               if state == WS2FAST_UTF8_REJECT else
                               "text message ends inside a UTF-8 sequence (RFC 6455 §8.1)")
                    return -_CLOSE_INVALID_DATA
                payload = PyUnicode_DecodeUTF8(<const char*>dst, length, NULL)
            event = TextMessage.__new__(TextMessage)
            (<TextMessage>event).data = payload
            (<TextMessage>event).nbytes = length
            (<TextMessage>event).wire_size = length
            (<TextMessage>event).stream_id = self._stream_id
        self._data_bytes += <uint64_t>length
        self._messages_done += 1
        PyList_Append(events, event)
        return header + length

    cdef int _check_header(self, const unsigned char* h, Py_ssize_t avail) except -1:
        # Check every rule the first `avail` header bytes allow (all of them once complete),
        # so a bad header fails as soon as the byte that breaks it arrives.
        cdef int b0 = h[0]
        cdef int b1 = h[1]
        cdef int opcode = b0 & 0x0F
        cdef bint fin = (b0 & 0x80) != 0
        cdef bint masked = (b1 & 0x80) != 0
        cdef uint64_t length = b1 & 0x7F
        cdef uint64_t total
        cdef int i
        if (3 <= opcode <= 7) or opcode >= 0xB:
            return self._fail(_CLOSE_PROTOCOL_ERROR, "reserved opcode 0x%X (RFC 6455 §5.2)" % opcode)
        if b0 & 0x70:
            if (b0 & 0x70) != 0x40 or not self._deflate:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "RSV bits 0x%X set but no extension "
                                  "negotiated them (RFC 6455 §5.2)" % ((b0 & 0x70) >> 4))
            if opcode != _OP_TEXT and opcode != _OP_BINARY:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "RSV1 set on a %s frame; permessage-deflate "
                                  "allows it on a message's first frame only (RFC 7692 §6)"
                                  % ("control" if opcode & 0x8 else "continuation"))
        if masked == self._client_side:
            if masked:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "masked frame from the server (RFC 6455 §5.1)")
            return self._fail(_CLOSE_PROTOCOL_ERROR, "unmasked frame from the client (RFC 6455 §5.1)")
        if opcode & 0x8:
            if not fin:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "fragmented control frame (RFC 6455 §5.5)")
            if length > _MAX_CONTROL_PAYLOAD:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "control frame with a payload of more than "
                                  "125 bytes (RFC 6455 §5.5)")
        elif opcode == _OP_CONTINUATION:
            if not self._msg_opcode:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "continuation frame with no message in "
                                  "progress (RFC 6455 §5.4)")
        elif self._msg_opcode:
            return self._fail(_CLOSE_PROTOCOL_ERROR, "new data frame while a fragmented message is "
                              "in progress (RFC 6455 §5.4)")
        if length == 126:
            if avail < 4:
                return 0
            length = (<uint64_t>h[2] << 8) | h[3]
            if length < 126:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "length %d sent in 16 bits; it fits in 7 "
                                  "(RFC 6455 §5.2: minimal encoding)" % length)
        elif length == 127:
            if avail < 10:
                return 0
            length = 0
            for i in range(2, 10):
                length = (length << 8) | h[i]
            if length >> 63:
                # Checked while unsigned: as a signed number this would be negative.
                return self._fail(_CLOSE_PROTOCOL_ERROR, "64-bit length with the most significant "
                                  "bit set (RFC 6455 §5.2)")
            if length <= 0xFFFF:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "length %d sent in 64 bits; it fits in 16 "
                                  "(RFC 6455 §5.2: minimal encoding)" % length)
        if not (opcode & 0x8):
            total = self._msg_length if opcode == _OP_CONTINUATION else 0
            if length > self._max_message_size - total:
                # The message's size is known only when this is its last frame.
                return self._fail(_CLOSE_TOO_BIG, "message of %s%d bytes exceeds max_message_size %d" % (
                    "" if h[0] & 0x80 else "at least ", total + length, self._max_message_size))
        self._frame_length = length
        return 0

    cdef int _begin_frame(self, const unsigned char* h, Py_ssize_t size) except -1:
        # A complete header of `size` bytes: check it and set up where its payload goes.
        cdef int err = self._check_header(h, size)
        cdef int opcode = h[0] & 0x0F
        cdef bint fin = (h[0] & 0x80) != 0
        if err:
            return err
        if h[1] & 0x80:
            memcpy(self._key, h + size - 4, 4)
        else:
            memset(self._key, 0, 4)
        self._opcode = opcode
        self._fin = fin
        self._remaining = self._frame_length
        self._phase = 0
        self._in_payload = True
        if opcode & 0x8:
            self._dst = self._control
            return 0
        return self._setup_data_frame(opcode, fin, self._frame_length, (h[0] & 0x40) != 0)

    cdef int _setup_data_frame(self, int opcode, bint fin, uint64_t length, bint rsv1) except -1:
        cdef Py_ssize_t size
        if opcode != _OP_CONTINUATION:
            self._msg_opcode = opcode
            self._msg_compressed = rsv1
            self._msg_length = 0
            self._msg_nonascii = False
            self._utf8 = WS2FAST_UTF8_ACCEPT
            self._msg_into_user = (opcode == _OP_BINARY and not rsv1 and self._user_held
                                   and length <= <uint64_t>self._user.len)
            if self._msg_into_user:
                self._dst = <unsigned char*>self._user.buf
                return 0
            if fin and not (rsv1 and self._inflater is not None):
                # A single-frame message: allocate what the user receives, at its final size.
                if length > <uint64_t>PY_SSIZE_T_MAX:
                    return self._fail(_CLOSE_TOO_BIG, "message of %d bytes cannot be held" % length)
                size = <Py_ssize_t>length
                try:
                    if opcode == _OP_TEXT and not rsv1:
                        self._msg_object = PyUnicode_New(size, 127)
                        self._dst = <unsigned char*>PyUnicode_DATA(self._msg_object)
                    else:
                        self._msg_object = PyBytes_FromStringAndSize(NULL, size)
                        self._dst = <unsigned char*>PyBytes_AS_STRING(self._msg_object)
                except MemoryError:
                    return self._fail(_CLOSE_TOO_BIG, "no memory for a message of %d bytes" % length)
                return 0
        elif self._msg_into_user:
            if self._msg_length + length <= <uint64_t>self._user.len:
                self._dst = <unsigned char*>self._user.buf + self._msg_length
                return 0
            # It no longer fits: move what arrived into our own buffer; the registration stays.
            if self._ensure_buffer(self._msg_length + length):
                return _CLOSE_TOO_BIG
            memcpy(self._buf, self._user.buf, self._msg_length)
            self._msg_into_user = False
            self._dst = self._buf + self._msg_length
            return 0
        if self._ensure_buffer(self._msg_length + length):
            return _CLOSE_TOO_BIG
        self._dst = self._buf + self._msg_length
        return 0

    cdef int _ensure_buffer(self, uint64_t size) except -1:
        # Grows the fragment buffer to hold `size` bytes (doubling, but never past the limit).
        # Returns 0, or nonzero with the error message set when it cannot be had.
        cdef uint64_t capacity
        cdef unsigned char* grown
        if size <= <uint64_t>self._buf_capacity:
            return 0
        capacity = max(size, min(<uint64_t>self._buf_capacity * 2, self._max_message_size), <uint64_t>256)
        if capacity > <uint64_t>PY_SSIZE_T_MAX:
            self._fail(_CLOSE_TOO_BIG, "message of %d bytes cannot be held" % size)
            return 1
        grown = <unsigned char*>PyMem_Realloc(self._buf, <size_t>capacity)
        if grown is NULL:
            self._fail(_CLOSE_TOO_BIG, "no memory for a message of %d bytes" % size)
            return 1
        self._buf = grown
        self._buf_capacity = <Py_ssize_t>capacity
        return 0

    cdef int _consume(self, const unsigned char* src, Py_ssize_t n) except -1:
        # Unmask n payload bytes into place (one pass, which also tells whether all were
        # ASCII), validating text as it arrives.
        # The GIL stays held: releasing it costs more than a typical frame, and another thread
        # could then change the parser (or release the buffer being written) under us.
        cdef int nonascii = ws2fast_mask(self._dst, src, n, self._key, self._phase)
        if self._msg_opcode == _OP_TEXT and not (self._opcode & 0x8) and not self._msg_compressed \
                and (nonascii or self._utf8 != WS2FAST_UTF8_ACCEPT):
            self._msg_nonascii = True
            self._utf8 = ws2fast_utf8_feed(self._utf8, self._dst, n)
            if self._utf8 == WS2FAST_UTF8_REJECT:
                return self._fail(_CLOSE_INVALID_DATA, "invalid UTF-8 in a text message "
                                  "(RFC 6455 §8.1)")
        if not (self._opcode & 0x8):
            self._data_bytes += <uint64_t>n
        self._dst += n
        self._phase = (self._phase + <size_t>n) & 3
        self._remaining -= n
        return 0

    cdef int _end_frame(self, list events) except -1:
        cdef object payload
        cdef object event
        cdef int opcode = self._opcode
        cdef int err
        if opcode & 0x8:
            return self._end_control_frame(events)
        self._msg_length += self._frame_length
        if not self._fin:
            return 0
        if self._msg_opcode == _OP_TEXT and not self._msg_compressed and self._utf8 != WS2FAST_UTF8_ACCEPT:
            return self._fail(_CLOSE_INVALID_DATA, "text message ends inside a UTF-8 sequence "
                              "(RFC 6455 §8.1)")
        if self._msg_into_user:
            event = BinaryMessage.__new__(BinaryMessage)
            (<BinaryMessage>event).data = self._user_object
            (<BinaryMessage>event).nbytes = <Py_ssize_t>self._msg_length
            (<BinaryMessage>event).wire_size = <Py_ssize_t>self._msg_length
            (<BinaryMessage>event).into_buffer = True
            (<BinaryMessage>event).stream_id = self._stream_id
            self._msg_into_user = False
            self._release_user()
        elif self._msg_compressed and self._inflater is not None:
            err = 0
            event = self._inflate_message(&err)
            if err:
                return err
        else:
            if self._msg_object is not None:           # single frame: the object is ready
                payload = self._msg_object
                self._msg_object = None
                if self._msg_nonascii:
                    payload = PyUnicode_DecodeUTF8(<const char*>PyUnicode_DATA(payload),
                                                   <Py_ssize_t>self._msg_length, NULL)
            else:
                payload = self._collect_fragments()
            if self._msg_compressed:
                event = CompressedMessage.__new__(CompressedMessage)
                (<CompressedMessage>event).data = payload
                (<CompressedMessage>event).is_text = self._msg_opcode == _OP_TEXT
                (<CompressedMessage>event).stream_id = self._stream_id
                self._controls += 1             # it needs Python (zlib): not a fast-path event
            elif self._msg_opcode == _OP_TEXT:
                event = TextMessage.__new__(TextMessage)
                (<TextMessage>event).data = payload
                (<TextMessage>event).nbytes = <Py_ssize_t>self._msg_length
                (<TextMessage>event).wire_size = <Py_ssize_t>self._msg_length
                (<TextMessage>event).stream_id = self._stream_id
            else:
                event = BinaryMessage.__new__(BinaryMessage)
                (<BinaryMessage>event).data = payload
                (<BinaryMessage>event).nbytes = <Py_ssize_t>self._msg_length
                (<BinaryMessage>event).wire_size = <Py_ssize_t>self._msg_length
                (<BinaryMessage>event).stream_id = self._stream_id
        self._msg_opcode = 0
        self._msg_length = 0
        self._messages_done += 1
        PyList_Append(events, event)
        return 0

    cdef object _inflate_message(self, int* err):
        # The compressed message in _buf, inflated into its Text/BinaryMessage; or None with
        # *err set to the close code.
        cdef size_t n = 0
        cdef bint is_text = self._msg_opcode == _OP_TEXT
        cdef Inflater inflater = self._inflater
        err[0] = inflater._inflate(self._buf, <size_t>self._msg_length, &n)
        if err[0]:
            self._fail(err[0], inflater._message)
            return None
        payload = inflater._result(n, is_text)
        if payload is None:
            err[0] = self._fail(_CLOSE_INVALID_DATA, inflater._message)
            return None
        if self._buf_capacity > _KEEP_BUFFER:
            PyMem_Free(self._buf)
            self._buf = NULL
            self._buf_capacity = 0
        if is_text:
            out = TextMessage.__new__(TextMessage)
            (<TextMessage>out).data = payload
            (<TextMessage>out).nbytes = <Py_ssize_t>n
            (<TextMessage>out).wire_size = <Py_ssize_t>self._msg_length
            (<TextMessage>out).stream_id = self._stream_id
        else:
            out = BinaryMessage.__new__(BinaryMessage)
            (<BinaryMessage>out).data = payload
            (<BinaryMessage>out).nbytes = <Py_ssize_t>n
            (<BinaryMessage>out).wire_size = <Py_ssize_t>self._msg_length
            (<BinaryMessage>out).stream_id = self._stream_id
        return out

    cdef object _collect_fragments(self):
        cdef Py_ssize_t n = <Py_ssize_t>self._msg_length
        cdef object out
        if self._msg_opcode == _OP_TEXT and not self._msg_compressed:
            if self._msg_nonascii:
                out = PyUnicode_DecodeUTF8(<const char*>self._buf, n, NULL)
            else:
                out = PyUnicode_New(n, 127)
                if n:                           # _buf is NULL while nothing was collected
                    memcpy(PyUnicode_DATA(out), self._buf, n)
        else:
            out = PyBytes_FromStringAndSize(<const char*>self._buf, n)
        if self._buf_capacity > _KEEP_BUFFER:
            PyMem_Free(self._buf)
            self._buf = NULL
            self._buf_capacity = 0
        return out

    cdef int _end_control_frame(self, list events) except -1:
        cdef Py_ssize_t n = <Py_ssize_t>self._frame_length
        cdef uint32_t code
        if self._opcode == _OP_PING:
            event = Ping.__new__(Ping)
            (<Ping>event).payload = PyBytes_FromStringAndSize(<const char*>self._control, n)
            (<Ping>event).stream_id = self._stream_id
        elif self._opcode == _OP_PONG:
            event = Pong.__new__(Pong)
            (<Pong>event).payload = PyBytes_FromStringAndSize(<const char*>self._control, n)
            (<Pong>event).stream_id = self._stream_id
        else:
            event = CloseReceived.__new__(CloseReceived)
            (<CloseReceived>event).stream_id = self._stream_id
            self._close_seen = True
            if n == 0:
                (<CloseReceived>event).code = 1005
                (<CloseReceived>event).reason = ""
            elif n == 1:
                return self._fail(_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload "
                                  "(RFC 6455 §5.5.1)")
            else:
                code = (<uint32_t>self._control[0] << 8) | self._control[1]
                if not _valid_close_code(code):
                    return self._fail(_CLOSE_PROTOCOL_ERROR, "close code %d may not be sent "
                                      "(RFC 6455 §7.4)" % code)
                if ws2fast_utf8_feed(WS2FAST_UTF8_ACCEPT, self._control + 2, n - 2) != WS2FAST_UTF8_ACCEPT:
                    return self._fail(_CLOSE_INVALID_DATA, "close reason is not valid UTF-8 "
                                      "(RFC 6455 §5.5.1)")
                (<CloseReceived>event).code = code
                (<CloseReceived>event).reason = PyUnicode_DecodeUTF8(<const char*>self._control + 2,
                                                                     n - 2, NULL)
        self._controls += 1
        PyList_Append(events, event)
        return 0


cdef inline Py_ssize_t _ws_header_size(unsigned char b1) noexcept nogil:
    cdef Py_ssize_t size = 2
    if (b1 & 0x7F) == 126:
        size += 2
    elif (b1 & 0x7F) == 127:
        size += 8
    if b1 & 0x80:
        size += 4
    return size
