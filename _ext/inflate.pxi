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

# The output buffer inflation writes into, shared by every Inflater (of this interpreter):
# inflate() runs start to end with the GIL held and copies its result out into a str/bytes
# before it returns, so one buffer serves all, and an idle compressed WebSocket holds none.
# Above _KEEP_BUFFER it is freed after the message.
cdef unsigned char* _inflate_out = NULL
cdef size_t _inflate_cap = 0


cdef inline void _release_inflate_out() noexcept:
    global _inflate_out, _inflate_cap
    if _inflate_cap > _KEEP_BUFFER:
        PyMem_Free(_inflate_out)
        _inflate_out = NULL
        _inflate_cap = 0

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
        global _inflate_out, _inflate_cap
        cdef object out
        try:
            if is_text:
                try:
                    out = PyUnicode_DecodeUTF8(<const char*>_inflate_out, <Py_ssize_t>n, NULL)
                except UnicodeDecodeError:
                    self._message = "invalid UTF-8 in a compressed text message (RFC 6455 §8.1)"
                    out = None
            else:
                out = PyBytes_FromStringAndSize(<const char*>_inflate_out, <Py_ssize_t>n)
        finally:
            _release_inflate_out()
        return out

    cdef int _grow(self, size_t used) except -1:
        # Room for more output in the shared buffer (used == its capacity, below this
        # Inflater's limit of max_size + 1 octets: one more than allowed tells that the message
        # is too big).  Returns 0 or a close code (message set).
        global _inflate_out, _inflate_cap
        cdef size_t limit = <size_t>self._max_size + 1
        cdef size_t capacity
        cdef unsigned char* grown
        if used >= limit:
            self._message = "a compressed message inflates past max_message_size %d" % self._max_size
            return _CLOSE_TOO_BIG
        capacity = max(_inflate_cap * 2, used + _MIN_INFLATE_BUFFER)
        if capacity > limit:
            capacity = limit
        if capacity <= _inflate_cap:
            return 0
        grown = <unsigned char*>PyMem_Realloc(_inflate_out, capacity)
        if grown is NULL:
            self._message = "no memory to inflate a message of %d bytes" % capacity
            return _CLOSE_TOO_BIG
        _inflate_out = grown
        _inflate_cap = capacity
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
        # Inflate p[0:n] + the tail into the shared buffer; *produced = octets out (for
        # _result to take).  Returns 0 or a close code (self._message set).
        cdef int err
        try:
            err = self._inflate_steps(p, n, produced)
        except BaseException:
            _release_inflate_out()
            raise
        if err:
            _release_inflate_out()      # a bomb stopped at the limit leaves no large buffer
        return err

    cdef int _inflate_steps(self, const unsigned char* p, size_t n, size_t* produced) except -1:
        cdef size_t limit = <size_t>self._max_size + 1
        cdef size_t capacity
        cdef size_t used = 0
        cdef size_t room, step
        cdef int part, ret, err
        cdef const unsigned char* src
        cdef size_t left
        for part in range(2):
            src = p if part == 0 else _DEFLATE_TAIL
            left = n if part == 0 else 4
            while True:
                capacity = min(_inflate_cap, limit)       # this Inflater's share of the buffer
                if used == capacity:
                    err = self._grow(used)
                    if err:
                        return err
                    capacity = min(_inflate_cap, limit)
                # zlib counts in unsigned int: at most 1 GiB in and out per step
                step = min(left, <size_t>1 << 30)
                room = min(capacity - used, <size_t>1 << 30)
                self._z.next_in = src
                self._z.avail_in = <unsigned int>step
                self._z.next_out = _inflate_out + used
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
