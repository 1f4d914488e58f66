# WebSocket events (RFC 6455): compiled, immutable, made in C by the parser without a Python
# call.  Included by core.pyx after wsmask.pxi.

@cython.final
@cython.no_gc
@cython.freelist(4096)
cdef class TextMessage:
    """A complete text message; ``data`` is a ``str``.

    ``nbytes`` is its length in UTF-8 bytes; ``wire_size`` the payload octets it took on the
    wire (``nbytes``, or less when permessage-deflate compressed it): what HTTP/2 flow control
    counted, so what ``H2Connection.acknowledge`` takes.  ``stream_id`` is the HTTP/2 stream
    that carried it (0 over HTTP/1.1 or from a standalone parser).
    """
    cdef readonly object data
    cdef readonly Py_ssize_t nbytes
    cdef readonly Py_ssize_t wire_size
    cdef readonly uint32_t stream_id

    def __init__(self, str data, uint32_t stream_id=0, wire_size=None):
        self.data = data
        self.nbytes = len(data.encode("utf-8", "surrogatepass"))
        self.wire_size = self.nbytes if wire_size is None else wire_size
        self.stream_id = stream_id

    def __repr__(self):
        if self.stream_id:
            return "TextMessage(data=%s, stream_id=%d)" % (_short_repr(self.data), self.stream_id)
        return "TextMessage(data=%s)" % _short_repr(self.data)

    def __eq__(self, other):
        return (type(other) is TextMessage and self.data == (<TextMessage>other).data
                and self.stream_id == (<TextMessage>other).stream_id)

    def __hash__(self):
        return hash((TextMessage, self.data, self.stream_id))


@cython.final
@cython.no_gc
@cython.freelist(4096)
cdef class BinaryMessage:
    """A complete binary message.

    Normally ``data`` is a new ``bytes`` object.  When the message was received into a buffer
    registered with :meth:`FrameParser.receive_into`, ``data`` is that buffer, ``into_buffer``
    is true and ``nbytes`` says how many bytes at its start are the message.  ``wire_size`` is
    the payload octets it took on the wire (``nbytes``, or less when permessage-deflate
    compressed it): what HTTP/2 flow control counted, so what ``H2Connection.acknowledge``
    takes.  ``stream_id`` is the HTTP/2 stream that carried it (0 over HTTP/1.1 or from a
    standalone parser).
    """
    cdef readonly object data
    cdef readonly Py_ssize_t nbytes
    cdef readonly Py_ssize_t wire_size
    cdef readonly bint into_buffer
    cdef readonly uint32_t stream_id

    def __init__(self, data, nbytes=None, bint into_buffer=False, uint32_t stream_id=0, wire_size=None):
        self.data = data
        self.nbytes = len(memoryview(data).cast("B")) if nbytes is None else nbytes
        self.wire_size = self.nbytes if wire_size is None else wire_size
        self.into_buffer = into_buffer
        self.stream_id = stream_id

    def __repr__(self):
        sid = (", stream_id=%d" % self.stream_id) if self.stream_id else ""
        if self.into_buffer:
            return "BinaryMessage(%d bytes into %s%s)" % (self.nbytes, type(self.data).__name__, sid)
        return "BinaryMessage(data=%s%s)" % (_short_repr(self.data), sid)

    def __eq__(self, other):
        if type(other) is not BinaryMessage:
            return False
        return (self.nbytes == (<BinaryMessage>other).nbytes
                and self.stream_id == (<BinaryMessage>other).stream_id
                and self.into_buffer == (<BinaryMessage>other).into_buffer
                and bytes(memoryview(self.data).cast("B")[:self.nbytes])
                == bytes(memoryview((<BinaryMessage>other).data).cast("B")[:self.nbytes]))

    def __hash__(self):
        return hash((BinaryMessage, self.nbytes, self.into_buffer))


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class CompressedMessage:
    """A complete message whose first frame had RSV1 set under permessage-deflate (RFC 7692).

    ``data`` is the compressed payload (bytes), ``is_text`` says whether the message is text
    (to be validated as UTF-8 once inflated).  Only parsers made with
    ``permessage_deflate=True`` produce it.
    """
    cdef readonly object data
    cdef readonly bint is_text
    cdef readonly uint32_t stream_id

    def __init__(self, bytes data, bint is_text, uint32_t stream_id=0):
        self.data = data
        self.is_text = is_text
        self.stream_id = stream_id

    @property
    def nbytes(self):
        """The compressed length in bytes."""
        return len(self.data)

    def __repr__(self):
        return "CompressedMessage(data=%s, is_text=%r, stream_id=%d)" % (
            _short_repr(self.data), self.is_text, self.stream_id)

    def __eq__(self, other):
        return (type(other) is CompressedMessage and self.data == (<CompressedMessage>other).data
                and self.is_text == (<CompressedMessage>other).is_text
                and self.stream_id == (<CompressedMessage>other).stream_id)

    def __hash__(self):
        return hash((CompressedMessage, self.data, self.is_text))


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class Ping:
    """A ping (RFC 6455 §5.5.2); answer it with :meth:`response`."""
    cdef readonly bytes payload
    cdef readonly uint32_t stream_id

    def __init__(self, bytes payload=b"", uint32_t stream_id=0):
        self.payload = payload
        self.stream_id = stream_id

    def response(self):
        """The Pong that answers this ping (on the same stream)."""
        return Pong(self.payload, self.stream_id)

    def __repr__(self):
        if self.stream_id:
            return "Ping(payload=%r, stream_id=%d)" % (self.payload, self.stream_id)
        return "Ping(payload=%r)" % (self.payload,)

    def __eq__(self, other):
        return (type(other) is Ping and self.payload == (<Ping>other).payload
                and self.stream_id == (<Ping>other).stream_id)

    def __hash__(self):
        return hash((Ping, self.payload, self.stream_id))


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class Pong:
    """A pong (RFC 6455 §5.5.3)."""
    cdef readonly bytes payload
    cdef readonly uint32_t stream_id

    def __init__(self, bytes payload=b"", uint32_t stream_id=0):
        self.payload = payload
        self.stream_id = stream_id

    def __repr__(self):
        if self.stream_id:
            return "Pong(payload=%r, stream_id=%d)" % (self.payload, self.stream_id)
        return "Pong(payload=%r)" % (self.payload,)

    def __eq__(self, other):
        return (type(other) is Pong and self.payload == (<Pong>other).payload
                and self.stream_id == (<Pong>other).stream_id)

    def __hash__(self):
        return hash((Pong, self.payload, self.stream_id))


@cython.final
@cython.no_gc
cdef class CloseReceived:
    """A close frame (RFC 6455 §5.5.1).  ``code`` is 1005 (NO_STATUS_RCVD) when the frame
    carried none; ``reason`` is a ``str``."""
    cdef readonly int code
    cdef readonly str reason
    cdef readonly uint32_t stream_id

    def __init__(self, int code=1005, str reason="", uint32_t stream_id=0):
        self.code = code
        self.reason = reason
        self.stream_id = stream_id

    def __repr__(self):
        if self.stream_id:
            return "CloseReceived(code=%d, reason=%r, stream_id=%d)" % (self.code, self.reason,
                                                                        self.stream_id)
        return "CloseReceived(code=%d, reason=%r)" % (self.code, self.reason)

    def __eq__(self, other):
        return (type(other) is CloseReceived and self.code == (<CloseReceived>other).code
                and self.reason == (<CloseReceived>other).reason
                and self.stream_id == (<CloseReceived>other).stream_id)

    def __hash__(self):
        return hash((CloseReceived, self.code, self.reason, self.stream_id))


cdef str _short_repr(object data):
    if len(data) <= 40:
        return repr(data)
    return "%r...(%d)" % (data[:32], len(data))


cdef inline bint _valid_close_code(uint32_t code) noexcept nogil:
    # RFC 6455 §7.4 and the IANA registry: 1000-1003, 1007-1014 and 3000-4999 may be sent.
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


def is_valid_close_code(code):
    """Whether ``code`` may appear in a close frame."""
    return 0 <= code <= 0xFFFF and _valid_close_code(code)
