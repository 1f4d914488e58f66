"""The ws2fast exception tree.

.. code-block:: text

    Ws2fastError
    └── ProtocolError                  carries error_code (RFC 9113 §7) and/or close_code (RFC 6455 §7.4)
        ├── LocalProtocolError         the caller misused the API; raised to the caller
        └── RemoteProtocolError        the peer broke the protocol
            ├── FrameError             an HTTP/2 frame broke a frame-level rule (RFC 9113 §4, §6)
            ├── HPACKError             a header block cannot be decoded: COMPRESSION_ERROR (RFC 7541)
            ├── HeaderListTooLarge     a header list exceeded our limit: a stream-level error
            ├── MalformedHeaders       a header list breaks RFC 9113 §8 / RFC 8441 §4: a stream error
            ├── ExtensionError         an extension answer breaks RFC 7692 (close 1010)
            ├── InvalidCompressedData  a compressed message does not inflate (close 1007)
            ├── MessageTooBig          a compressed message inflates past the limit (close 1009)
            └── WebSocketProtocolError a WebSocket frame broke RFC 6455; close_code says how to close
    ├── ConnectionLost                 (asyncio) the connection ended before an answer came;
    │                                  also a ConnectionError
    ├── ConnectionClosed               (asyncio) the WebSocket is closed; code/reason say how
    │   ├── ConnectionClosedOK         ... with 1000 or 1001 (or no status)
    │   └── ConnectionClosedError      ... otherwise
    ├── HandshakeFailed                (asyncio) the server refused the WebSocket, or the
    │                                  connection could not open one (status says which)
    └── InvalidURI                     (asyncio) a URI connect() or Client() cannot use; also a
                                       ValueError

``stream_id`` on a :class:`RemoteProtocolError` is ``None`` for a connection error (answer with
GOAWAY) and the stream's id for a stream error (answer with RST_STREAM).  The codecs raise these;
the sans-IO connections turn them into the right GOAWAY / RST_STREAM / CLOSE plus an event.

Bad *argument values* given to the codecs (a stream id out of range, a padding of 300) raise
:class:`ValueError` or :class:`TypeError`, as any Python function would.
"""

from __future__ import annotations


from .errors import CloseCode, ErrorCode

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "HandshakeFailed",
    "InvalidURI",
    "ConnectionLost",
    "MalformedHeaders",
    "ExtensionError",
    "InvalidCompressedData",
    "MessageTooBig",
    "Ws2fastError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "FrameError",
    "HPACKError",
    "HeaderListTooLarge",
    "WebSocketProtocolError",
]


class Ws2fastError(Exception):
    """Root of every exception ws2fast raises on purpose."""


class ProtocolError(Ws2fastError):
    """A protocol rule was broken.

    ``error_code`` is the HTTP/2 error code (an :class:`~ws2fast.errors.ErrorCode`) that the
    violation calls for, ``close_code`` the WebSocket close code; either may be ``None`` when
    the layer has none.
    """

    error_code: int | None = None
    close_code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        error_code: int | None = None,
        close_code: int | None = None,
    ) -> None:
        super().__init__(message)
        if error_code is not None:
            self.error_code = ErrorCode(error_code) if error_code in _ERROR_CODES else error_code
        if close_code is not None:
            self.close_code = CloseCode(close_code) if close_code in _CLOSE_CODES else close_code


class LocalProtocolError(ProtocolError):
    """The caller used the API in a way the protocol forbids (raised, never sent)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol.

    ``stream_id`` is ``None`` for a connection error and the affected stream for a stream error.
    """

    stream_id: int | None = None

    def __init__(
        self,
        message: str,
        *,
        error_code: int | None = None,
        close_code: int | None = None,
        stream_id: int | None = None,
    ) -> None:
        super().__init__(message, error_code=error_code, close_code=close_code)
        if stream_id is not None:
            self.stream_id = stream_id


class FrameError(RemoteProtocolError):
    """An HTTP/2 frame broke a frame-level rule: a connection error.

    ``error_code`` is PROTOCOL_ERROR, FRAME_SIZE_ERROR or FLOW_CONTROL_ERROR as RFC 9113
    prescribes.  ``frames`` holds the frames that were complete before the bad one in the same
    :meth:`~ws2fast.frames.FrameReader.feed` call, so that nothing the peer sent correctly is lost.
    """

    error_code = ErrorCode.PROTOCOL_ERROR

    def __init__(self, message: str, *, error_code: int | None = None, frames: list | None = None) -> None:
        super().__init__(message, error_code=error_code)
        self.frames = [] if frames is None else frames


class HPACKError(RemoteProtocolError):
    """A header block could not be decoded (RFC 7541): connection error COMPRESSION_ERROR.

    The decoder's state is lost with it, so the decoder refuses any further block.
    """

    error_code = ErrorCode.COMPRESSION_ERROR


class HeaderListTooLarge(RemoteProtocolError):
    """A decoded header list exceeded ``max_header_list_size`` (RFC 9113 §10.5.1).

    This is a *stream* error: the decoder processed the whole block, so its dynamic table is
    still in sync and other streams live on.  A server answers the request with status 431
    (:attr:`status`), or resets the stream with :attr:`error_code`.
    """

    error_code = ErrorCode.PROTOCOL_ERROR
    status = 431

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class WebSocketProtocolError(RemoteProtocolError):
    """A WebSocket frame broke RFC 6455; close the WebSocket with :attr:`close_code`.

    1002 for framing violations, 1007 for invalid UTF-8, 1009 for a message over the size limit.
    ``events`` holds the events that were complete before the violation in the same
    :meth:`~ws2fast.wsframes.FrameParser.feed` call.
    """

    close_code = CloseCode.PROTOCOL_ERROR

    def __init__(self, message: str, *, close_code: int | None = None,
                 events: list | None = None) -> None:
        super().__init__(message, close_code=close_code)
        self.events = [] if events is None else events


class MalformedHeaders(RemoteProtocolError):
    """A header list breaks RFC 9113 §8.1.1 / §8.2 / §8.3 or RFC 8441 §4 (the request or
    response is malformed: a stream error of type PROTOCOL_ERROR)."""

    error_code = ErrorCode.PROTOCOL_ERROR


class ExtensionError(RemoteProtocolError):
    """An extension response that breaks RFC 7692: fail the WebSocket (close code 1010 on the
    client side, which is the side that checks responses)."""

    close_code = CloseCode.MANDATORY_EXTENSION


class InvalidCompressedData(RemoteProtocolError):
    """A compressed message that does not inflate (or inflates to invalid UTF-8): 1007."""

    close_code = CloseCode.INVALID_FRAME_PAYLOAD_DATA


class MessageTooBig(RemoteProtocolError):
    """A compressed message inflates past max_message_size: close with 1009."""

    close_code = CloseCode.MESSAGE_TOO_BIG


class ConnectionLost(Ws2fastError, ConnectionError):
    """(asyncio) The connection ended before what was awaited came: a WebSocket handshake's
    answer, a response, the server's SETTINGS."""


class ConnectionClosed(Ws2fastError):
    """The WebSocket is closed (raised by ``recv``/``send`` of the asyncio layer).

    ``code``/``reason`` are the close code and reason the peer sent (1006 and "" when the
    connection ended without a close handshake).
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """Closed normally: 1000, 1001 or 1005."""


class ConnectionClosedError(ConnectionClosed):
    """Closed abnormally or with an error code."""


def connection_closed(code: int, reason: str = "") -> ConnectionClosed:
    """The right ConnectionClosed subclass for a close code."""
    cls = ConnectionClosedOK if code in (1000, 1001, 1005) else ConnectionClosedError
    return cls(code, reason)


class HandshakeFailed(Ws2fastError):
    """Opening the WebSocket failed: the server answered ``status`` (0 when no answer came,
    or the answer was invalid; the message says why).

    With early messages (``connect(early=True)``): ``undelivered`` lists, in order, the
    messages sent before the answer that the server did not take (it refused the WebSocket, so
    it saw none of them); ``unconfirmed`` those whose fate is unknown because the connection
    was lost before any answer (the server may or may not have seen them).  A message is in
    one of the two lists or was delivered, never both.
    """

    def __init__(self, message: str, status: int = 0, headers: tuple = (), body: bytes = b"",
                 undelivered: tuple = (), unconfirmed: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = body
        self.undelivered = undelivered
        self.unconfirmed = unconfirmed


class InvalidURI(Ws2fastError, ValueError):
    """A URI that :func:`ws2fast.connect` or :class:`ws2fast.Client` cannot use (wrong scheme,
    no host, a bad port)."""


_ERROR_CODES = frozenset(int(c) for c in ErrorCode)
_CLOSE_CODES = frozenset(int(c) for c in CloseCode)
