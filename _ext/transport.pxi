# A compiled socket transport for cleartext TCP on asyncio's selector loops (the default;
# Config.native_transport=False, or WS2FAST_NATIVE_TRANSPORT=0, keeps asyncio's).
#
# asyncio's own _SelectorSocketTransport runs its read and write paths in Python: per read,
# _read_ready__get_buffer calls get_buffer(), sock.recv_into() and buffer_updated() through
# several Python frames; per write, transport.write() does the same around sock.send().  On a
# request-response exchange that is most of what separates us from a compiled stack.  This
# transport does the same work in C, with the same public surface and the same rules:
#
# - reads go straight into the protocol's receive buffer (recv(2) into ProtocolCore._view), one
#   read per readiness event, then ProtocolCore._bytes_in;
# - write() sends at once when nothing waits, else appends to one bytearray that the writer
#   callback drains; above the high-water mark the protocol gets pause_writing(), at or below
#   the low-water mark resume_writing() (asyncio's defaults: 64 KiB and a quarter of that);
# - pause_reading()/resume_reading() remove/add the reader;
# - EOF from the peer calls eof_received(): unless it returns true, the transport closes;
#   write_eof() shuts the write side down once the buffer is out;
# - close() stops reading and closes after the buffer is out; abort() drops the buffer;
# - connection_lost() is called exactly once, on a later loop turn, then the socket closes.
#
# It is only for the protocols of this package (ProtocolCore subclasses); the loop's own
# add_reader/add_writer/call_soon are all it uses.  Included by core.pyx after aio.pxi.

from libc.errno cimport errno
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize

cdef extern from "errno.h" nogil:
    int EAGAIN
    int EWOULDBLOCK
    int EINTR

cdef extern from "sys/socket.h" nogil:
    ssize_t _sys_recv "recv"(int fd, void* buf, size_t n, int flags)
    ssize_t _sys_send "send"(int fd, const void* buf, size_t n, int flags)
    int _sys_shutdown "shutdown"(int fd, int how)
    int MSG_NOSIGNAL
    int SHUT_WR

import os as _os

cdef Py_ssize_t _HIGH_WATER = 64 * 1024


cdef inline bint _would_block(int err) nogil:
    return err == EAGAIN or err == EWOULDBLOCK or err == EINTR


cdef class SocketTransport:
    """A transport for one connected, non-blocking TCP socket and one ws2fast protocol.

    Made by the asyncio layer (``ws2fast.aio``) for cleartext connections on a selector loop
    (unless ``Config.native_transport`` is False); the protocol's ``connection_made`` is called by whoever made it,
    then :meth:`start` begins reading.
    """
    cdef object _loop
    cdef object _sock
    cdef object _protocol
    cdef ProtocolCore _core             # the same object as _protocol
    cdef int _fd
    cdef bytearray _out                 # what send(2) did not take yet
    cdef Py_ssize_t _high
    cdef Py_ssize_t _low
    cdef bint _closing                  # close() or abort() was called, or the connection failed
    cdef bint _lost                     # connection_lost() is scheduled (it runs once)
    cdef bint _reading                  # the reader is registered
    cdef bint _want_read                # not paused by the protocol
    cdef bint _started
    cdef bint _writing                  # the writer is registered
    cdef bint _eof                      # write_eof() was called
    cdef bint _at_eof                   # the peer's EOF came: nothing more to read
    cdef bint _protocol_paused          # pause_writing() was called, resume_writing() not yet
    cdef dict _extra

    def __cinit__(self, loop, sock, ProtocolCore protocol):
        self._loop = loop
        self._sock = sock
        self._protocol = protocol
        self._core = protocol
        self._fd = sock.fileno()
        self._out = bytearray()
        self._high = _HIGH_WATER
        self._low = _HIGH_WATER // 4
        self._want_read = True
        self._extra = {"socket": sock}
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            pass
        try:
            self._extra["peername"] = sock.getpeername()
        except OSError:
            pass

    def start(self):
        """Begin reading (after the protocol's ``connection_made``)."""
        self._started = True
        if not self._closing and self._want_read and not self._reading:
            self._reading = True
            self._loop.add_reader(self._fd, self._read_ready)

    # -- reading ---------------------------------------------------------------------------

    def _read_ready(self):
        cdef Py_buffer view
        cdef ssize_t n
        cdef int err
        if self._closing:
            return
        PyObject_GetBuffer(self._core._view, &view, PyBUF_WRITABLE)
        n = _sys_recv(self._fd, view.buf, <size_t>view.len, 0)
        err = errno
        PyBuffer_Release(&view)
        if n > 0:
            try:
                self._core._bytes_in(n)
            except Exception as exc:
                self._fatal(exc, "protocol.buffer_updated() failed")
        elif n == 0:
            self._read_eof()
        elif not _would_block(err):
            self._fatal(OSError(err, _os.strerror(err)), None)

    cdef _read_eof(self):
        self._at_eof = True
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            self._fatal(exc, "protocol.eof_received() failed")
            return
        if not keep_open:
            self.close()

    def pause_reading(self):
        self._want_read = False
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def resume_reading(self):
        self._want_read = True
        if self._started and not self._closing and not self._reading and not self._at_eof:
            self._reading = True
            self._loop.add_reader(self._fd, self._read_ready)

    def is_reading(self):
        return self._reading

    # -- writing ---------------------------------------------------------------------------

    def write(self, data):
        cdef Py_buffer view
        cdef ssize_t n = 0
        cdef int err
        cdef Py_ssize_t have
        if self._eof:
            raise RuntimeError("write() after write_eof()")
        if self._lost:
            return                              # asyncio's transports drop it quietly too
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if view.len == 0:
                return
            if PyByteArray_GET_SIZE(self._out) == 0:
                n = _sys_send(self._fd, view.buf, <size_t>view.len, MSG_NOSIGNAL)
                if n == view.len:
                    return
                if n < 0:
                    err = errno
                    if not _would_block(err):
                        self._fatal(OSError(err, _os.strerror(err)), None)
                        return
                    n = 0
                self._writing = True
                self._loop.add_writer(self._fd, self._write_ready)
            have = PyByteArray_GET_SIZE(self._out)
            PyByteArray_Resize(self._out, have + view.len - n)
            memcpy(PyByteArray_AS_STRING(self._out) + have, <char*>view.buf + n, view.len - n)
        finally:
            PyBuffer_Release(&view)
        if not self._protocol_paused and PyByteArray_GET_SIZE(self._out) > self._high:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as exc:
                self._fatal(exc, "protocol.pause_writing() failed")

    def writelines(self, list_of_data):
        self.write(b"".join(list_of_data))

    def _write_ready(self):
        cdef ssize_t n
        cdef int err
        cdef Py_ssize_t have = PyByteArray_GET_SIZE(self._out)
        if have:
            n = _sys_send(self._fd, PyByteArray_AS_STRING(self._out), <size_t>have, MSG_NOSIGNAL)
            if n < 0:
                err = errno
                if not _would_block(err):
                    self._fatal(OSError(err, _os.strerror(err)), None)
                return
            del self._out[:n]
            have -= n
        if self._protocol_paused and have <= self._low:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:
                self._fatal(exc, "protocol.resume_writing() failed")
                return
        if PyByteArray_GET_SIZE(self._out) == 0:
            if self._writing:
                self._writing = False
                self._loop.remove_writer(self._fd)
            if self._closing:
                self._schedule_lost(None)
            elif self._eof:
                _sys_shutdown(self._fd, SHUT_WR)

    def can_write_eof(self):
        return True

    def write_eof(self):
        if self._closing or self._eof:
            return
        self._eof = True
        if PyByteArray_GET_SIZE(self._out) == 0:
            _sys_shutdown(self._fd, SHUT_WR)

    def get_write_buffer_size(self):
        return PyByteArray_GET_SIZE(self._out)

    def get_write_buffer_limits(self):
        return (self._low, self._high)

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = _HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high = high
        self._low = low

    # -- closing ---------------------------------------------------------------------------

    def is_closing(self):
        return self._closing

    def close(self):
        """Stop reading; close once what was written is out."""
        if self._closing:
            return
        self._closing = True
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        if PyByteArray_GET_SIZE(self._out) == 0:
            self._schedule_lost(None)

    def abort(self):
        """Close now, dropping what was not sent."""
        self._force_close(None)

    cdef _fatal(self, exc, message):
        if message is not None:
            _aio_logger.error("ws2fast: %s", message, exc_info=exc)
        self._force_close(exc)

    cdef _force_close(self, exc):
        if self._lost:
            return
        del self._out[:]
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        self._closing = True
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        self._schedule_lost(exc)

    cdef _schedule_lost(self, exc):
        if not self._lost:
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            self._sock = None
            self._extra.pop("socket", None)
            self._protocol = None               # no cycle with the protocol left to collect
            self._core = None

    # -- the rest of asyncio.Transport -----------------------------------------------------

    def get_extra_info(self, name, default=None):
        return self._extra.get(name, default)

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        raise NotImplementedError("this transport serves one ws2fast protocol")

    def __repr__(self):
        state = "closing" if self._closing else "open"
        return f"<ws2fast SocketTransport fd={self._fd} {state} buffered={len(self._out)}>"
