# HPACK (RFC 7541): decoder and encoder, static and dynamic tables, Huffman coding.
#
# Included by core.pyx.  The decoder keeps each dynamic-table entry as the very tuple it hands
# out, so an indexed field costs one reference, not a new object: a repeated header block
# decodes to a list of shared tuples.

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize

cdef extern from "huffman_code.h":
    const uint32_t ws2fast_huffman_code[257]
    const uint8_t ws2fast_huffman_length[257]

cdef enum:
    _STATIC_COUNT = 61
    _ENTRY_OVERHEAD = 32                # RFC 7541 §4.1

cdef extern from *:
    """
    /* Larger HPACK integers are refused: nothing in HTTP/2 needs them. */
    #define WS2FAST_HPACK_INT_MAX 0xFFFFFFFFull
    """
    const uint64_t _HPACK_INT_MAX "WS2FAST_HPACK_INT_MAX"

cdef enum:
    _HUFF_EMIT = 1
    _HUFF_ACCEPT = 2
    _HUFF_FAIL = 4

ctypedef struct _HuffStep:
    uint8_t state       # next state: an internal node of the code tree (there are 256)
    uint8_t flags       # _HUFF_EMIT / _HUFF_ACCEPT / _HUFF_FAIL
    uint8_t symbol      # the symbol emitted, with _HUFF_EMIT

# Decoding consumes 4 bits per step; the table is derived from the code at import time.
cdef _HuffStep _huffman_fsm[256][16]


cdef int _build_huffman_fsm() except -1:
    cdef int child[256][2]
    cdef bint accepting[256]
    cdef int nodes = 1
    cdef int sym, i, bit, node, nxt, state, nibble, flags, out
    cdef uint32_t code
    for i in range(256):
        child[i][0] = child[i][1] = 0x7FFF
        accepting[i] = False
    for sym in range(257):
        code = ws2fast_huffman_code[sym]
        node = 0
        for i in range(ws2fast_huffman_length[sym] - 1, 0, -1):
            bit = (code >> i) & 1
            if child[node][bit] == 0x7FFF:
                if nodes >= 256:
                    raise AssertionError("HPACK Huffman code is not the RFC 7541 code")
                child[node][bit] = nodes
                nodes += 1
            node = child[node][bit]
        child[node][code & 1] = -(sym + 1)          # leaf
    if nodes != 256:
        raise AssertionError("HPACK Huffman code is not the RFC 7541 code")
    # A string may end inside a code only after at most 7 bits, all ones (RFC 7541 §5.2).
    node = 0
    accepting[0] = True
    for i in range(7):
        node = child[node][1]
        accepting[node] = True
    for state in range(256):
        for nibble in range(16):
            node = state
            flags = 0
            out = 0
            for i in range(3, -1, -1):
                nxt = child[node][(nibble >> i) & 1]
                if nxt < 0:
                    if nxt == -257:                 # EOS must not be decoded
                        flags = _HUFF_FAIL
                        break
                    flags |= _HUFF_EMIT
                    out = -nxt - 1
                    node = 0
                else:
                    node = nxt
            if not (flags & _HUFF_FAIL) and accepting[node]:
                flags |= _HUFF_ACCEPT
            _huffman_fsm[state][nibble].state = <uint8_t>node
            _huffman_fsm[state][nibble].flags = <uint8_t>flags
            _huffman_fsm[state][nibble].symbol = <uint8_t>out
    return 0


_build_huffman_fsm()


cdef Py_ssize_t _huffman_decode(const unsigned char* src, Py_ssize_t n,
                                unsigned char* dst) noexcept nogil:
    # Returns the decoded length, or -1 for an invalid string.  dst holds >= n * 8 // 5 octets.
    cdef Py_ssize_t i
    cdef Py_ssize_t o = 0
    cdef uint8_t state = 0
    cdef uint8_t flags = _HUFF_ACCEPT
    cdef const _HuffStep* step
    for i in range(n):
        step = &_huffman_fsm[state][src[i] >> 4]
        if step.flags & _HUFF_FAIL:
            return -1
        if step.flags & _HUFF_EMIT:
            dst[o] = step.symbol
            o += 1
        state = step.state
        step = &_huffman_fsm[state][src[i] & 0xF]
        if step.flags & _HUFF_FAIL:
            return -1
        if step.flags & _HUFF_EMIT:
            dst[o] = step.symbol
            o += 1
        state = step.state
        flags = step.flags
    if not (flags & _HUFF_ACCEPT):
        return -1
    return o


cdef inline Py_ssize_t _huffman_encoded_length(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint64_t bits = 0
    for i in range(n):
        bits += ws2fast_huffman_length[s[i]]
    return <Py_ssize_t>((bits + 7) >> 3)


cdef unsigned char* _huffman_encode(const unsigned char* s, Py_ssize_t n,
                                    unsigned char* out) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint64_t acc = 0
    cdef int bits = 0
    cdef int length
    for i in range(n):
        length = ws2fast_huffman_length[s[i]]
        acc = (acc << length) | ws2fast_huffman_code[s[i]]
        bits += length
        while bits >= 8:
            bits -= 8
            out[0] = <unsigned char>(acc >> bits)
            out += 1
    if bits:
        # Pad with the most significant bits of EOS (all ones), RFC 7541 §5.2.
        out[0] = <unsigned char>((acc << (8 - bits)) | (0xFF >> bits))
        out += 1
    return out


def huffman_encode(data):
    """Huffman-encode ``data`` with the HPACK code (RFC 7541 §5.2, Appendix B)."""
    cdef Py_buffer view
    cdef bytes out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        out = PyBytes_FromStringAndSize(
            NULL, _huffman_encoded_length(<const unsigned char*>view.buf, view.len))
        _huffman_encode(<const unsigned char*>view.buf, view.len, <unsigned char*>PyBytes_AS_STRING(out))
    finally:
        PyBuffer_Release(&view)
    return out


def huffman_decode(data):
    """Decode an HPACK Huffman string; :class:`HPACKError` if it is invalid (EOS, bad padding)."""
    cdef Py_buffer view
    cdef bytes out
    cdef Py_ssize_t got
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        out = PyBytes_FromStringAndSize(NULL, view.len * 8 // 5 + 1)
        got = _huffman_decode(<const unsigned char*>view.buf, view.len,
                              <unsigned char*>PyBytes_AS_STRING(out))
    finally:
        PyBuffer_Release(&view)
    if got < 0:
        raise HPACKError("invalid Huffman-coded string (EOS, or padding not a <8-bit run of ones)")
    return out[:got]


# -- static table (RFC 7541 Appendix A) -------------------------------------------------------

STATIC_TABLE = (
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"), (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"), (b"accept-language", b""), (b"accept-ranges", b""),
    (b"accept", b""), (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""), (b"cookie", b""),
    (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""), (b"from", b""),
    (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""), (b"if-none-match", b""),
    (b"if-range", b""), (b"if-unmodified-since", b""), (b"last-modified", b""), (b"link", b""),
    (b"location", b""), (b"max-forwards", b""), (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""), (b"range", b""), (b"referer", b""), (b"refresh", b""),
    (b"retry-after", b""), (b"server", b""), (b"set-cookie", b""),
    (b"strict-transport-security", b""), (b"transfer-encoding", b""), (b"user-agent", b""),
    (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
)

cdef PyObject* _static_entries[_STATIC_COUNT + 1]
cdef Py_ssize_t _static_sizes[_STATIC_COUNT + 1]
cdef dict _STATIC_EXACT = {}         # (name, value) -> lowest index
cdef dict _STATIC_NAMES = {}         # name -> lowest index
cdef bytes _EMPTY = b""


cdef int _init_static_table() except -1:
    cdef Py_ssize_t i
    for i in range(_STATIC_COUNT):
        entry = STATIC_TABLE[i]
        _static_entries[i + 1] = <PyObject*>entry      # kept alive by STATIC_TABLE
        _static_sizes[i + 1] = len(entry[0]) + len(entry[1]) + _ENTRY_OVERHEAD
        _STATIC_EXACT.setdefault(entry, i + 1)
        _STATIC_NAMES.setdefault(entry[0], i + 1)
    return 0


_init_static_table()


class NeverIndexed(tuple):
    """A ``(name, value)`` header field that must never be indexed (RFC 7541 §6.2.3, §7.1.3).

    Equal to the plain tuple; an intermediary that re-encodes it keeps it out of every table.
    """

    __slots__ = ()

    def __new__(cls, field):
        name, value = field
        return tuple.__new__(cls, (name, value))

    def __repr__(self):
        return "NeverIndexed(%r)" % (tuple(self),)

    def __reduce__(self):
        return (NeverIndexed, (tuple(self),))


# -- integers and strings (RFC 7541 §5.1, §5.2) ------------------------------------------------

cdef enum:
    _INT_OK = 0
    _INT_TRUNCATED = 1
    _INT_TOO_LARGE = 2


cdef inline int _read_int(const unsigned char* p, Py_ssize_t n, Py_ssize_t* pos, int prefix,
                          uint64_t* out) noexcept nogil:
    # Reads an N-bit-prefix integer at p[pos]; values above 2^32-1, or spelled with more than
    # five continuation octets, are refused before anything past them is read.
    cdef uint64_t mask = (1 << prefix) - 1
    cdef uint64_t value = p[pos[0]] & mask
    cdef int shift = 0
    cdef uint8_t b
    pos[0] += 1
    if value < mask:
        out[0] = value
        return _INT_OK
    while True:
        if pos[0] >= n:
            return _INT_TRUNCATED
        b = p[pos[0]]
        pos[0] += 1
        value += (<uint64_t>(b & 0x7F)) << shift
        if value > _HPACK_INT_MAX:
            return _INT_TOO_LARGE
        if not (b & 0x80):
            out[0] = value
            return _INT_OK
        shift += 7
        if shift > 28:
            return _INT_TOO_LARGE


cdef inline unsigned char* _write_int(unsigned char* w, int first, int prefix,
                                      uint64_t value) noexcept nogil:
    # first: the pattern bits above the prefix.
    cdef uint64_t mask = (1 << prefix) - 1
    if value < mask:
        w[0] = <unsigned char>(first | value)
        return w + 1
    w[0] = <unsigned char>(first | mask)
    w += 1
    value -= mask
    while value >= 0x80:
        w[0] = <unsigned char>((value & 0x7F) | 0x80)
        w += 1
        value >>= 7
    w[0] = <unsigned char>value
    return w + 1


# -- decoder ----------------------------------------------------------------------------------

cdef enum:
    _DEC_OK = 0
    _DEC_ERROR = 1          # COMPRESSION_ERROR; the message is in Decoder._message


@cython.final
cdef class Decoder:
    """HPACK decoder (RFC 7541) for one direction of one HTTP/2 connection.

    ``header_table_size`` is the SETTINGS_HEADER_TABLE_SIZE that this side sent and the peer
    acknowledged: the bound for the peer's dynamic table size updates.  When it is lowered
    below the table's current size, the next block must begin with a size update no larger
    than the smallest value set since the last block (RFC 7541 §4.2).

    ``max_header_list_size`` bounds the decoded list (name + value + 32 octets per field,
    RFC 9113 §6.5.2), enforced while decoding: past it, fields are no longer kept but the rest
    of the block is still processed so the dynamic table stays in sync, then
    :class:`HeaderListTooLarge` is raised (a stream error; the decoder stays usable).  Any other
    error raises :class:`HPACKError` (COMPRESSION_ERROR), after which the decoder refuses every
    further block: its table can no longer be trusted, and the connection must end.
    """

    cdef PyObject** _ring            # dynamic table, oldest first from _first; owned tuples
    cdef Py_ssize_t* _ring_sizes
    cdef Py_ssize_t _ring_cap
    cdef Py_ssize_t _first
    cdef Py_ssize_t _count
    cdef Py_ssize_t _size            # sum of entry sizes
    cdef Py_ssize_t _max_size        # the table's current maximum, as the peer last set it
    cdef uint64_t _setting           # header_table_size
    cdef uint64_t _pending_min       # smallest header_table_size since the last block
    cdef uint64_t _max_list
    cdef bint _failed
    cdef object _message
    cdef unsigned char* _scratch
    cdef Py_ssize_t _scratch_cap

    def __cinit__(self, header_table_size=4096, max_header_list_size=65536):
        self._ring_cap = 0
        self._ring = NULL
        self._ring_sizes = NULL
        self._scratch = NULL
        self.header_table_size = header_table_size
        self._max_size = self._setting
        self._pending_min = self._setting
        self.max_header_list_size = max_header_list_size

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self._ring is not NULL:
            for i in range(self._count):
                Py_DECREF(<object>self._ring[(self._first + i) % self._ring_cap])
            PyMem_Free(self._ring)
        PyMem_Free(self._ring_sizes)
        PyMem_Free(self._scratch)

    @property
    def header_table_size(self):
        """SETTINGS_HEADER_TABLE_SIZE sent by this side and acknowledged by the peer."""
        return self._setting

    @header_table_size.setter
    def header_table_size(self, value):
        if not (0 <= value <= 0xFFFFFFFF):
            raise ValueError("header_table_size must be within 0..2^32-1, not %r" % (value,))
        self._setting = value
        if value < self._pending_min:
            self._pending_min = value

    @property
    def max_header_list_size(self):
        """Largest decoded header list accepted, in RFC 9113 §6.5.2 octets."""
        return self._max_list

    @max_header_list_size.setter
    def max_header_list_size(self, value):
        if not (0 <= value <= 0xFFFFFFFF):
            raise ValueError("max_header_list_size must be within 0..2^32-1, not %r" % (value,))
        self._max_list = value

    @property
    def table_size(self):
        """Current size of the dynamic table, in RFC 7541 §4.1 octets."""
        return self._size

    @property
    def table_max_size(self):
        """Current maximum size of the dynamic table (set by the peer's size updates)."""
        return self._max_size

    @property
    def dynamic_table(self):
        """The dynamic table's entries, newest first (index 62 first)."""
        return [<object>self._ring[(self._first + self._count - 1 - i) % self._ring_cap]
                for i in range(self._count)]

    def decode(self, block):
        """Decode one complete header block into a list of ``(name, value)`` bytes tuples."""
        cdef Py_buffer view
        cdef list headers = []
        cdef uint64_t list_size = 0
        cdef int err
        if self._failed:
            raise HPACKError("the HPACK decoder failed earlier (%s); its table is lost"
                             % self._message)
        PyObject_GetBuffer(block, &view, PyBUF_SIMPLE)
        try:
            err = self._decode(<const unsigned char*>view.buf, view.len, headers, &list_size)
        finally:
            PyBuffer_Release(&view)
        if err:
            self._failed = True
            raise HPACKError(self._message)
        if list_size > self._max_list:
            raise HeaderListTooLarge(
                "header list of %d octets exceeds max_header_list_size %d (RFC 9113 §10.5.1)"
                % (list_size, self._max_list), size=list_size, limit=self._max_list)
        return headers

    cdef int _error(self, message) except -1:
        self._message = message
        return _DEC_ERROR

    cdef int _int_error(self, int code, str what) except -1:
        if code == _INT_TRUNCATED:
            return self._error("header block ends inside an integer (%s)" % what)
        return self._error("integer above 2^32-1 in the header block (%s)" % what)

    cdef int _decode(self, const unsigned char* p, Py_ssize_t n, list headers,
                     uint64_t* list_size) except -1:
        cdef Py_ssize_t pos = 0
        cdef uint64_t value = 0
        cdef int code
        cdef bint seen_update = False
        cdef bint required = self._pending_min < <uint64_t>self._max_size
        cdef uint8_t b
        cdef PyObject* entry
        cdef Py_ssize_t size
        cdef object name, val, field

        # Dynamic table size updates come first (RFC 7541 §4.2, §6.3).
        while pos < n and (p[pos] & 0xE0) == 0x20:
            code = _read_int(p, n, &pos, 5, &value)
            if code:
                return self._int_error(code, "table size update")
            if required and not seen_update and value > self._pending_min:
                return self._error("table size update to %d, but header_table_size was lowered "
                                   "to %d (RFC 7541 §4.2)" % (value, self._pending_min))
            if value > self._setting:
                return self._error("table size update to %d exceeds header_table_size %d "
                                   "(RFC 7541 §6.3)" % (value, self._setting))
            self._max_size = <Py_ssize_t>value
            self._evict(0)
            seen_update = True
        if required and not seen_update:
            return self._error("header_table_size was lowered to %d but the block does not "
                               "begin with a table size update (RFC 7541 §4.2)" % self._pending_min)
        self._pending_min = self._setting

        while pos < n:
            b = p[pos]
            if b & 0x80:                                        # indexed field (§6.1)
                code = _read_int(p, n, &pos, 7, &value)
                if code:
                    return self._int_error(code, "index")
                entry = self._lookup(value)
                if entry is NULL:
                    return self._bad_index(value)
                size = _static_sizes[value] if value <= _STATIC_COUNT else \
                    self._ring_sizes[self._ring_slot(value)]
                list_size[0] += size
                if list_size[0] <= self._max_list:
                    PyList_Append(headers, <object>entry)
                continue
            if (b & 0xE0) == 0x20:
                return self._error("table size update after the first field of the block "
                                   "(RFC 7541 §4.2)")
            # Literal field: with incremental indexing (01), without (0000), never (0001).
            code = _read_int(p, n, &pos, 6 if b & 0x40 else 4, &value)
            if code:
                return self._int_error(code, "name index")
            if value:
                entry = self._lookup(value)
                if entry is NULL:
                    return self._bad_index(value)
                name = (<tuple>entry)[0]
            else:
                name = self._read_string(p, n, &pos)
                if name is None:
                    return _DEC_ERROR
            val = self._read_string(p, n, &pos)
            if val is None:
                return _DEC_ERROR
            size = PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(val) + _ENTRY_OVERHEAD
            list_size[0] += size
            if b & 0x40:
                field = (name, val)
                self._insert(field, size)
            elif b & 0x10:
                field = NeverIndexed((name, val))
            else:
                field = (name, val)
            if list_size[0] <= self._max_list:
                PyList_Append(headers, field)
        return _DEC_OK

    cdef int _bad_index(self, uint64_t index) except -1:
        return self._error("index %d is outside the static and dynamic tables (%d entries) "
                           "(RFC 7541 §2.3.3)" % (index, _STATIC_COUNT + self._count))

    cdef inline Py_ssize_t _ring_slot(self, uint64_t index) noexcept:
        # index > 61 and within the dynamic table.
        return (self._first + self._count - <Py_ssize_t>(index - _STATIC_COUNT)) % self._ring_cap

    cdef inline PyObject* _lookup(self, uint64_t index) noexcept:
        if index == 0:
            return NULL
        if index <= _STATIC_COUNT:
            return _static_entries[index]
        if index - _STATIC_COUNT > <uint64_t>self._count:
            return NULL
        return self._ring[self._ring_slot(index)]

    cdef object _read_string(self, const unsigned char* p, Py_ssize_t n, Py_ssize_t* pos):
        # Returns bytes, or None with self._message set.
        cdef uint64_t length = 0
        cdef bint huffman
        cdef int code
        cdef Py_ssize_t got
        if pos[0] >= n:
            self._error("header block ends before a string literal")
            return None
        huffman = p[pos[0]] & 0x80
        code = _read_int(p, n, pos, 7, &length)
        if code:
            self._int_error(code, "string length")
            return None
        if length > <uint64_t>(n - pos[0]):
            self._error("string literal of %d octets runs past the end of the header block "
                        "(%d left)" % (length, n - pos[0]))
            return None
        if length == 0:
            return _EMPTY
        if not huffman:
            pos[0] += length
            return PyBytes_FromStringAndSize(<const char*>p + pos[0] - length, length)
        self._reserve_scratch(length * 8 // 5 + 1)
        got = _huffman_decode(p + pos[0], length, self._scratch)
        pos[0] += length
        if got < 0:
            self._error("invalid Huffman-coded string: EOS, or padding not a run of fewer "
                        "than 8 one bits (RFC 7541 §5.2)")
            return None
        return PyBytes_FromStringAndSize(<const char*>self._scratch, got)

    cdef int _reserve_scratch(self, Py_ssize_t size) except -1:
        cdef unsigned char* grown
        if size <= self._scratch_cap:
            return 0
        size = max(size, 256)
        grown = <unsigned char*>PyMem_Realloc(self._scratch, size)
        if grown is NULL:
            raise MemoryError()
        self._scratch = grown
        self._scratch_cap = size
        return 0

    cdef int _insert(self, object field, Py_ssize_t size) except -1:
        # RFC 7541 §4.4: evict until the new entry fits; an entry larger than the table
        # empties it and is not added.
        cdef Py_ssize_t cap, i
        cdef PyObject** ring
        cdef Py_ssize_t* sizes
        if size > self._max_size:
            self._evict(self._max_size)
            return 0
        self._evict(size)
        if self._count == self._ring_cap:
            cap = self._ring_cap * 2 if self._ring_cap else 16
            ring = <PyObject**>PyMem_Malloc(cap * sizeof(PyObject*))
            sizes = <Py_ssize_t*>PyMem_Malloc(cap * sizeof(Py_ssize_t))
            if ring is NULL or sizes is NULL:
                PyMem_Free(ring)
                PyMem_Free(sizes)
                raise MemoryError()
            for i in range(self._count):
                ring[i] = self._ring[(self._first + i) % self._ring_cap]
                sizes[i] = self._ring_sizes[(self._first + i) % self._ring_cap]
            PyMem_Free(self._ring)
            PyMem_Free(self._ring_sizes)
            self._ring = ring
            self._ring_sizes = sizes
            self._ring_cap = cap
            self._first = 0
        i = (self._first + self._count) % self._ring_cap
        Py_INCREF(field)
        self._ring[i] = <PyObject*>field
        self._ring_sizes[i] = size
        self._count += 1
        self._size += size
        return 0

    cdef void _evict(self, Py_ssize_t room) noexcept:
        # Drop the oldest entries until `room` more octets fit under the maximum size.
        cdef PyObject* old
        while self._count and self._size + room > self._max_size:
            old = self._ring[self._first]
            self._size -= self._ring_sizes[self._first]
            self._first = (self._first + 1) % self._ring_cap
            self._count -= 1
            Py_DECREF(<object>old)


# -- encoder ----------------------------------------------------------------------------------

cdef inline bytes _field_bytes(object value):
    if type(value) is bytes:
        return <bytes>value
    if isinstance(value, str):
        return (<str>value).encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError("header names and values are bytes or str, not %s" % type(value).__name__)


@cython.final
cdef class Encoder:
    """HPACK encoder (RFC 7541) for one direction of one HTTP/2 connection.

    ``header_table_size`` is the *peer's* SETTINGS_HEADER_TABLE_SIZE that this side
    acknowledged; the encoder uses the whole of it.  Setting it announces the change with a
    dynamic table size update at the start of the next block (two when it was lowered and
    raised again in between, RFC 7541 §4.2).

    Fields that match a table entry are sent indexed; others are sent as literals with
    incremental indexing (using an indexed name where one exists), except entries larger than
    the table, which would only empty it.  Strings are Huffman-coded when that is shorter
    (``huffman=True``).  :class:`NeverIndexed` fields become never-indexed literals.
    """

    cdef object _entries         # deque of (key, name, size, serial), oldest first
    cdef dict _exact             # (name, value) -> serial of the newest such entry
    cdef dict _names             # name -> serial of the newest entry with that name
    cdef Py_ssize_t _serial      # serial of the newest entry; entry index = 62 + serial - its serial
    cdef Py_ssize_t _size
    cdef Py_ssize_t _max_size
    cdef uint64_t _setting
    cdef uint64_t _pending_min
    cdef bint _update_due
    cdef public bint huffman

    def __cinit__(self, header_table_size=4096, bint huffman=True):
        from collections import deque
        self._entries = deque()
        self._exact = {}
        self._names = {}
        self.huffman = huffman
        if not (0 <= header_table_size <= 0xFFFFFFFF):
            raise ValueError("header_table_size must be within 0..2^32-1")
        self._setting = header_table_size
        self._max_size = header_table_size
        self._pending_min = header_table_size

    @property
    def header_table_size(self):
        """The peer's SETTINGS_HEADER_TABLE_SIZE, acknowledged by this side."""
        return self._setting

    @header_table_size.setter
    def header_table_size(self, value):
        if not (0 <= value <= 0xFFFFFFFF):
            raise ValueError("header_table_size must be within 0..2^32-1, not %r" % (value,))
        self._setting = value
        if value < self._pending_min:
            self._pending_min = value
        self._update_due = True

    @property
    def table_size(self):
        """Current size of the dynamic table, in RFC 7541 §4.1 octets."""
        return self._size

    def encode(self, headers):
        """Encode ``headers`` (an iterable of ``(name, value)`` pairs, or a mapping) as one block."""
        cdef bytearray out = bytearray()
        cdef unsigned char tmp[16]
        cdef unsigned char* w
        cdef bint never
        cdef object index, name_index
        cdef bytes name, value
        if hasattr(headers, "items"):
            headers = headers.items()
        if self._update_due:
            self._announce_size(out)
        for field in headers:
            never = isinstance(field, NeverIndexed)
            raw_name, raw_value = field
            name = _field_bytes(raw_name)
            value = _field_bytes(raw_value)
            key = (name, value)
            if not never:
                index = _STATIC_EXACT.get(key)
                if index is None:
                    index = self._exact.get(key)
                    if index is not None:
                        index = _STATIC_COUNT + 1 + self._serial - <Py_ssize_t>index
                if index is not None:
                    w = _write_int(tmp, 0x80, 7, <Py_ssize_t>index)
                    out += tmp[:w - tmp]
                    continue
            name_index = _STATIC_NAMES.get(name)
            if name_index is None:
                name_index = self._names.get(name)
                if name_index is not None:
                    name_index = _STATIC_COUNT + 1 + self._serial - <Py_ssize_t>name_index
            size = len(name) + len(value) + _ENTRY_OVERHEAD
            if never:
                w = _write_int(tmp, 0x10, 4, name_index or 0)
            elif size <= self._max_size:
                w = _write_int(tmp, 0x40, 6, name_index or 0)
            else:
                w = _write_int(tmp, 0x00, 4, name_index or 0)
            out += tmp[:w - tmp]
            if name_index is None:
                self._write_string(out, name)
            self._write_string(out, value)
            if not never and size <= self._max_size:
                self._add(key, name, size)
        return bytes(out)

    cdef int _announce_size(self, bytearray out) except -1:
        cdef unsigned char tmp[16]
        cdef unsigned char* w = tmp
        cdef uint64_t final = self._setting
        if self._pending_min < final and self._pending_min < <uint64_t>self._max_size:
            w = _write_int(w, 0x20, 5, self._pending_min)
            self._max_size = <Py_ssize_t>self._pending_min
            self._evict(0)
        if final != <uint64_t>self._max_size:
            w = _write_int(w, 0x20, 5, final)
            self._max_size = <Py_ssize_t>final
            self._evict(0)
        out += tmp[:w - tmp]
        self._pending_min = final
        self._update_due = False
        return 0

    cdef int _write_string(self, bytearray out, bytes s) except -1:
        cdef unsigned char tmp[16]
        cdef unsigned char* w
        cdef Py_ssize_t n = PyBytes_GET_SIZE(s)
        cdef const unsigned char* src = <const unsigned char*>PyBytes_AS_STRING(s)
        cdef Py_ssize_t hlen = _huffman_encoded_length(src, n) if self.huffman else n
        cdef Py_ssize_t start
        if hlen < n:
            w = _write_int(tmp, 0x80, 7, hlen)
            out += tmp[:w - tmp]
            start = PyByteArray_GET_SIZE(out)
            PyByteArray_Resize(out, start + hlen)
            _huffman_encode(src, n, <unsigned char*>PyByteArray_AS_STRING(out) + start)
        else:
            w = _write_int(tmp, 0x00, 7, n)
            out += tmp[:w - tmp]
            out += s
        return 0

    cdef int _add(self, object key, bytes name, Py_ssize_t size) except -1:
        self._evict(size)
        self._serial += 1
        self._entries.append((key, name, size, self._serial))
        self._exact[key] = self._serial
        self._names[name] = self._serial
        self._size += size
        return 0

    cdef int _evict(self, Py_ssize_t room) except -1:
        while self._entries and self._size + room > self._max_size:
            key, name, size, serial = self._entries.popleft()
            self._size -= size
            if self._exact.get(key) == serial:
                del self._exact[key]
            if self._names.get(name) == serial:
                del self._names[name]
        return 0
