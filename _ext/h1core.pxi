# The compiled half of ws2fast.H1Connection: its per-message calls (receive_data, data_to_send,
# send_message) and its side of the engine interface (engine.pxi).  Until the WebSocket
# handshake switches the connection, bytes go to the Python connection (h11 parses HTTP/1.1
# once per request); from then on to the WebSocket session, in C.  Included by core.pyx after
# engine.pxi.


cdef class H1Core(EngineCore):
    """The compiled half of :class:`ws2fast.H1Connection` (which subclasses it).

    Not meant to be used alone: the Python connection provides the methods declared in
    ``ws2fast._upcalls.H1CoreUpcalls``.
    """
    # Written by the Python connection, read here:
    cdef public SessionCore session     # the WebSocket session, once the handshake switched
    cdef public bint _failed            # the connection is given up: close the transport
    cdef public list _out               # HTTP/1.1 bytes to write, before the session's

    def __cinit__(self, *args, **kwargs):
        self._out = []

    def receive_data(self, data):
        """Feed bytes; return the events they completed.  ``b""`` means nothing; use
        :meth:`receive_eof` when the peer closed."""
        return self._receive_events(data)

    def data_to_send(self):
        """The bytes to write, and forget them."""
        return self._take_all()

    def send_message(self, uint32_t stream_id, data):
        """Send one WebSocket message (``stream_id`` is 0): ``str`` as text, bytes-like as
        binary."""
        self._send_message(stream_id, data)

    cdef list _receive_events(self, data):
        if self._failed:
            return []
        if self.session is not None:
            return self.session._receive_events(data)
        return self._receive_http(data)

    cdef int _send_message(self, uint32_t stream_id, data) except -1:
        if stream_id != 0 or self.session is None:
            raise LocalProtocolError("no WebSocket is open on this connection")
        return self.session._send_message(data)

    cdef bytes _take_all(self):
        cdef list out = self._out
        cdef bytes data
        if self.session is not None:
            if not out:
                return self.session._take_out()
            out.append(self.session._take_out())     # after the handshake's bytes
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    cdef bint _has_output(self):
        return bool(self._out) or (self.session is not None and bool(self.session._out))

    cdef bint _finished(self):
        if self._failed:
            return True
        if self.session is not None:
            return self.session.state == _SESSION_CLOSED
        return self._http_closed()
