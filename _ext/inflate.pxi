# permessage-deflate, receiving (RFC 7692 §7.2.2): a compressed message's payload is inflated
# with zlib's C API into one reused buffer, bounded by max_message_size at every step, and the
# application's str or bytes is made from that buffer (no intermediate bytes object).
#
# Included by core.pyx before wsframe.pxi, whose FrameParser calls Inflater._inflate when a
# compressed message completes.

cdef extern from "zlib.h":
    ctypedef struct z_stream:
        const unsigned char* next_in
        unsigned int avail_in
        unsigned char* next_out
        unsigned int avail_out
        const char* msg
    int Z_OK
    int Z_STREAM_END
    int Z_NEED_DICT
    int Z_BUF_ERROR
    int Z_MEM_ERROR
    int Z_SYNC_FLUSH
    const char* zlibVersion()
    int inflateInit2(z_stream* strm, int windowBits)
    int inflate(z_stream* strm, int flush)
    int inflateEnd(z_stream* strm)
    int inflateReset(z_stream* strm)
    int inflateGetDictionary(z_stream* strm, unsigned char* dictionary, unsigned int* length)
    int inflateSetDictionary(z_stream* strm, const unsigned char* dictionary, unsigned int length)

cdef const unsigned char* _DEFLATE_TAIL = b"\x00\x00\xff\xff"   # RFC 7692 §7.2.2

cdef enum:
    _WINDOW = 32768             # zlib's largest window (15 bits): inflating with it accepts any
    _MIN_INFLATE_BUFFER = 1024

#: The zlib the core is linked against.
ZLIB_VERSION = (<bytes>zlibVersion()).decode("ascii")


@cython.final
cdef class Inflater:
    """The receiving half of one WebSocket's permessage-deflate (RFC 7692 §7.2.2).

    ``inflate(payload, is_text)`` takes one message's compressed payload (the four octets the
    sender removed are put back here) and returns the ``str`` or ``bytes``; the LZ77 window is
    kept between messages unless ``no_context_takeover`` (the peer's
    ``*_no_context_takeover``).  The window is always zlib's largest, which accepts data
    compressed with any smaller one.

    ``max_message_size`` (``None``: no limit) bounds the inflated size: inflation runs in steps
    into a buffer that never grows past it, so a decompression bomb costs at most that much
    memory.  Errors raise :class:`~ws2fast.exceptions.WebSocketProtocolError` with the close
    code to use: 1009 past the limit, 1007 for data that is not valid deflate or, for text, not
    valid UTF-8.  After an error the window may be wrong: the WebSocket must be closed.
    """

    cdef z_stream _z
    cdef bint _ready
    cdef readonly bint no_context_takeover
    cdef uint64_t _max_size
    cdef unsigned char* _out
    cdef size_t _cap
    cdef object _message

    def __cinit__(self, max_message_size=None, *, bint no_context_takeover=False):
        if max_message_size is None:
            self._max_size = <uint64_t>PY_SSIZE_T_MAX - 1
        elif 0 <= max_message_size < PY_SSIZE_T_MAX:
            self._max_size = max_message_size
        else:
            raise ValueError("max_message_size must be within 0..2^63-2 or None, not %r"
                             % (max_message_size,))
        self.no_context_takeover = no_context_takeover
        memset(&self._z, 0, sizeof(z_stream))
        if inflateInit2(&self._z, -15) != Z_OK:
            raise MemoryError("zlib could not make an inflate stream")
        self._ready = True

    def __dealloc__(self):
        if self._ready:
            inflateEnd(&self._z)
        PyMem_Free(self._out)

    @property
    def max_message_size(self):
        return None if self._max_size == <uint64_t>PY_SSIZE_T_MAX - 1 else self._max_size

    def inflate(self, payload, bint is_text=False):
        """One message's compressed payload, inflated (``str`` if ``is_text``)."""
        cdef Py_buffer view
        cdef size_t n = 0
        cdef int err
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            err = self._inflate(<const unsigned char*>view.buf, <size_t>view.len, &n)
        finally:
            PyBuffer_Release(&view)
        if err:
            raise WebSocketProtocolError(self._message, close_code=err)
        result = self._result(n, is_text)
        if result is None:
            raise WebSocketProtocolError(self._message, close_code=_CLOSE_INVALID_DATA)
        return result

    cdef object _result(self, size_t n, bint is_text):
        # The str/bytes of what _inflate left in the buffer; None (message set) for bad UTF-8.
        cdef object out
        if is_text:
            try:
                out = PyUnicode_DecodeUTF8(<const char*>self._out, <Py_ssize_t>n, NULL)
            except UnicodeDecodeError:
                self._message = "invalid UTF-8 in a compressed text message (RFC 6455 §8.1)"
                out = None
        else:
            out = PyBytes_FromStringAndSize(<const char*>self._out, <Py_ssize_t>n)
        if self._cap > _KEEP_BUFFER:
            PyMem_Free(self._out)
            self._out = NULL
            self._cap = 0
        return out

    cdef int _grow(self, size_t used) except -1:
        # Room for more output, never past max_size + 1 octets (one more than allowed tells
        # that the message is too big).  Returns 0 or a close code (message set).
        cdef size_t limit = <size_t>self._max_size + 1
        cdef size_t capacity
        cdef unsigned char* grown
        if self._cap >= limit:
            self._message = "a compressed message inflates past max_message_size %d" % self._max_size
            return _CLOSE_TOO_BIG
        capacity = max(<size_t>self._cap * 2, used + _MIN_INFLATE_BUFFER)
        if capacity > limit:
            capacity = limit
        grown = <unsigned char*>PyMem_Realloc(self._out, capacity)
        if grown is NULL:
            self._message = "no memory to inflate a message of %d bytes" % capacity
            return _CLOSE_TOO_BIG
        self._out = grown
        self._cap = capacity
        return 0

    cdef int _keep_window_across_end(self) except -1:
        # The sender ended a deflate stream (a block with BFINAL set, RFC 7692 §7.2.3.3): start
        # a new one that still sees the old window, for context takeover.
        cdef unsigned char* window = <unsigned char*>PyMem_Malloc(_WINDOW)
        cdef unsigned int length = _WINDOW
        if window is NULL:
            raise MemoryError()
        try:
            if inflateGetDictionary(&self._z, window, &length) != Z_OK or inflateReset(&self._z) != Z_OK \
                    or (length and inflateSetDictionary(&self._z, window, length) != Z_OK):
                self._message = "zlib could not carry the window over a final block"
                return _CLOSE_INTERNAL_ERROR
        finally:
            PyMem_Free(window)
        return 0

    cdef int _inflate(self, const unsigned char* p, size_t n, size_t* produced) except -1:
        # Inflate p[0:n] + the tail into self._out; *produced = octets out.  Returns 0 or a
        # close code (self._message set).
        cdef size_t used = 0
        cdef size_t room, step
        cdef int part, ret, err
        cdef const unsigned char* src
        cdef size_t left
        if self._cap == 0:
            err = self._grow(0)
            if err:
                return err
        for part in range(2):
            src = p if part == 0 else _DEFLATE_TAIL
            left = n if part == 0 else 4
            while True:
                if used == self._cap:
                    err = self._grow(used)
                    if err:
                        return err
                # zlib counts in unsigned int: at most 1 GiB in and out per step
                step = min(left, <size_t>1 << 30)
                room = min(self._cap - used, <size_t>1 << 30)
                self._z.next_in = src
                self._z.avail_in = <unsigned int>step
                self._z.next_out = self._out + used
                self._z.avail_out = <unsigned int>room
                ret = inflate(&self._z, Z_SYNC_FLUSH)
                src += step - self._z.avail_in
                left -= step - self._z.avail_in
                used += room - self._z.avail_out
                if used > self._max_size:
                    self._message = "a compressed message inflates past max_message_size %d" % self._max_size
                    return _CLOSE_TOO_BIG
                if ret == Z_STREAM_END:
                    err = self._keep_window_across_end()
                    if err:
                        return err
                    if left == 0:
                        break
                elif ret == Z_OK or ret == Z_BUF_ERROR:
                    if self._z.avail_out == 0:
                        continue                # the output is full: grow, go on
                    if left == 0:
                        break                   # all in, all out (as far as a sync flush goes)
                    if ret == Z_BUF_ERROR:
                        self._message = "zlib made no progress inflating a message"
                        return _CLOSE_INTERNAL_ERROR
                elif ret == Z_MEM_ERROR:
                    self._message = "zlib ran out of memory inflating a message"
                    return _CLOSE_TOO_BIG
                else:
                    self._message = "invalid compressed data: %s (RFC 7692 §7.2.2)" % (
                        (<bytes>self._z.msg).decode("ascii", "replace") if self._z.msg is not NULL
                        else "zlib error %d" % ret)
                    return _CLOSE_INVALID_DATA
        if self.no_context_takeover:
            inflateReset(&self._z)
        produced[0] = used
        return 0
