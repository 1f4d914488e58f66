# WebSocket masking (RFC 6455 §5.3): declarations of the C kernels (mask.h) and of the UTF-8
# validator (utf8.h), the WebSocket constants the other ws*.pxi files share, the kernels'
# Python face, and mask keys drawn from os.urandom in batches.
#
# Included by core.pyx, before wsevents.pxi, wsframe.pxi (the parser) and wsbuild.pxi.

import os as _os

from cpython.unicode cimport PyUnicode_DecodeUTF8

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)
    const Py_ssize_t PY_SSIZE_T_MAX
    const char* PyUnicode_AsUTF8AndSize(object o, Py_ssize_t* size) except NULL

cdef extern from "mask.h":
    enum:
        WS2FAST_MASK_WORD
        WS2FAST_MASK_SSE2
        WS2FAST_MASK_AVX2
        WS2FAST_MASK_AVX512
        WS2FAST_MASK_KERNELS
    int ws2fast_mask(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t* key,
                     size_t phase) nogil
    int ws2fast_mask_small(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t* key) nogil
    int ws2fast_mask_available(int kernel) nogil
    int ws2fast_mask_select(int kernel) nogil
    int ws2fast_mask_selected() nogil
    int ws2fast_mask_best() nogil

cdef extern from "utf8.h":
    enum:
        WS2FAST_UTF8_ACCEPT
        WS2FAST_UTF8_REJECT
    int ws2fast_utf8_feed(int state, const uint8_t* s, size_t n) nogil

cdef enum:
    _OP_CONTINUATION = 0x0
    _OP_TEXT = 0x1
    _OP_BINARY = 0x2
    _OP_CLOSE = 0x8
    _OP_PING = 0x9
    _OP_PONG = 0xA

cdef enum:
    _CLOSE_PROTOCOL_ERROR = 1002
    _CLOSE_INVALID_DATA = 1007
    _CLOSE_TOO_BIG = 1009
    _CLOSE_INTERNAL_ERROR = 1011

cdef enum:
    _MAX_CONTROL_PAYLOAD = 125
    _MAX_WS_HEADER = 14
    _KEEP_BUFFER = 65536            # a fragment buffer larger than this is freed after use
    _NOGIL_THRESHOLD = 262144       # mask()/unmask_into() release the GIL from this size up

cdef uint8_t _ZERO_KEY[4]
memset(_ZERO_KEY, 0, 4)

#: Names of the mask kernels, by their number in mask.h.
MASK_KERNELS = ("word", "sse2", "avx2", "avx512")
ws2fast_mask_best()                # probe the CPU once, at import


# -- mask kernels -----------------------------------------------------------------------------

def mask_kernels():
    """The mask kernels this CPU can run, in MASK_KERNELS order."""
    return [name for i, name in enumerate(MASK_KERNELS) if ws2fast_mask_available(i)]


def mask_kernel():
    """The kernel in use: the best available one unless :func:`set_mask_kernel` chose another."""
    return MASK_KERNELS[ws2fast_mask_selected()]


def set_mask_kernel(name=None):
    """Use kernel ``name`` from now on (``None``: the one chosen at import).  For tests and
    benchmarks; ValueError if this CPU cannot run it."""
    index = ws2fast_mask_best() if name is None else (MASK_KERNELS.index(name) if name in MASK_KERNELS else -1)
    if index < 0 or ws2fast_mask_select(index) != 0:
        raise ValueError("mask kernel %r is not available here (have: %s)"
                         % (name, ", ".join(mask_kernels())))


if _os.environ.get("WS2FAST_MASK_KERNEL"):
    # Run everything on one kernel (e.g. a whole test suite): WS2FAST_MASK_KERNEL=sse2.
    set_mask_kernel(_os.environ["WS2FAST_MASK_KERNEL"])


cdef int _key_arg(object key, uint8_t* out) except -1:
    cdef Py_buffer view
    cdef Py_ssize_t n
    if type(key) is bytes and PyBytes_GET_SIZE(key) == 4:
        memcpy(out, PyBytes_AS_STRING(key), 4)
        return 0
    PyObject_GetBuffer(key, &view, PyBUF_SIMPLE)
    n = view.len
    if n == 4:
        memcpy(out, view.buf, 4)
    PyBuffer_Release(&view)
    if n != 4:
        raise ValueError("a mask key is 4 bytes, not %d" % n)
    return 0


cdef inline void _mask_maybe_nogil(uint8_t* dst, const uint8_t* src, Py_ssize_t n, const uint8_t* key,
                                   size_t phase) noexcept:
    # Only the standalone functions release the GIL, and only for large inputs: they hold
    # exports of both buffers, so nothing can move under them.
    if n >= _NOGIL_THRESHOLD:
        with nogil:
            ws2fast_mask(dst, src, n, key, phase)
    elif n:
        ws2fast_mask(dst, src, n, key, phase)


def mask(data, key):
    """``data`` XOR the 4-byte ``key`` repeated (RFC 6455 §5.3), as new bytes."""
    cdef uint8_t k[4]
    cdef Py_buffer src
    cdef bytes out
    _key_arg(key, k)
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    try:
        out = PyBytes_FromStringAndSize(NULL, src.len)
        _mask_maybe_nogil(<uint8_t*>PyBytes_AS_STRING(out), <const uint8_t*>src.buf, src.len, k, 0)
    finally:
        PyBuffer_Release(&src)
    return out


def unmask_into(dst, src, key, Py_ssize_t offset=0):
    """Write ``src`` XOR ``key`` into the start of the writable buffer ``dst``; returns len(src).

    ``offset`` is the position of ``src`` within the payload, so a payload that arrived in
    pieces is unmasked piece by piece with the key in the right phase.  ``dst`` may be ``src``
    itself (in place); any other overlap is not supported.
    """
    cdef uint8_t k[4]
    cdef Py_buffer out
    cdef Py_buffer inp
    cdef Py_ssize_t n
    if offset < 0:
        raise ValueError("offset must be >= 0")
    _key_arg(key, k)
    PyObject_GetBuffer(dst, &out, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(src, &inp, PyBUF_SIMPLE)
        try:
            n = inp.len
            if n > out.len:
                raise ValueError("dst holds %d bytes, src has %d" % (out.len, n))
            _mask_maybe_nogil(<uint8_t*>out.buf, <const uint8_t*>inp.buf, n, k, offset & 3)
        finally:
            PyBuffer_Release(&inp)
    finally:
        PyBuffer_Release(&out)
    return n


# -- mask keys --------------------------------------------------------------------------------

cdef bytes _key_pool = b""
cdef Py_ssize_t _key_pos = 0


cdef const uint8_t* _next_mask_key() except NULL:
    # Keys come from os.urandom in batches of 1024 (RFC 6455 §5.3 wants them unpredictable).
    global _key_pool, _key_pos
    if _key_pos + 4 > PyBytes_GET_SIZE(_key_pool):
        _key_pool = _os.urandom(4096)
        _key_pos = 0
    _key_pos += 4
    return <const uint8_t*>PyBytes_AS_STRING(_key_pool) + _key_pos - 4


def _forget_mask_keys():
    # After fork() the child must not reuse the parent's upcoming keys.
    global _key_pool, _key_pos
    _key_pool = b""
    _key_pos = 0


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_forget_mask_keys)


def new_mask_key():
    """A fresh 4-byte mask key (from the os.urandom batch)."""
    return PyBytes_FromStringAndSize(<const char*>_next_mask_key(), 4)
