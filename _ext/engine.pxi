# The engine interface: what an I/O layer needs of a sans-IO connection, whatever its HTTP
# version.  H2Core (h2core.pxi, completed by ws2fast.H2Connection) and H1Core (h1core.pxi,
# completed by ws2fast.H1Connection) implement it; the asyncio layer (aio.pxi) holds an
# EngineCore and never asks which kind it is.  The Python half of the interface (handshakes,
# requests, control frames, timeouts) is ws2fast.engine.Engine.  Included by core.pyx after
# wssession.pxi.


cdef class EngineCore:
    """The compiled part of the engine interface (see :class:`ws2fast.engine.Engine`).

    Every method here is overridden by H2Core and H1Core; these bodies are never reached.
    """
    cdef readonly bint multiplexed      # many WebSockets and requests at once (HTTP/2)

    cdef list _receive_events(self, data):
        """Feed bytes received; the events they completed."""
        raise NotImplementedError

    cdef int _send_message(self, uint32_t stream_id, data) except -1:
        """Queue one WebSocket message (str: text, bytes-like: binary)."""
        raise NotImplementedError

    cdef int _ack(self, uint32_t stream_id, int64_t n) except -1:
        """The application took a message of ``n`` wire octets: its window may go back."""
        return 0

    cdef bytes _take_all(self):
        """Everything there is to write now (b"" if nothing)."""
        raise NotImplementedError

    cdef bint _has_output(self):
        """Whether something waits to be written."""
        return False

    cdef Py_ssize_t _outgoing_buffered(self, uint32_t stream_id):
        """Octets queued on ``stream_id`` that wait for flow-control window."""
        return 0

    cdef bint _finished(self):
        """Nothing more will be written or read: the transport should close."""
        raise NotImplementedError

    cdef bint _has_deadlines(self):
        """Whether next_timeout() may have something (the I/O layer keeps a timer then)."""
        return False

    cdef uint64_t _progress(self):
        """Grows whenever output queued for flow control moves (or is dropped)."""
        return 0
