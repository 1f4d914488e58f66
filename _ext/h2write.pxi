# HTTP/2 frame writers (RFC 9113 §6), one per frame type.  Included by core.pyx after
# h2frame.pxi.  Each checks its arguments (ValueError for a value out of range) and returns
# bytes; build_frame_header writes the header alone, for sending a payload without a copy.

cdef uint32_t _stream_id_arg(object stream_id, bint zero) except? 0:
    # zero=True: the frame type lives on stream 0 only; zero=False: never on stream 0.
    if zero:
        if stream_id != 0:
            raise ValueError("this frame type is sent on stream 0, not %r" % (stream_id,))
        return 0
    if not (1 <= stream_id <= 0x7FFFFFFF):
        raise ValueError("stream_id must be within 1..2^31-1, not %r" % (stream_id,))
    return stream_id


cdef uint32_t _u31_arg(object value, str what) except? 0:
    if not (0 <= value <= 0x7FFFFFFF):
        raise ValueError("%s must be within 0..2^31-1, not %r" % (what, value))
    return value


cdef uint32_t _u32_arg(object value, str what) except? 0:
    if not (0 <= value <= 0xFFFFFFFF):
        raise ValueError("%s must be within 0..2^32-1, not %r" % (what, value))
    return value


cdef int _pad_arg(object pad_length) except -2:
    if pad_length is None:
        return -1
    if not (0 <= pad_length <= 255):
        raise ValueError("pad_length must be within 0..255, not %r" % (pad_length,))
    return pad_length


cdef bytes _build(int ftype, int flags, uint32_t stream_id, const unsigned char* prefix,
                  Py_ssize_t prefix_len, object body, int pad_length):
    # Frame = header + [pad length] + prefix + body + [padding].
    cdef Py_buffer view
    if body is None:
        return _build_from(ftype, flags, stream_id, prefix, prefix_len, NULL, 0, pad_length)
    PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
    try:
        return _build_from(ftype, flags, stream_id, prefix, prefix_len,
                           <const unsigned char*>view.buf, view.len, pad_length)
    finally:
        PyBuffer_Release(&view)


cdef bytes _build_from(int ftype, int flags, uint32_t stream_id, const unsigned char* prefix,
                       Py_ssize_t prefix_len, const unsigned char* body, Py_ssize_t body_len,
                       int pad_length):
    cdef Py_ssize_t length = prefix_len + body_len + (pad_length + 1 if pad_length >= 0 else 0)
    cdef bytes out
    cdef unsigned char* w
    if length > _MAX_MAX_FRAME_SIZE:
        raise ValueError("frame payload of %d octets exceeds 2^24-1" % length)
    if pad_length >= 0:
        flags |= _FLAG_PADDED
    out = PyBytes_FromStringAndSize(NULL, _FRAME_HEADER_SIZE + length)
    w = <unsigned char*>PyBytes_AS_STRING(out)
    _put_frame_header(w, <uint32_t>length, ftype, flags, stream_id)
    w += _FRAME_HEADER_SIZE
    if pad_length >= 0:
        w[0] = <unsigned char>pad_length
        w += 1
    if prefix_len:
        memcpy(w, prefix, prefix_len)
        w += prefix_len
    if body_len:
        memcpy(w, body, body_len)
        w += body_len
    if pad_length > 0:
        memset(w, 0, pad_length)
    return out


def build_frame_header(frame_type, flags, stream_id, length):
    """The 9-octet frame header alone, for writing a payload without copying it."""
    cdef unsigned char h[_FRAME_HEADER_SIZE]
    if not (0 <= frame_type <= 255) or not (0 <= flags <= 255):
        raise ValueError("frame_type and flags are octets")
    if not (0 <= length <= _MAX_MAX_FRAME_SIZE):
        raise ValueError("length must be within 0..2^24-1, not %r" % (length,))
    _put_frame_header(h, length, frame_type, flags, _u31_arg(stream_id, "stream_id"))
    return PyBytes_FromStringAndSize(<char*>h, _FRAME_HEADER_SIZE)


def build_data(stream_id, data, *, bint end_stream=False, pad_length=None):
    """A DATA frame (RFC 9113 §6.1)."""
    return _build(_DATA, _FLAG_END_STREAM if end_stream else 0, _stream_id_arg(stream_id, False),
                  NULL, 0, data, _pad_arg(pad_length))


def build_headers(stream_id, block, *, bint end_stream=False, bint end_headers=True,
                  pad_length=None, priority=None, max_frame_size=None):
    """A HEADERS frame (RFC 9113 §6.2).

    ``priority`` is ``(depends_on, weight, exclusive)`` or ``None``.  With ``max_frame_size``,
    a header block that does not fit is split into HEADERS and CONTINUATION frames, and the
    concatenation of them is returned.
    """
    cdef uint32_t sid = _stream_id_arg(stream_id, False)
    cdef int pad = _pad_arg(pad_length)
    cdef int flags = (_FLAG_END_STREAM if end_stream else 0) | (_FLAG_END_HEADERS if end_headers else 0)
    cdef unsigned char prio[5]
    cdef Py_ssize_t prio_len = 0
    cdef Py_ssize_t room, total
    if priority is not None:
        depends_on, weight, exclusive = priority
        _put32(prio, _u31_arg(depends_on, "depends_on") | (0x80000000 if exclusive else 0))
        if not (1 <= weight <= 256):
            raise ValueError("weight must be within 1..256, not %r" % (weight,))
        prio[4] = <unsigned char>(weight - 1)
        prio_len = 5
        flags |= _FLAG_PRIORITY
    if max_frame_size is None:
        return _build(_HEADERS, flags, sid, prio, prio_len, block, pad)
    if not (_MIN_MAX_FRAME_SIZE <= max_frame_size <= _MAX_MAX_FRAME_SIZE):
        raise ValueError("max_frame_size must be within 16384..16777215")
    view = memoryview(block).cast("B")
    total = len(view)
    room = max_frame_size - prio_len - (pad + 1 if pad >= 0 else 0)
    if total <= room:
        return _build(_HEADERS, flags, sid, prio, prio_len, view, pad)
    parts = [_build(_HEADERS, flags & ~_FLAG_END_HEADERS, sid, prio, prio_len, view[:room], pad)]
    pos = room
    while pos < total:
        chunk = view[pos:pos + max_frame_size]
        pos += len(chunk)
        parts.append(_build(_CONTINUATION, _FLAG_END_HEADERS if (pos >= total and end_headers) else 0,
                            sid, NULL, 0, chunk, -1))
    return b"".join(parts)


def build_priority(stream_id, depends_on, weight=16, *, bint exclusive=False):
    """A PRIORITY frame (RFC 9113 §6.3; deprecated signalling, still valid on the wire)."""
    cdef unsigned char p[5]
    _put32(p, _u31_arg(depends_on, "depends_on") | (0x80000000 if exclusive else 0))
    if not (1 <= weight <= 256):
        raise ValueError("weight must be within 1..256, not %r" % (weight,))
    p[4] = <unsigned char>(weight - 1)
    return _build(_PRIORITY, 0, _stream_id_arg(stream_id, False), p, 5, None, -1)


def build_rst_stream(stream_id, error_code):
    """A RST_STREAM frame (RFC 9113 §6.4)."""
    cdef unsigned char p[4]
    _put32(p, _u32_arg(error_code, "error_code"))
    return _build(_RST_STREAM, 0, _stream_id_arg(stream_id, False), p, 4, None, -1)


def build_settings(settings=(), *, bint ack=False):
    """A SETTINGS frame (RFC 9113 §6.5) from ``(id, value)`` pairs or a mapping."""
    cdef bytearray body = bytearray()
    cdef unsigned char p[6]
    cdef uint32_t cid
    if hasattr(settings, "items"):
        settings = settings.items()
    for ident, value in settings:
        if not (0 <= ident <= 0xFFFF):
            raise ValueError("setting id must be within 0..65535, not %r" % (ident,))
        cid = ident
        p[0] = <unsigned char>(cid >> 8)
        p[1] = <unsigned char>cid
        _put32(p + 2, _u32_arg(value, "setting value"))
        body += p[:6]
    if ack and body:
        raise ValueError("a SETTINGS ACK carries no parameters")
    return _build(_SETTINGS, _FLAG_ACK if ack else 0, 0, NULL, 0, body, -1)


def build_push_promise(stream_id, promised_stream_id, block, *, bint end_headers=True,
                       pad_length=None):
    """A PUSH_PROMISE frame (RFC 9113 §6.6)."""
    cdef unsigned char p[4]
    _put32(p, _stream_id_arg(promised_stream_id, False))
    return _build(_PUSH_PROMISE, _FLAG_END_HEADERS if end_headers else 0,
                  _stream_id_arg(stream_id, False), p, 4, block, _pad_arg(pad_length))


def build_ping(opaque_data=b"\0\0\0\0\0\0\0\0", *, bint ack=False):
    """A PING frame (RFC 9113 §6.7) carrying exactly 8 octets."""
    if len(opaque_data) != 8:
        raise ValueError("PING carries exactly 8 octets, not %d" % len(opaque_data))
    return _build(_PING, _FLAG_ACK if ack else 0, 0, NULL, 0, opaque_data, -1)


def build_goaway(last_stream_id, error_code, debug_data=b""):
    """A GOAWAY frame (RFC 9113 §6.8)."""
    cdef unsigned char p[8]
    _put32(p, _u31_arg(last_stream_id, "last_stream_id"))
    _put32(p + 4, _u32_arg(error_code, "error_code"))
    return _build(_GOAWAY, 0, 0, p, 8, debug_data, -1)


def build_window_update(stream_id, increment):
    """A WINDOW_UPDATE frame (RFC 9113 §6.9); stream 0 for the connection window."""
    cdef unsigned char p[4]
    if not (1 <= increment <= _MAX_WINDOW):
        raise ValueError("increment must be within 1..2^31-1, not %r" % (increment,))
    _put32(p, increment)
    return _build(_WINDOW_UPDATE, 0, _u31_arg(stream_id, "stream_id"), p, 4, None, -1)


def build_continuation(stream_id, block, *, bint end_headers=True):
    """A CONTINUATION frame (RFC 9113 §6.10)."""
    return _build(_CONTINUATION, _FLAG_END_HEADERS if end_headers else 0,
                  _stream_id_arg(stream_id, False), NULL, 0, block, -1)
