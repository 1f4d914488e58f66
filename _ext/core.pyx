# cython: language_level=3
"""ws2fast._core: the compiled wire codecs.

One extension module built from this file and the layer files it includes, so that calls
between layers are plain C calls.  The public faces are the Python modules
``ws2fast.frames`` (HTTP/2 frames), ``ws2fast.hpack`` (HPACK) and ``ws2fast.wsframes``
(WebSocket frames), which re-export from here, ``ws2fast.H2Connection`` and ``ws2fast.H1Connection``, whose compiled
halves (``H2Core`` in h2core.pxi, ``H1Core`` in h1core.pxi; both implement the engine interface
of engine.pxi) are here, and the asyncio protocol and WebSocket, whose per-read
path (``ProtocolCore`` and ``WebSocketCore``, in aio.pxi) is here.

Nothing here imports the Python layer except ``ws2fast.errors`` (wire-code enums) and
``ws2fast.exceptions`` (the classes raised).
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cpython.unicode cimport PyUnicode_Check
from cpython.bytes cimport PyBytes_CheckExact
from libc.string cimport memcmp, memcpy, memmove, memset

from ws2fast.errors import ErrorCode, FrameType, SettingCode
from ws2fast.exceptions import (FrameError, HeaderListTooLarge, HPACKError, LocalProtocolError,
                                WebSocketProtocolError)

cdef extern from *:
    """
    #ifndef WS2FAST_BUILD_PROFILE
    #define WS2FAST_BUILD_PROFILE "unknown"
    #endif
    """
    const char* _BUILD_PROFILE "WS2FAST_BUILD_PROFILE"

#: How this module was compiled: "release" or "debug" (setup.py, WS2FAST_BUILD).
BUILD_PROFILE = (<bytes>_BUILD_PROFILE).decode("ascii")

include "h2frame.pxi"
include "h2write.pxi"
include "hpack.pxi"
include "wsmask.pxi"
include "wsevents.pxi"
include "inflate.pxi"
include "wsframe.pxi"
include "wsbuild.pxi"
include "wssession.pxi"
include "engine.pxi"
include "h1core.pxi"
include "h2core.pxi"
include "aio.pxi"
include "transport.pxi"
