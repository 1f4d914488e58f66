# HTTP/2 frame codec (RFC 9113 §4, §6): an incremental reader that enforces every rule a frame
# can be checked against on its own, and one writer per frame type.
#
# Included by core.pyx.  Reading is zero-copy for a frame that lies whole in one input: the
# Frame points into the caller's buffer (whose export we hold, so the memory stays valid); a
# frame split across inputs is assembled once into a bytes object of its final size.

cdef enum:
    _FRAME_HEADER_SIZE = 9
    _PREFACE_SIZE = 24
    _MIN_MAX_FRAME_SIZE = 16384         # SETTINGS_MAX_FRAME_SIZE range (RFC 9113 §6.5.2)
    _MAX_MAX_FRAME_SIZE = 16777215
    _MAX_WINDOW = 2147483647

cdef enum:
    _DATA = 0x0
    _HEADERS = 0x1
    _PRIORITY = 0x2
    _RST_STREAM = 0x3
    _SETTINGS = 0x4
    _PUSH_PROMISE = 0x5
    _PING = 0x6
    _GOAWAY = 0x7
    _WINDOW_UPDATE = 0x8
    _CONTINUATION = 0x9

cdef enum:
    _FLAG_END_STREAM = 0x01
    _FLAG_ACK = 0x01
    _FLAG_END_HEADERS = 0x04
    _FLAG_PADDED = 0x08
    _FLAG_PRIORITY = 0x20

cdef enum:
    _NO_ERROR = 0x0
    _PROTOCOL_ERROR = 0x1
    _FLOW_CONTROL_ERROR = 0x3
    _FRAME_SIZE_ERROR = 0x6


#: The client connection preface (RFC 9113 §3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
cdef bytes _PREFACE_BYTES = PREFACE
cdef const unsigned char* _PREFACE_PTR = <const unsigned char*>PyBytes_AS_STRING(_PREFACE_BYTES)

_FRAME_TYPE_NAMES = {int(t): t.name for t in FrameType}


cdef inline uint32_t _be32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]


cdef inline uint32_t _be24(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 16) | (<uint32_t>p[1] << 8) | <uint32_t>p[2]


cdef inline void _put32(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = <unsigned char>(v >> 24)
    p[1] = <unsigned char>(v >> 16)
    p[2] = <unsigned char>(v >> 8)
    p[3] = <unsigned char>v


cdef inline void _put_frame_header(unsigned char* p, uint32_t length, int ftype, int flags,
                                   uint32_t stream_id) noexcept nogil:
    p[0] = <unsigned char>(length >> 16)
    p[1] = <unsigned char>(length >> 8)
    p[2] = <unsigned char>length
    p[3] = <unsigned char>ftype
    p[4] = <unsigned char>flags
    _put32(p + 5, stream_id & 0x7FFFFFFF)


@cython.final
cdef class _Chunk:
    """Holds a buffer export of one input to FrameReader.feed, for the frames viewing it."""
    cdef Py_buffer view
    cdef bint held

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


@cython.final
@cython.no_gc
@cython.freelist(256)
cdef class Frame:
    """One HTTP/2 frame, as returned by :meth:`FrameReader.feed`.

    ``type``, ``flags``, ``stream_id`` and ``length`` (of the payload) are plain ints; the
    type-specific fields are read from the payload on access and are ``None`` for frame types
    that do not have them.  The frame exports its payload through the buffer protocol, so
    ``memoryview(frame)`` and ``bytes(frame)`` work.

    .. danger::
       A frame that lay whole in one input views the caller's buffer without copying.  Its
       ``payload`` and ``data`` are valid only until the caller reuses that buffer (for the
       asyncio layer: until the next call into the reader).  Use :meth:`copy_payload` or
       ``bytes(frame.data)`` to keep the bytes.
    """

    cdef readonly int type
    cdef readonly int flags
    cdef readonly uint32_t stream_id
    cdef readonly Py_ssize_t length
    cdef object _owner
    cdef const unsigned char* _payload
    cdef Py_ssize_t _data_start
    cdef Py_ssize_t _data_end
    cdef int _stream_error

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        PyBuffer_FillInfo(buffer, self, <void*>self._payload, self.length, 1, flags)

    def __releasebuffer__(self, Py_buffer* buffer):
        pass

    @property
    def payload(self):
        """The whole frame payload, padding and fixed fields included (a read-only view)."""
        return memoryview(self)

    @property
    def data(self):
        """The content with padding and fixed fields removed (a read-only view).

        A DATA frame's data, the header block fragment of HEADERS, PUSH_PROMISE and
        CONTINUATION; for other frame types the whole payload.
        """
        cdef object view = memoryview(self)
        if self._data_start == 0 and self._data_end == self.length:
            return view
        return view[self._data_start:self._data_end]

    def copy_payload(self):
        """The payload as a new ``bytes`` object (a copy, valid forever)."""
        return PyBytes_FromStringAndSize(<const char*>self._payload, self.length)

    @property
    def end_stream(self):
        """END_STREAM flag of DATA and HEADERS frames (None for other types)."""
        if self.type == _DATA or self.type == _HEADERS:
            return bool(self.flags & _FLAG_END_STREAM)
        return None

    @property
    def end_headers(self):
        """END_HEADERS flag of HEADERS, PUSH_PROMISE and CONTINUATION frames."""
        if self.type == _HEADERS or self.type == _PUSH_PROMISE or self.type == _CONTINUATION:
            return bool(self.flags & _FLAG_END_HEADERS)
        return None

    @property
    def ack(self):
        """ACK flag of SETTINGS and PING frames."""
        if self.type == _SETTINGS or self.type == _PING:
            return bool(self.flags & _FLAG_ACK)
        return None

    @property
    def pad_length(self):
        """Padding length of a padded DATA, HEADERS or PUSH_PROMISE frame, else 0."""
        if (self.type == _DATA or self.type == _HEADERS or self.type == _PUSH_PROMISE) and \
                self.flags & _FLAG_PADDED:
            return self._payload[0]
        return 0

    cdef inline Py_ssize_t _priority_offset(self):
        # Offset of the 5-octet priority fields, or -1 when the frame has none.
        if self.type == _PRIORITY and self.length == 5:
            return 0
        if self.type == _HEADERS and self.flags & _FLAG_PRIORITY:
            return 1 if self.flags & _FLAG_PADDED else 0
        return -1

    @property
    def depends_on(self):
        """Stream dependency of a PRIORITY frame or of HEADERS with the PRIORITY flag."""
        cdef Py_ssize_t off = self._priority_offset()
        return None if off < 0 else _be32(self._payload + off) & 0x7FFFFFFF

    @property
    def exclusive(self):
        """Exclusive bit of the priority fields."""
        cdef Py_ssize_t off = self._priority_offset()
        return None if off < 0 else bool(self._payload[off] & 0x80)

    @property
    def weight(self):
        """Priority weight, 1..256 (the wire value plus one)."""
        cdef Py_ssize_t off = self._priority_offset()
        return None if off < 0 else self._payload[off + 4] + 1

    @property
    def error_code(self):
        """Error code of RST_STREAM and GOAWAY frames (an ErrorCode when known, else an int)."""
        cdef uint32_t code
        if self.type == _RST_STREAM:
            code = _be32(self._payload)
        elif self.type == _GOAWAY:
            code = _be32(self._payload + 4)
        else:
            return None
        return ErrorCode(code) if code <= 0xD else code

    @property
    def last_stream_id(self):
        """Last-Stream-ID of a GOAWAY frame."""
        return _be32(self._payload) & 0x7FFFFFFF if self.type == _GOAWAY else None

    @property
    def debug_data(self):
        """Additional debug data of a GOAWAY frame (bytes)."""
        if self.type != _GOAWAY:
            return None
        return PyBytes_FromStringAndSize(<const char*>self._payload + 8, self.length - 8)

    @property
    def opaque_data(self):
        """The 8 octets of a PING frame (bytes)."""
        if self.type != _PING:
            return None
        return PyBytes_FromStringAndSize(<const char*>self._payload, 8)

    @property
    def window_increment(self):
        """Window size increment of a WINDOW_UPDATE frame."""
        return _be32(self._payload) & 0x7FFFFFFF if self.type == _WINDOW_UPDATE else None

    @property
    def promised_stream_id(self):
        """Promised stream id of a PUSH_PROMISE frame."""
        if self.type != _PUSH_PROMISE:
            return None
        return _be32(self._payload + (1 if self.flags & _FLAG_PADDED else 0)) & 0x7FFFFFFF

    @property
    def settings(self):
        """Parameters of a SETTINGS frame, in wire order, as a list of ``(id, value)``."""
        cdef Py_ssize_t i
        cdef list out
        if self.type != _SETTINGS:
            return None
        out = []
        for i in range(0, self.length, 6):
            out.append(((<uint32_t>self._payload[i] << 8) | self._payload[i + 1],
                        _be32(self._payload + i + 2)))
        return out

    @property
    def stream_error(self):
        """``None``, or the ErrorCode of a stream error this frame calls for (RFC 9113 §5.4.2).

        Set for a PRIORITY frame whose length is not 5 (FRAME_SIZE_ERROR), for a stream that
        depends on itself and for a stream WINDOW_UPDATE of 0 (PROTOCOL_ERROR).  The frame is
        otherwise returned as read; the receiver must reset that stream.
        """
        return ErrorCode(self._stream_error) if self._stream_error else None

    def __repr__(self):
        name = _FRAME_TYPE_NAMES.get(self.type, "UNKNOWN(%d)" % self.type)
        return "<Frame %s flags=0x%02x stream_id=%d length=%d>" % (
            name, self.flags, self.stream_id, self.length)


@cython.final
@cython.no_gc
@cython.freelist(64)
cdef class DataPiece:
    """Part of a DATA frame's data, from a :class:`FrameReader` made with ``stream_data=True``.

    Such a reader never assembles a DATA frame: it hands out each piece of the data as it
    arrives, as a view of the input (padding left out), so a large frame costs no copy however
    the reads split it.  ``offset`` is where the piece starts in the frame's data, ``last``
    says it ends the frame (a last piece may be empty when only padding remained), and
    ``end_stream`` is the frame's END_STREAM flag, reported on the last piece only.
    ``frame_length`` is the whole frame payload, padding included, for flow control.
    The piece exports its bytes through the buffer protocol, like :class:`Frame`.

    .. danger::
       ``data`` is a view of the caller's input: valid until the caller reuses that buffer.
    """

    cdef readonly uint32_t stream_id
    cdef readonly int flags
    cdef readonly Py_ssize_t offset
    cdef readonly Py_ssize_t frame_length
    cdef readonly int pad_length
    cdef readonly bint last
    cdef object _owner
    cdef const unsigned char* _ptr
    cdef Py_ssize_t _len

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        PyBuffer_FillInfo(buffer, self, <void*>self._ptr, self._len, 1, flags)

    def __releasebuffer__(self, Py_buffer* buffer):
        pass

    def __len__(self):
        return self._len

    @property
    def type(self):
        return _DATA

    @property
    def data(self):
        """The piece's data (a read-only view)."""
        return memoryview(self)

    @property
    def end_stream(self):
        """True on the last piece of a DATA frame that carries END_STREAM."""
        return self.last and bool(self.flags & _FLAG_END_STREAM)

    def __repr__(self):
        return "<DataPiece stream_id=%d offset=%d len=%d last=%r>" % (
            self.stream_id, self.offset, self._len, bool(self.last))


@cython.final
cdef class FrameReader:
    """Incremental HTTP/2 frame reader (RFC 9113 §4.1).

    ``feed(data)`` accepts the byte stream in any chunking and returns the frames it
    completed.  Every rule that can be checked on a frame by itself is enforced: a violation
    that RFC 9113 makes a connection error raises :class:`~ws2fast.exceptions.FrameError`
    with its ``error_code``, after which the reader refuses further input; a violation that is
    a stream error is reported on the frame (:attr:`Frame.stream_error`).

    The reader also enforces the header-block rule of RFC 9113 §6.10: once a HEADERS or
    PUSH_PROMISE frame without END_HEADERS is read, the next frame, whatever its type, must
    be a CONTINUATION on the same stream.  Frames of unknown type are skipped (and counted in
    :attr:`unknown_frames`) except inside a header block, where they are a PROTOCOL_ERROR.

    ``max_frame_size`` is the SETTINGS_MAX_FRAME_SIZE this side advertised (16384..16777215);
    ``expect_preface=True`` (server side) requires the 24-octet client preface first.
    ``stream_data=True`` returns DATA frames as :class:`DataPiece` objects, as their bytes
    arrive, instead of assembling a frame that straddles inputs: no DATA payload is ever
    copied, whatever its size.

    .. danger::
       Frames that lay whole in one input are views of it (no copy); see :class:`Frame`.
    """

    cdef uint32_t _max_frame_size
    cdef int _preface_pos
    cdef unsigned char _head[_FRAME_HEADER_SIZE]
    cdef Py_ssize_t _head_got
    cdef bint _in_payload
    cdef int _ftype
    cdef int _fflags
    cdef uint32_t _fsid
    cdef uint32_t _flen
    cdef object _partial
    cdef Py_ssize_t _partial_got
    cdef uint32_t _block_stream
    cdef bint _failed
    cdef object _error_message
    cdef bint _stream_data
    cdef bint _streaming            # a DATA frame's payload is being handed out in pieces
    cdef Py_ssize_t _fpos           # payload octets of that frame read so far
    cdef int _pad                   # its pad length, -1 until the Pad Length octet is read
    cdef readonly uint64_t unknown_frames
    cdef H2Core _core               # the connection core routing DATA frames, or None
    cdef Py_ssize_t _emitted        # Frames and DataPieces handed out, ever

    def __cinit__(self, max_frame_size=16384, *, bint expect_preface=False, bint stream_data=False):
        self.max_frame_size = max_frame_size
        self._preface_pos = 0 if expect_preface else -1
        self._partial = None
        self._stream_data = stream_data

    @property
    def max_frame_size(self):
        """The largest payload accepted: our SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2)."""
        return self._max_frame_size

    @max_frame_size.setter
    def max_frame_size(self, value):
        if not (_MIN_MAX_FRAME_SIZE <= value <= _MAX_MAX_FRAME_SIZE):
            raise ValueError("max_frame_size must be within 16384..16777215, not %r" % (value,))
        self._max_frame_size = value

    @property
    def header_block_stream(self):
        """The stream whose header block is open (awaiting CONTINUATION), or 0."""
        return self._block_stream

    def feed(self, data):
        """Read ``data`` (any bytes-like object) and return the frames it completed."""
        return self._feed_data(data)

    cdef list _feed_data(self, data):
        cdef _Chunk chunk
        cdef list frames = []
        cdef int err
        if self._failed:
            raise FrameError("the frame reader failed earlier: %s" % self._error_message,
                             error_code=ErrorCode.PROTOCOL_ERROR)
        chunk = _Chunk.__new__(_Chunk)
        PyObject_GetBuffer(data, &chunk.view, PyBUF_SIMPLE)
        chunk.held = True
        err = self._parse(chunk, <const unsigned char*>chunk.view.buf, chunk.view.len, frames)
        if err:
            self._failed = True
            raise FrameError(self._error_message, error_code=ErrorCode(err), frames=frames)
        return frames

    cdef int _fail(self, int code, message) except -1:
        self._error_message = message
        return code

    cdef int _parse(self, object chunk, const unsigned char* p, Py_ssize_t n,
                    list frames) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t take
        cdef int err
        if self._preface_pos >= 0:
            take = min(_PREFACE_SIZE - self._preface_pos, n)
            if memcmp(p, _PREFACE_PTR + self._preface_pos, take) != 0:
                return self._fail(_PROTOCOL_ERROR, "invalid client connection preface (RFC 9113 §3.4)")
            self._preface_pos += take
            pos = take
            if self._preface_pos < _PREFACE_SIZE:
                return 0
            self._preface_pos = -1

        if self._streaming:
            take = min(<Py_ssize_t>self._flen - self._fpos, n - pos)
            err = self._data_piece(chunk, p + pos, take, frames)
            if err:
                return err
            pos += take
            if self._fpos < <Py_ssize_t>self._flen:
                return 0
            self._streaming = False
        elif self._in_payload:
            # A frame whose payload began in an earlier input: assemble it (once).
            take = min(<Py_ssize_t>self._flen - self._partial_got, n - pos)
            if self._partial is not None:
                memcpy(PyBytes_AS_STRING(self._partial) + self._partial_got, p + pos, take)
            self._partial_got += take
            pos += take
            if self._partial_got < <Py_ssize_t>self._flen:
                return 0
            self._in_payload = False
            if self._partial is None:       # an unknown frame type: skipped, not kept
                self.unknown_frames += 1
            else:
                owner = self._partial
                self._partial = None
                err = self._finish(owner, <const unsigned char*>PyBytes_AS_STRING(owner), frames)
                if err:
                    return err

        if self._head_got > 0:
            take = min(_FRAME_HEADER_SIZE - self._head_got, n - pos)
            memcpy(self._head + self._head_got, p + pos, take)
            self._head_got += take
            pos += take
            if self._head_got < _FRAME_HEADER_SIZE:
                return 0
            self._head_got = 0
            err = self._begin(self._head)
            if err:
                return err
            err = self._payload(chunk, p, n, &pos, frames)
            if err or self._in_payload or self._streaming:
                return err

        while n - pos >= _FRAME_HEADER_SIZE:
            err = self._begin(p + pos)
            if err:
                return err
            pos += _FRAME_HEADER_SIZE
            err = self._payload(chunk, p, n, &pos, frames)
            if err or self._in_payload or self._streaming:
                return err

        if pos < n:
            memcpy(self._head, p + pos, n - pos)
            self._head_got = n - pos
        return 0

    cdef inline int _payload(self, object chunk, const unsigned char* p, Py_ssize_t n,
                             Py_ssize_t* pos, list frames) except -1:
        # The header at hand was valid: take its payload from p[pos:n] (all of it, or what
        # there is, leaving _in_payload or _streaming set to wait for the rest).
        cdef Py_ssize_t avail = n - pos[0]
        cdef int err
        if self._stream_data and self._ftype == _DATA:
            if self._core is not None:
                err = self._core._data_begin(self._fsid, self._flen, frames)
                if err:
                    return err
            self._fpos = 0
            self._pad = -1 if self._fflags & _FLAG_PADDED else 0
            if avail > <Py_ssize_t>self._flen:
                avail = self._flen
            err = self._data_piece(chunk, p + pos[0], avail, frames)
            pos[0] += avail
            self._streaming = self._fpos < <Py_ssize_t>self._flen
            return err
        if avail < <Py_ssize_t>self._flen:
            self._start_partial(p + pos[0], avail)
            pos[0] = n
            return 0
        err = self._finish(chunk, p + pos[0], frames)
        pos[0] += self._flen
        return err

    cdef int _data_piece(self, object owner, const unsigned char* p, Py_ssize_t k,
                         list frames) except -1:
        # p[0:k] are payload octets _fpos.._fpos+k of the DATA frame being streamed.
        cdef Py_ssize_t flen = self._flen
        cdef Py_ssize_t data_start, data_end, piece_start, piece_end
        cdef DataPiece piece
        if self._pad < 0:
            if k == 0:
                return 0
            if p[0] >= flen:
                return self._bad_padding(_DATA, p[0], flen)
            self._pad = p[0]
        data_start = 1 if self._fflags & _FLAG_PADDED else 0
        data_end = flen - self._pad
        piece_start = max(self._fpos, data_start)
        piece_end = min(self._fpos + k, data_end)
        self._fpos += k
        if piece_end <= piece_start and self._fpos < flen:
            return 0                        # padding only, and more to come
        if self._core is not None and self._core._mode != _ROUTE_PYTHON:
            return self._core._data_piece(
                p + (piece_start - (self._fpos - k)) if piece_end > piece_start else p,
                piece_end - piece_start if piece_end > piece_start else 0,
                self._fpos == flen, (self._fflags & _FLAG_END_STREAM) != 0, frames)
        self._emitted += 1
        piece = DataPiece.__new__(DataPiece)
        piece.stream_id = self._fsid
        piece.flags = self._fflags
        piece.offset = piece_start - data_start if piece_end > piece_start else \
            max(0, data_end - data_start)
        piece.frame_length = flen
        piece.pad_length = self._pad
        piece.last = self._fpos == flen
        piece._owner = owner
        piece._ptr = p + (piece_start - (self._fpos - k))
        piece._len = piece_end - piece_start if piece_end > piece_start else 0
        PyList_Append(frames, piece)
        return 0

    cdef int _start_partial(self, const unsigned char* p, Py_ssize_t avail) except -1:
        # The header is validated, so _flen <= max_frame_size bounds this allocation.
        self._in_payload = True
        self._partial_got = avail
        if self._ftype > _CONTINUATION:
            self._partial = None
            return 0
        self._partial = PyBytes_FromStringAndSize(NULL, self._flen)
        memcpy(PyBytes_AS_STRING(self._partial), p, avail)
        return 0

    cdef int _begin(self, const unsigned char* h) except -1:
        # Read a 9-octet frame header and check what can be checked before the payload.
        cdef uint32_t length = _be24(h)
        cdef int ftype = h[3]
        cdef int flags = h[4]
        cdef uint32_t sid = _be32(h + 5) & 0x7FFFFFFF     # reserved bit ignored (§4.1)
        cdef uint32_t minimum
        self._flen = length
        self._ftype = ftype
        self._fflags = flags
        self._fsid = sid
        if length > self._max_frame_size:
            return self._fail(_FRAME_SIZE_ERROR,
                              "%s frame of %d octets exceeds SETTINGS_MAX_FRAME_SIZE %d (RFC 9113 §4.2)"
                              % (_type_name(ftype), length, self._max_frame_size))
        if self._block_stream:
            if ftype != _CONTINUATION or sid != self._block_stream:
                return self._fail(_PROTOCOL_ERROR,
                                  "%s frame on stream %d inside the header block of stream %d "
                                  "(RFC 9113 §6.10)" % (_type_name(ftype), sid, self._block_stream))
        elif ftype == _CONTINUATION:
            return self._fail(_PROTOCOL_ERROR,
                              "CONTINUATION on stream %d without an open header block (RFC 9113 §6.10)"
                              % sid)
        if ftype == _DATA:
            if sid == 0:
                return self._stream_zero(ftype)
            if flags & _FLAG_PADDED and length < 1:
                return self._too_short(ftype, length, 1)
        elif ftype == _HEADERS:
            if sid == 0:
                return self._stream_zero(ftype)
            minimum = (1 if flags & _FLAG_PADDED else 0) + (5 if flags & _FLAG_PRIORITY else 0)
            if length < minimum:
                return self._too_short(ftype, length, minimum)
        elif ftype == _PRIORITY:
            if sid == 0:
                return self._stream_zero(ftype)
        elif ftype == _RST_STREAM:
            if sid == 0:
                return self._stream_zero(ftype)
            if length != 4:
                return self._fail(_FRAME_SIZE_ERROR,
                                  "RST_STREAM frame of %d octets, not 4 (RFC 9113 §6.4)" % length)
        elif ftype == _SETTINGS:
            if sid != 0:
                return self._stream_nonzero(ftype, sid)
            if flags & _FLAG_ACK and length != 0:
                return self._fail(_FRAME_SIZE_ERROR,
                                  "SETTINGS ACK with a %d-octet payload (RFC 9113 §6.5)" % length)
            if length % 6:
                return self._fail(_FRAME_SIZE_ERROR,
                                  "SETTINGS frame of %d octets, not a multiple of 6 (RFC 9113 §6.5)"
                                  % length)
        elif ftype == _PUSH_PROMISE:
            if sid == 0:
                return self._stream_zero(ftype)
            minimum = (1 if flags & _FLAG_PADDED else 0) + 4
            if length < minimum:
                return self._too_short(ftype, length, minimum)
        elif ftype == _PING:
            if sid != 0:
                return self._stream_nonzero(ftype, sid)
            if length != 8:
                return self._fail(_FRAME_SIZE_ERROR,
                                  "PING frame of %d octets, not 8 (RFC 9113 §6.7)" % length)
        elif ftype == _GOAWAY:
            if sid != 0:
                return self._stream_nonzero(ftype, sid)
            if length < 8:
                return self._too_short(ftype, length, 8)
        elif ftype == _WINDOW_UPDATE:
            if length != 4:
                return self._fail(_FRAME_SIZE_ERROR,
                                  "WINDOW_UPDATE frame of %d octets, not 4 (RFC 9113 §6.9)" % length)
        elif ftype == _CONTINUATION:
            if sid == 0:
                return self._stream_zero(ftype)
        return 0

    cdef int _stream_zero(self, int ftype) except -1:
        return self._fail(_PROTOCOL_ERROR, "%s frame on stream 0 (RFC 9113 §6)" % _type_name(ftype))

    cdef int _stream_nonzero(self, int ftype, uint32_t sid) except -1:
        return self._fail(_PROTOCOL_ERROR, "%s frame on stream %d; it belongs on stream 0 (RFC 9113 §6)"
                          % (_type_name(ftype), sid))

    cdef int _too_short(self, int ftype, uint32_t length, uint32_t minimum) except -1:
        return self._fail(_FRAME_SIZE_ERROR, "%s frame of %d octets is shorter than its %d octets "
                          "of fixed fields (RFC 9113 §4.2)" % (_type_name(ftype), length, minimum))

    cdef int _finish(self, object owner, const unsigned char* payload, list frames) except -1:
        # The payload is complete: check the rules that need it, then hand the frame out.
        cdef int ftype = self._ftype
        cdef int flags = self._fflags
        cdef uint32_t sid = self._fsid
        cdef Py_ssize_t length = self._flen
        cdef Py_ssize_t start = 0
        cdef Py_ssize_t end = length
        cdef Py_ssize_t pad
        cdef int stream_error = 0
        cdef Frame frame
        if ftype > _CONTINUATION:
            self.unknown_frames += 1
            return 0
        if ftype == _DATA:
            if flags & _FLAG_PADDED:
                pad = payload[0]
                if pad >= length:
                    return self._bad_padding(ftype, pad, length)
                start = 1
                end = length - pad
        elif ftype == _HEADERS or ftype == _PUSH_PROMISE:
            if flags & _FLAG_PADDED:
                start = 1
                pad = payload[0]
            else:
                pad = 0
            if ftype == _PUSH_PROMISE:
                start += 4
            elif flags & _FLAG_PRIORITY:
                if (_be32(payload + start) & 0x7FFFFFFF) == sid:
                    stream_error = _PROTOCOL_ERROR      # depends on itself (RFC 7540 §5.3.1)
                start += 5
            if pad > length - start:
                return self._bad_padding(ftype, pad, length)
            end = length - pad
            if not flags & _FLAG_END_HEADERS:
                self._block_stream = sid
        elif ftype == _CONTINUATION:
            if flags & _FLAG_END_HEADERS:
                self._block_stream = 0
        elif ftype == _PRIORITY:
            if length != 5:
                stream_error = _FRAME_SIZE_ERROR        # a stream error (RFC 9113 §6.3)
            elif (_be32(payload) & 0x7FFFFFFF) == sid:
                stream_error = _PROTOCOL_ERROR
        elif ftype == _WINDOW_UPDATE:
            if (_be32(payload) & 0x7FFFFFFF) == 0:
                if sid == 0:
                    return self._fail(_PROTOCOL_ERROR,
                                      "WINDOW_UPDATE of 0 on the connection (RFC 9113 §6.9)")
                stream_error = _PROTOCOL_ERROR
        elif ftype == _SETTINGS:
            err = self._check_settings(payload, length)
            if err:
                return err
        frame = Frame.__new__(Frame)
        frame.type = ftype
        frame.flags = flags
        frame.stream_id = sid
        frame.length = length
        frame._owner = owner
        frame._payload = payload
        frame._data_start = start
        frame._data_end = end
        frame._stream_error = stream_error
        self._emitted += 1
        PyList_Append(frames, frame)
        return 0

    cdef int _bad_padding(self, int ftype, Py_ssize_t pad, Py_ssize_t length) except -1:
        return self._fail(_PROTOCOL_ERROR, "%s frame of %d octets with %d octets of padding "
                          "(RFC 9113 §6.1, §6.2)" % (_type_name(ftype), length, pad))

    cdef int _check_settings(self, const unsigned char* p, Py_ssize_t length) except -1:
        # Value ranges that hold whatever the connection state (RFC 9113 §6.5.2, RFC 8441 §3,
        # RFC 9218 §2.1).  Unknown parameters are ignored.
        cdef Py_ssize_t i
        cdef uint32_t ident, value
        for i in range(0, length, 6):
            ident = (<uint32_t>p[i] << 8) | p[i + 1]
            value = _be32(p + i + 2)
            if ident == 0x2 or ident == 0x8 or ident == 0x9:
                if value > 1:
                    return self._fail(_PROTOCOL_ERROR, "SETTINGS parameter %s = %d; only 0 or 1 "
                                      "is allowed" % (SettingCode(ident).name, value))
            elif ident == 0x4:
                if value > _MAX_WINDOW:
                    return self._fail(_FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE = %d "
                                      "exceeds 2^31-1 (RFC 9113 §6.5.2)" % value)
            elif ident == 0x5:
                if value < _MIN_MAX_FRAME_SIZE or value > _MAX_MAX_FRAME_SIZE:
                    return self._fail(_PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE = %d outside "
                                      "16384..16777215 (RFC 9113 §6.5.2)" % value)
        return 0


cdef object _type_name(int ftype):
    return _FRAME_TYPE_NAMES.get(ftype, "unknown type %d" % ftype)
