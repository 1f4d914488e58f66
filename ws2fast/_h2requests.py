"""Plain HTTP sends of an :class:`~ws2fast.H2Connection`: requests, responses and bodies."""

from __future__ import annotations

from collections.abc import Iterable

from ._h2state import (
    Phase,
)
from .exceptions import LocalProtocolError
from .handshake import (
    encode_headers,
)
from ._h2headers import _H2HeaderBlocks


class _H2Requests(_H2HeaderBlocks):
    def send_request(
        self,
        method: str,
        path: str,
        authority: str,
        *,
        scheme: str = "https",
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
        body: bytes | None = b"",
        end_stream: bool = True,
    ) -> int:
        """Client: send a plain request; returns its stream id.  With ``end_stream=False`` (or
        ``body=None``) the body follows with :meth:`send_body`."""
        if not self.client_side:
            raise LocalProtocolError("only a client sends requests")
        fields = [(b":method", method.encode("ascii")), (b":scheme", scheme.encode("ascii")),
                  (b":authority", authority.encode("ascii")), (b":path", path.encode("ascii"))]
        fields.extend(encode_headers(headers))
        ends_now = end_stream and not body
        s = self._open_local_stream(fields, end_stream=ends_now, websocket=False)
        s.info.method = method
        if body:
            self._send_data(s.stream_id, bytes(body), end_stream)
        return s.stream_id

    def send_response(
        self,
        stream_id: int,
        status: int,
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
        body: bytes | None = b"",
        *,
        end_stream: bool = True,
    ) -> None:
        """Server: answer a plain request.  With ``end_stream=False`` the body follows with
        :meth:`send_body`.

        The arguments are checked before anything is written, so a refused response leaves the
        request still awaiting one.  The answer to a HEAD request carries no body: ``body`` only
        sets its content-length (RFC 9110 §9.3.2)."""
        if not self.response_pending(stream_id):
            raise LocalProtocolError(f"stream {stream_id} holds no request awaiting a response")
        s = self.streams[stream_id]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599 \
                or status == 101:
            raise LocalProtocolError(f"status {status!r} cannot be sent over HTTP/2")
        fields = [(b":status", str(status).encode())] + encode_headers(headers)
        body = bytes(body) if body else b""
        if s.info.method == "HEAD" and status >= 200:
            if end_stream and not any(n == b"content-length" for n, _ in fields):
                fields.append((b"content-length", str(len(body)).encode()))
            body = b""
        if status >= 200:
            s.info.move(Phase.RESPONDED)
        ends_now = end_stream and not body and status >= 200
        self._write_headers(stream_id, fields, end_stream=ends_now)
        if ends_now:
            s.local_ended = True
        elif body:
            self._send_data(stream_id, body, end_stream)
        self._lingering.add(stream_id)
        self._after_flush()

    def send_continue(self, stream_id: int) -> bool:
        """``Expect: 100-continue`` is answered over HTTP/1.1 only: False (a client waiting for
        it here sends its body when its own wait ends)."""
        return False

    def response_pending(self, stream_id: int) -> bool:
        """Server: whether the plain request on ``stream_id`` awaits its response head."""
        s = self.streams.get(stream_id)
        return s is not None and not s.info.websocket and not s.info.local \
            and s.info.phase != Phase.RESPONDED and not self._terminated

    def send_body(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send (more of) a plain body, under flow control: what does not fit waits.  In the
        answer to a HEAD request the data is dropped (only ``end_stream`` counts)."""
        s = self.streams.get(stream_id)
        if s is None or s.info.websocket:
            raise LocalProtocolError(f"stream {stream_id} is not a plain open stream")
        data = bytes(data)
        if s.info.method == "HEAD" and not s.info.local:
            data = b""
        self._send_data(stream_id, data, end_stream)
        if end_stream:
            self._lingering.add(stream_id)
            self._after_flush()
