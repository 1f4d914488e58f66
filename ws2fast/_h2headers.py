"""Header blocks received by an :class:`~ws2fast.H2Connection`: HEADERS and CONTINUATION
assembled and decoded (RFC 9113 §6.2, §6.10), then read as a request, an extended CONNECT
(RFC 8441 §4), a response or trailers."""

from __future__ import annotations

from typing import Any

from . import _core
from ._core import (
    Frame,
    H2Stream,
)
from ._h2state import (
    RESET_BY_US,
    ConnectionFailure,
    HeaderBlock,
    Phase,
    StreamInfo,
)
from .deflate import (
    DeflateParameters,
    ExtensionError,
    client_accept,
)
from .errors import ErrorCode, SettingCode
from .events import (
    InformationalResponseReceived,
    RequestReceived,
    ResponseReceived,
    StreamReset,
    TrailersReceived,
    WebSocketAccepted,
    WebSocketRejected,
    WebSocketRequested,
)
from .exceptions import HeaderListTooLarge, HPACKError
from .handshake import (
    MalformedHeaders,
    validate_request,
    validate_response,
    validate_trailers,
    websocket_offers,
)
from ._h2websockets import _H2WebSockets


class _H2HeaderBlocks(_H2WebSockets):
    def _on_headers(self, frame: Frame, events: list[Any]) -> None:
        data = bytes(frame.data)
        if not data and not frame.end_headers:
            self._charge("empty_frame_limit", "empty frames")
        self._block = HeaderBlock(frame.stream_id, bool(frame.end_stream), data, frame.length,
                                   frame.stream_error)
        self._check_block_size()
        if frame.end_headers:
            self._end_block(events)

    def _on_continuation(self, frame: Frame, events: list[Any]) -> None:
        block = self._block
        if block is None:                   # the reader forbids this; be safe
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        data = bytes(frame.data)
        if not data and not frame.end_headers:
            self._charge("empty_frame_limit", "empty frames")
        block.fragments.append(data)
        block.length += frame.length
        if len(block.fragments) > self.config.max_continuation_frames + 1:
            raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                   f"header block in more than {self.config.max_continuation_frames} "
                                   "CONTINUATION frames (Config.max_continuation_frames)")
        self._check_block_size()
        if frame.end_headers:
            self._end_block(events)

    def _check_block_size(self) -> None:
        assert self._block is not None
        if self._block.length > self.config.max_header_block_size:
            raise ConnectionFailure(
                ErrorCode.ENHANCE_YOUR_CALM,
                f"header block of more than {self.config.max_header_block_size} octets "
                "(Config.max_header_block_size)",
            )

    def _on_push_promise(self, frame: Frame, events: list[Any]) -> None:
        # RFC 9113 §8.4: a client that sent ENABLE_PUSH = 0, and any server, must refuse it.
        raise ConnectionFailure(
            ErrorCode.PROTOCOL_ERROR,
            "PUSH_PROMISE received, but push is disabled (client) or impossible (server) "
            "(RFC 9113 §8.4)",
        )

    def _end_block(self, events: list[Any]) -> None:
        assert self._block is not None
        block, self._block = self._block, None
        sid, end_stream, fragments, stream_error = block.stream_id, block.end_stream, block.fragments, \
            block.stream_error
        too_large: HeaderListTooLarge | None = None
        try:
            headers = self._decoder.decode(b"".join(fragments))
        except HeaderListTooLarge as exc:
            headers, too_large = [], exc
        except HPACKError as exc:
            raise ConnectionFailure(ErrorCode.COMPRESSION_ERROR, str(exc)) from None
        if stream_error:
            self._stream_error(sid, stream_error, "HEADERS priority on itself (RFC 9113 §5.3.1)", events)
            return
        s = self.streams.get(sid)
        if s is None:
            self._headers_for_unknown(sid, headers, end_stream, too_large, events)
            return
        info: StreamInfo = s.info
        if s.remote_ended:
            self._stream_error(sid, ErrorCode.STREAM_CLOSED,
                               f"HEADERS on stream {sid} after its END_STREAM (RFC 9113 §5.1)", events)
            return
        if too_large is not None:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(too_large), events)
            return
        if info.websocket and info.phase == Phase.CONNECTING:
            self._on_connect_response(s, headers, end_stream, events)
        elif info.websocket and info.phase != Phase.REJECTED:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               f"HEADERS on WebSocket stream {sid} after the handshake: only DATA, "
                               "RST_STREAM, WINDOW_UPDATE and PRIORITY may follow (RFC 8441 §5)", events)
        elif info.local and not info.headers_in:
            self._on_response(s, headers, end_stream, events)
        else:
            self._on_trailers(s, headers, end_stream, events)

    def _headers_for_unknown(self, sid: int, headers: list[tuple[bytes, bytes]], end_stream: bool,
                             too_large: HeaderListTooLarge | None, events: list[Any]) -> None:
        if not self._peer_initiated(sid):
            if sid >= self._next_local_id:
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR,
                                       f"HEADERS on idle stream {sid}, which only we may open "
                                       "(RFC 9113 §5.1.1)")
            self._on_closed_stream(sid, "HEADERS", events)
            return
        if sid <= self._highest_peer_id:
            if sid not in self._closed:
                # Never opened, so implicitly closed by a higher id (RFC 9113 §5.1.1).
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR,
                                       f"HEADERS opening stream {sid} after stream "
                                       f"{self._highest_peer_id}: ids must increase (RFC 9113 §5.1.1)")
            self._on_closed_stream(sid, "HEADERS", events)
            return
        if self.client_side:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR,
                                   f"server opened stream {sid} with HEADERS (RFC 9113 §5.1.1)")
        self._highest_peer_id = sid
        if self._goaway_sent is not None:
            self._remember_closed(sid, RESET_BY_US)     # after our GOAWAY: not processed (§6.8)
            self._write(_core.build_rst_stream(sid, ErrorCode.REFUSED_STREAM))
            return
        if self._peer_open >= self.config.max_concurrent_streams:
            self._remember_closed(sid, RESET_BY_US)
            self._write(_core.build_rst_stream(sid, ErrorCode.REFUSED_STREAM))
            events.append(StreamReset(sid, ErrorCode.REFUSED_STREAM, False,
                                      f"more than {self.config.max_concurrent_streams} concurrent "
                                      "streams (RFC 9113 §5.1.2)"))
            return
        if too_large is not None:
            self._respond_and_reset(sid, 431, (), str(too_large), events)
            return
        try:
            request = validate_request(
                headers, connect_protocol_enabled=bool(
                    self.local_settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL)))
        except MalformedHeaders as exc:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(exc), events)
            return
        if request.protocol is not None:
            self._on_extended_connect(sid, request, end_stream, events)
            return
        s = self._new_stream(sid, websocket=False, local=False)
        info = s.info
        info.headers_in = True
        info.method = request.method
        info.content_length = request.content_length
        events.append(RequestReceived(sid, request.method, request.path, request.authority,
                                      request.scheme, request.headers, end_stream))
        if end_stream:
            self._remote_end(s, events)

    def _on_extended_connect(self, sid: int, request: Any, end_stream: bool,
                             events: list[Any]) -> None:
        if request.protocol.lower() != "websocket":
            self._respond_and_reset(sid, 501, (), f"unknown :protocol {request.protocol!r} "
                                    "answered 501 (RFC 8441 §4)", events)
            return
        if end_stream:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               "extended CONNECT with END_STREAM: the WebSocket could never send "
                               "(RFC 8441 §4)", events)
            return
        versions = [v for n, v in request.headers if n == b"sec-websocket-version"]
        if versions != [b"13"]:
            self._respond_and_reset(sid, 426, ((b"sec-websocket-version", b"13"),),
                                    f"sec-websocket-version {versions!r}, not 13 (RFC 6455 §4.4)",
                                    events)
            return
        announced = self.peer_announced_websocket
        status = self.config.unannounced_websocket_status
        if status is not None and not announced:
            self._respond_and_reset(sid, status, (), "the client did not announce "
                                    "SETTINGS_ENABLE_CONNECT_PROTOCOL (Config.unannounced_websocket_status)",
                                    events)
            return
        subprotocols, extensions, origin = websocket_offers(request.headers)
        s = self._new_stream(sid, websocket=True, local=False)
        info = s.info
        info.move(Phase.REQUESTED)
        info.headers_in = True
        info.offered_subprotocols = subprotocols
        info.offered_extensions = extensions
        info.speculative = not self._settings_acked
        events.append(WebSocketRequested(sid, request.path, request.authority, request.scheme,
                                         subprotocols, extensions, origin, request.headers,
                                         info.speculative, announced))

    def _final_response(self, sid: int, headers: list[tuple[bytes, bytes]],
                        events: list[Any]) -> tuple[int, tuple[tuple[bytes, bytes], ...], int | None] | None:
        # A response head: (status, fields, content-length) if final; None when it was
        # malformed (stream reset) or informational (1xx reported; 101 is malformed in HTTP/2).
        try:
            status, fields, content_length = validate_response(headers)
        except MalformedHeaders as exc:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(exc), events)
            return None
        if 100 <= status < 200:
            if status == 101:
                self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                                   "101 Switching Protocols in HTTP/2 (RFC 9113 §8.6)", events)
            else:
                events.append(InformationalResponseReceived(sid, status, fields))
            return None
        return status, fields, content_length

    def _on_connect_response(self, s: H2Stream, headers: list[tuple[bytes, bytes]],
                             end_stream: bool, events: list[Any]) -> None:
        sid = s.stream_id
        info: StreamInfo = s.info
        response = self._final_response(sid, headers, events)
        if response is None:
            return
        status, fields, _ = response
        info.headers_in = True
        if not 200 <= status < 300:
            info.move(Phase.REJECTED)
            info.websocket = False
            events.append(WebSocketRejected(sid, status, fields, undelivered=self._take_early(s),
                                            speculative=info.speculative))
            if end_stream:
                self._remote_end(s, events)
            return
        subprotocols, extensions, _ = websocket_offers(fields)
        problem = ""
        agreed: DeflateParameters | None = None
        if len(subprotocols) > 1 or (subprotocols and subprotocols[0] not in info.offered_subprotocols):
            problem = f"server chose subprotocol {subprotocols!r}, not one we offered"
        elif extensions and not info.offered_extensions:
            problem = f"server chose extensions {extensions!r} although we offered none"
        elif extensions:
            try:
                agreed = client_accept(extensions, ", ".join(info.offered_extensions))
            except ExtensionError as exc:
                problem = str(exc)
        if not problem and end_stream:
            problem = "server ended the stream in its 2xx answer"
        s.sent_early = None                 # a 2xx: the server takes what we sent before it
        if problem:
            s.ws_open = False
            info.move(Phase.DONE)
            self._write(_core.build_rst_stream(sid, ErrorCode.CANCEL))
            self._remove(s, RESET_BY_US)
            events.append(WebSocketRejected(sid, status, fields, problem, speculative=info.speculative))
            return
        self._start_session(s, agreed)
        events.append(WebSocketAccepted(sid, status, subprotocols[0] if subprotocols else None,
                                        extensions, fields))

    def _on_response(self, s: H2Stream, headers: list[tuple[bytes, bytes]], end_stream: bool,
                     events: list[Any]) -> None:
        sid = s.stream_id
        response = self._final_response(sid, headers, events)
        if response is None:
            return
        status, fields, content_length = response
        s.info.headers_in = True
        # A response to HEAD, and a 204 or 304, has no content whatever its content-length
        # says (RFC 9113 §8.1.1, RFC 9110 §6.4.1).
        s.info.content_length = 0 if s.info.method == "HEAD" or status in (204, 304) else content_length
        events.append(ResponseReceived(sid, status, fields, end_stream))
        if end_stream:
            self._remote_end(s, events)

    def _on_trailers(self, s: H2Stream, headers: list[tuple[bytes, bytes]], end_stream: bool,
                     events: list[Any]) -> None:
        sid = s.stream_id
        if not end_stream:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               "a second HEADERS without END_STREAM (RFC 9113 §8.1)", events)
            return
        try:
            fields = validate_trailers(headers)
        except MalformedHeaders as exc:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(exc), events)
            return
        events.append(TrailersReceived(sid, fields))
        self._remote_end(s, events)
