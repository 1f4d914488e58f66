"""Wire-code enums: the numbers that travel in frames, with their RFC names.

These are plain :class:`enum.IntEnum` classes, so a code read off the wire compares equal to
its enum member, and unknown codes (which the RFCs say to accept) can still be carried as ints.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCode", "FrameType", "SettingCode", "Opcode", "CloseCode"]


class ErrorCode(enum.IntEnum):
    """HTTP/2 error codes (RFC 9113 §7), used in RST_STREAM and GOAWAY."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class FrameType(enum.IntEnum):
    """HTTP/2 frame types (RFC 9113 §6)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class SettingCode(enum.IntEnum):
    """HTTP/2 SETTINGS parameters (RFC 9113 §6.5.2, RFC 8441 §3, RFC 9218 §2.1)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8
    NO_RFC7540_PRIORITIES = 0x9


class Opcode(enum.IntEnum):
    """WebSocket opcodes (RFC 6455 §5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """WebSocket close codes (RFC 6455 §7.4.1 and the IANA registry).

    ``NO_STATUS_RCVD`` (1005), ``ABNORMAL_CLOSURE`` (1006) and ``TLS_HANDSHAKE`` (1015) are
    reported locally and never sent in a close frame.
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015
