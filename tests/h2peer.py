"""An independent RFC 8441 peer for in-memory interop: the ``h2`` library for HTTP/2 and
wsproto's frame protocol for WebSocket framing -- no ws2fast code on that side.

:func:`pump` moves bytes between a ws2fast connection and an :class:`H2Peer` until both are
quiet, honouring the peer's flow control (h2 neither chunks nor waits for window by itself).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from wsproto.frame_protocol import FrameProtocol, Opcode


class H2Peer:
    """An h2 connection whose streams speak WebSocket frames via wsproto."""

    def __init__(self, client_side: bool, *, enable_connect_protocol: bool = True) -> None:
        self.client_side = client_side
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=client_side, header_encoding=None)
        )
        self.conn.initiate_connection()
        if not client_side and enable_connect_protocol:
            self.conn.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        self.events: list[Any] = []
        self.ws: dict[int, FrameProtocol] = {}
        self.messages: dict[int, list[Any]] = defaultdict(list)     # str / bytes / ("ping", p)...
        self._partial: dict[int, list[Any]] = {}
        self.ended: set[int] = set()
        self.reset: dict[int, int] = {}
        self._outgoing: dict[int, bytearray] = defaultdict(bytearray)
        self._end_after: set[int] = set()
        self.auto_pong = True
        #: server: the status answered to an extended CONNECT (2xx attaches a WebSocket)
        self.connect_status = 200
        self.requests: dict[int, dict[bytes, bytes]] = {}

    # -- WebSocket side ---------------------------------------------------------------------

    def attach(self, stream_id: int) -> None:
        self.ws[stream_id] = FrameProtocol(client=self.client_side, extensions=[])

    def send_ws(self, stream_id: int, data: bytes | bytearray) -> None:
        self._outgoing[stream_id] += data
        self.flush()

    def send_message(self, stream_id: int, message: str | bytes) -> None:
        self.send_ws(stream_id, self.ws[stream_id].send_data(message, fin=True))

    def end(self, stream_id: int) -> None:
        self._end_after.add(stream_id)
        self.flush()

    def flush(self) -> None:
        for sid, buf in list(self._outgoing.items()):
            while buf:
                window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = bytes(buf[:window])
                del buf[:window]
                self.conn.send_data(sid, chunk)
            if not buf:
                del self._outgoing[sid]
        for sid in list(self._end_after):
            if sid not in self._outgoing:
                self.conn.end_stream(sid)
                self._end_after.discard(sid)

    def receive(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            self.events.append(event)
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                proto = self.ws.get(event.stream_id)
                if proto is not None:
                    proto.receive_bytes(event.data)
                    self._read_frames(event.stream_id, proto)
            elif isinstance(event, h2.events.RequestReceived) and not self.client_side:
                fields = dict(event.headers)
                self.requests[event.stream_id] = fields
                if fields.get(b":protocol") is not None:
                    status = str(self.connect_status).encode()
                    self.conn.send_headers(event.stream_id, [(b":status", status)],
                                           end_stream=not 200 <= self.connect_status < 300)
                    if 200 <= self.connect_status < 300:
                        self.attach(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.reset[event.stream_id] = event.error_code
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                self.flush()

    def _read_frames(self, sid: int, proto: FrameProtocol) -> None:
        for frame in proto.received_frames():
            if frame.opcode == Opcode.PING:
                self.messages[sid].append(("ping", bytes(frame.payload)))
                if self.auto_pong:
                    self.send_ws(sid, proto.pong(frame.payload))
            elif frame.opcode == Opcode.PONG:
                self.messages[sid].append(("pong", bytes(frame.payload)))
            elif frame.opcode == Opcode.CLOSE:
                code, reason = frame.payload
                self.messages[sid].append(("close", code, reason))
            else:
                parts = self._partial.setdefault(sid, [])
                parts.append(frame.payload)
                if frame.message_finished:
                    del self._partial[sid]
                    if isinstance(parts[0], str):
                        self.messages[sid].append("".join(parts))
                    else:
                        self.messages[sid].append(b"".join(bytes(p) for p in parts))

    def events_of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def pump(ours: Any, peer: H2Peer, rounds: int = 10000) -> list[Any]:
    """Exchange bytes until neither side has anything to send; returns our events."""
    events: list[Any] = []
    for _ in range(rounds):
        peer.flush()
        a = ours.data_to_send()
        if a:
            peer.receive(a)
        b = peer.conn.data_to_send()
        if b:
            events.extend(ours.receive_data(b))
        if not a and not b:
            return events
    raise AssertionError("pump: the two sides never went quiet")
