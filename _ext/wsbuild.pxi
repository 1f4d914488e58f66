# WebSocket frame builders (RFC 6455 §5.2): masking fused with the copy into the output.
# Included by core.pyx last.

cdef Py_ssize_t _write_ws_header(unsigned char* w, int b0, uint64_t length,
                                 const uint8_t* key) noexcept nogil:
    # Returns the header size; key is NULL for an unmasked frame.
    cdef Py_ssize_t n
    cdef int i
    cdef int mask_bit = 0x80 if key is not NULL else 0
    w[0] = <unsigned char>b0
    if length < 126:
        w[1] = <unsigned char>(mask_bit | length)
        n = 2
    elif length <= 0xFFFF:
        w[1] = <unsigned char>(mask_bit | 126)
        w[2] = <unsigned char>(length >> 8)
        w[3] = <unsigned char>length
        n = 4
    else:
        w[1] = <unsigned char>(mask_bit | 127)
        for i in range(8):
            w[2 + i] = <unsigned char>(length >> (56 - 8 * i))
        n = 10
    if key is not NULL:
        memcpy(w + n, key, 4)
        n += 4
    return n


cdef int _frame_b0(object opcode, bint fin, bint rsv1, uint64_t length) except -1:
    if opcode not in (0, 1, 2, 8, 9, 10):
        raise ValueError("opcode must be one of 0, 1, 2, 8, 9, 10, not %r" % (opcode,))
    if opcode >= 8:
        if not fin:
            raise ValueError("control frames cannot be fragmented (RFC 6455 §5.5)")
        if length > _MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload of %d bytes exceeds 125" % length)
        if rsv1:
            raise ValueError("RSV1 on a control frame")
    return (0x80 if fin else 0) | (0x40 if rsv1 else 0) | <int>opcode


cdef const uint8_t* _choose_key(object mask_key, bint mask, uint8_t* storage) except? NULL:
    if mask_key is not None:
        _key_arg(mask_key, storage)
        return storage
    if mask:
        memcpy(storage, _next_mask_key(), 4)
        return storage
    return NULL


def build_ws_frame(opcode, payload, bint fin=True, mask_key=None, bint rsv1=False, *, bint mask=False):
    """One WebSocket frame as bytes (RFC 6455 §5.2).

    Frames a client sends are masked: pass ``mask=True`` for a fresh random key (drawn from
    os.urandom in batches) or an explicit 4-byte ``mask_key``; masking is fused with the copy
    into the output.  A ``str`` payload is encoded as UTF-8.
    """
    cdef uint8_t storage[4]
    cdef const uint8_t* key
    cdef Py_buffer view
    if isinstance(payload, str):
        payload = (<str>payload).encode("utf-8")
    key = _choose_key(mask_key, mask, storage)
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return _ws_frame_bytes(_frame_b0(opcode, fin, rsv1, view.len), <const unsigned char*>view.buf,
                               view.len, key)
    finally:
        PyBuffer_Release(&view)


cdef bytes _ws_frame_bytes(int b0, const unsigned char* p, Py_ssize_t n, const uint8_t* key):
    # One frame (first octet b0) as a new bytes object: header, then the payload masked with
    # key (NULL: copied as is).
    cdef unsigned char header[_MAX_WS_HEADER]
    cdef Py_ssize_t h = _write_ws_header(header, b0, n, key)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, h + n)
    cdef unsigned char* w = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(w, header, h)
    if key is not NULL:
        _mask_maybe_nogil(w + h, <const uint8_t*>p, n, key, 0)
    elif n:
        memcpy(w + h, p, n)
    return out


def build_ws_frame_header(opcode, length, *, bint fin=True, bint rsv1=False, mask_key=None):
    """The header alone, for writing an unmasked payload without copying it
    (``transport.writelines([header, payload])``)."""
    cdef uint8_t storage[4]
    cdef unsigned char header[_MAX_WS_HEADER]
    cdef Py_ssize_t h
    if not (0 <= length <= 0x7FFFFFFFFFFFFFFF):
        raise ValueError("length must be within 0..2^63-1, not %r" % (length,))
    h = _write_ws_header(header, _frame_b0(opcode, fin, rsv1, length), length,
                         _choose_key(mask_key, False, storage))
    return PyBytes_FromStringAndSize(<const char*>header, h)


def build_ws_close(code=1000, reason="", *, bint mask=False, mask_key=None):
    """A close frame (RFC 6455 §5.5.1); ``code=None`` sends an empty payload."""
    cdef bytes body
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        body = b""
    else:
        if not is_valid_close_code(code):
            raise ValueError("close code %r may not be sent (RFC 6455 §7.4)" % (code,))
        encoded = reason.encode("utf-8") if isinstance(reason, str) else bytes(reason)
        encoded.decode("utf-8")                     # a reason must be valid UTF-8
        if len(encoded) > _MAX_CONTROL_PAYLOAD - 2:
            raise ValueError("close reason of %d bytes exceeds 123" % len(encoded))
        body = bytes(((code >> 8) & 0xFF, code & 0xFF)) + encoded
    return build_ws_frame(_OP_CLOSE, body, True, mask_key, False, mask=mask)


def build_ws_ping(payload=b"", *, bint mask=False, mask_key=None):
    """A ping frame (at most 125 bytes of payload)."""
    return build_ws_frame(_OP_PING, payload, True, mask_key, False, mask=mask)


def build_ws_pong(payload=b"", *, bint mask=False, mask_key=None):
    """A pong frame (at most 125 bytes of payload)."""
    return build_ws_frame(_OP_PONG, payload, True, mask_key, False, mask=mask)
