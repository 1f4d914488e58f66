# The compiled half of the WebSocket session over a byte stream (ws2fast.websocket
# .WebSocketSession subclasses it): what runs per message over HTTP/1.1.
#
# - receive_data: a batch that holds only data messages (no control frame, no compressed
#   message, no error) is returned as the parser made it; any other batch goes to the Python
#   half (_take / _receive_failed), which answers pings, runs the close handshake and fails the
#   connection with the right close code.
# - send_message of an uncompressed message: one frame, masked on the client side, queued.
# - data_to_send.
# Included by core.pyx after wsbuild.pxi.

cdef str _SESSION_CLOSED = "closed"


cdef class SessionCore:
    """The compiled half of :class:`ws2fast.websocket.WebSocketSession`.

    Not meant to be used alone: the Python session sets its fields and provides the methods
    declared in ``ws2fast._upcalls.SessionCoreUpcalls``.
    """
    cdef public FrameParser parser
    cdef public bint client_side
    cdef public object deflate          # PerMessageDeflate when negotiated, else None
    cdef public str state               # "open", "closing" or "closed"
    cdef public bint _close_sent
    cdef public bint _close_received
    cdef public list _out               # frames to write, in order

    def __cinit__(self, *args, **kwargs):
        self._out = []
        self.state = "open"

    def receive_data(self, data):
        """Feed bytes; return the events they completed."""
        return self._receive_events(data)

    cdef list _receive_events(self, data):
        cdef FrameParser parser = self.parser
        cdef uint64_t controls
        cdef list items
        if self._close_received or self.state == _SESSION_CLOSED:
            return []
        controls = parser._controls
        try:
            items = parser._feed_data(data)
        except WebSocketProtocolError as exc:
            return self._receive_failed(exc)
        if parser._controls == controls:
            return items                    # data messages only: nothing for the session
        return self._take(items)

    def send_message(self, data):
        """Send a message: ``str`` as text, bytes-like as binary."""
        self._send_message(data)

    cdef int _send_message(self, data) except -1:
        cdef const uint8_t* key
        cdef Py_buffer view
        cdef const char* p
        cdef Py_ssize_t n
        if self._close_sent or self.state == _SESSION_CLOSED:
            raise LocalProtocolError("the WebSocket is closing or closed")
        if self.deflate is not None:
            self._send_deflated(data)
            return 0
        key = _next_mask_key() if self.client_side else NULL
        if PyUnicode_Check(data):
            p = PyUnicode_AsUTF8AndSize(data, &n)
            PyList_Append(self._out, _ws_frame_bytes(0x81, <const unsigned char*>p, n, key))
            return 0
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            PyList_Append(self._out, _ws_frame_bytes(0x82, <const unsigned char*>view.buf, view.len, key))
        finally:
            PyBuffer_Release(&view)
        return 0

    def data_to_send(self):
        """The bytes to write, and forget them."""
        return self._take_out()

    cdef bytes _take_out(self):
        cdef list out = self._out
        cdef bytes data
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data
