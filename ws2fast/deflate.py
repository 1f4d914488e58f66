"""permessage-deflate (RFC 7692): negotiation and the per-message codec.

Negotiation is pure functions over the ``Sec-WebSocket-Extensions`` values; the codec is a
:class:`PerMessageDeflate` per WebSocket, holding one zlib compressor (Python's zlib module) and
one compiled :class:`~ws2fast._core.Inflater` (zlib's C API, called by the frame parser as a
message completes, so a compressed message costs no Python call on the receive path).  Either
is reset per message when context takeover is off.  Inflation is bounded: it runs in steps
into a buffer that never grows past ``max_message_size``, so a decompression bomb never costs
more memory than the limit.

Window bits 8: zlib cannot *compress* with an 8-bit window (it silently uses 9), so we never
agree to compress with 8; decompressing always uses a 15-bit window, which reads any stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from typing import Any

from ._core import FrameParser, Inflater
from .exceptions import (  # noqa: F401   (ExtensionError and the rest are this module's names too)
    ExtensionError,
    InvalidCompressedData,
    LocalProtocolError,
    MessageTooBig,
    WebSocketProtocolError,
)

__all__ = ["PerMessageDeflate", "DeflateParameters", "parse_extensions", "server_negotiate",
           "client_offer", "client_accept", "server_extensions", "compressed_limit",
           "InvalidCompressedData", "ExtensionError", "MessageTooBig"]

_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_PARAMETERS = ("server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
               "client_max_window_bits")


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """What was agreed, from *our* side's point of view."""

    local_no_context_takeover: bool = False     # we reset our compressor per message
    remote_no_context_takeover: bool = False    # the peer resets its compressor per message
    local_max_window_bits: int = 15             # our compressor's window
    remote_max_window_bits: int = 15            # the peer's compressor's window


def parse_extensions(values: Iterable[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` header values as [(name, [(param, value|None)])]
    (RFC 6455 §9.1; quoted values unquoted)."""
    out: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        for item in _split(value, ","):
            parts = [p.strip() for p in _split(item, ";")]
            if not parts or not parts[0]:
                continue
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                if not part:
                    continue
                name, eq, val = part.partition("=")
                name = name.strip().lower()
                v: str | None = val.strip() if eq else None
                if v is not None and len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                params.append((name, v))
            out.append((parts[0].lower(), params))
    return out


def _split(text: str, sep: str) -> list[str]:
    # split on sep outside double quotes
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _bits(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 2:
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def _check(params: list[tuple[str, str | None]], response: bool) -> dict[str, str | None] | None:
    """The parameters as a dict, or None if the set is invalid (RFC 7692 §7.1)."""
    seen: dict[str, str | None] = {}
    for name, value in params:
        if name not in _PARAMETERS or name in seen:
            return None
        if name.endswith("no_context_takeover"):
            valid = value is None
        elif name == "server_max_window_bits" or response or value is not None:
            valid = _bits(value) is not None        # client_max_window_bits has no value only in an offer
        else:
            valid = True
        if not valid:
            return None
        seen[name] = value
    return seen


def server_negotiate(offers: Iterable[str], *, server_no_context_takeover: bool = False,
                     client_no_context_takeover: bool = False,
                     server_max_window_bits: int = 15) -> tuple[str, DeflateParameters] | None:
    """Server: pick the first acceptable permessage-deflate offer (RFC 7692 §5, §7.1).

    Returns the response's extension value and the agreed parameters, or None (decline: the
    WebSocket goes on uncompressed).  Offers with invalid parameters are skipped.
    """
    for name, params in parse_extensions(offers):
        if name != _NAME:
            continue
        checked = _check(params, response=False)
        if checked is None:
            continue
        response = [_NAME]
        local_window = server_max_window_bits
        if "server_max_window_bits" in checked:
            local_window = min(local_window, int(checked["server_max_window_bits"] or 15))
        if local_window == 8:
            continue                    # zlib cannot compress with an 8-bit window: decline
        local_nct = server_no_context_takeover or "server_no_context_takeover" in checked
        remote_nct = client_no_context_takeover or "client_no_context_takeover" in checked
        if local_nct:
            response.append("server_no_context_takeover")
        if remote_nct:
            response.append("client_no_context_takeover")
        if "server_max_window_bits" in checked or local_window < 15:
            response.append(f"server_max_window_bits={local_window}")
        remote_window = 15
        if "client_max_window_bits" in checked and checked["client_max_window_bits"] is not None:
            remote_window = int(checked["client_max_window_bits"])
        return "; ".join(response), DeflateParameters(local_nct, remote_nct, local_window, remote_window)
    return None


def client_offer(*, client_no_context_takeover: bool = False, server_no_context_takeover: bool = False,
                 server_max_window_bits: int | None = None) -> str:
    """Client: the extension value to offer (with client_max_window_bits, valueless: we accept
    any window the server asks for from 9 to 15)."""
    parts = [_NAME]
    if server_no_context_takeover:
        parts.append("server_no_context_takeover")
    if client_no_context_takeover:
        parts.append("client_no_context_takeover")
    if server_max_window_bits is not None:
        parts.append(f"server_max_window_bits={server_max_window_bits}")
    parts.append("client_max_window_bits")
    return "; ".join(parts)


def client_accept(responses: Iterable[str], offer: str) -> DeflateParameters | None:
    """Client: check the server's extension response against what we offered (RFC 7692 §7.1).

    Returns the agreed parameters, None when the server chose no permessage-deflate, or raises
    :class:`ExtensionError` for an invalid response.
    """
    chosen = parse_extensions(responses)
    if not chosen:
        return None
    if len(chosen) != 1 or chosen[0][0] != _NAME:
        raise ExtensionError(f"the server answered extensions we did not offer: {chosen!r}")
    checked = _check(chosen[0][1], response=True)
    if checked is None:
        raise ExtensionError(f"invalid permessage-deflate response parameters: {chosen[0][1]!r}")
    offered = dict(parse_extensions([offer])[0][1])
    if "client_max_window_bits" in checked and "client_max_window_bits" not in offered:
        raise ExtensionError("client_max_window_bits in the response but not in our offer (RFC 7692 §7.1.2.2)")
    local_window = int(checked.get("client_max_window_bits") or 15)
    if local_window == 8:
        raise ExtensionError("the server asks us to compress with an 8-bit window, which zlib cannot do")
    remote_window = int(checked.get("server_max_window_bits") or 15)
    if "server_max_window_bits" in offered and remote_window > int(offered["server_max_window_bits"] or 15):
        raise ExtensionError("server_max_window_bits above what we asked for")
    return DeflateParameters("client_no_context_takeover" in checked or "client_no_context_takeover" in offered,
                             "server_no_context_takeover" in checked, local_window, remote_window)


def compressed_limit(max_message_size: int | None) -> int | None:
    """The frame parser's limit when messages may be compressed: deflate can expand
    incompressible data a little (5 octets per 16 KiB block and the sync flush), and the exact
    limit is enforced on the inflated size anyway."""
    return None if max_message_size is None else max_message_size + max_message_size // 256 + 1024


def server_extensions(extensions: Iterable[str] | None, offers: Iterable[str],
                      config: Any) -> tuple[str, DeflateParameters | None]:
    """A server's extension response and agreed parameters: negotiated from the client's offers
    when ``extensions`` is None (permessage-deflate if ``config.permessage_deflate``), none when
    it is empty.  Other values are refused: extensions need codecs the connection runs."""
    if extensions is not None:
        if tuple(extensions):
            raise LocalProtocolError("extensions are negotiated by the connection (Config.permessage_deflate); "
                                     "pass None or ()")
        return "", None
    offers = tuple(offers)
    if not config.permessage_deflate or not offers:
        return "", None
    agreed = server_negotiate(offers)
    return ("", None) if agreed is None else agreed


class PerMessageDeflate:
    """The codec of one WebSocket: compress what we send (zlib), inflate what we receive (the
    compiled :class:`~ws2fast._core.Inflater`, bounded by ``max_message_size``)."""

    def __init__(self, parameters: DeflateParameters, *, max_message_size: int | None = None,
                 threshold: int = 128, level: int = 6, memory_level: int = 8,
                 window_bits: int = 15) -> None:
        self.parameters = parameters
        self.max_message_size = max_message_size
        self.threshold = threshold
        self._level, self._memory_level = level, memory_level
        # a compressor may use a smaller window than negotiated (the peer's inflater, sized for
        # the negotiated one, reads it)
        self._window_bits = min(window_bits, parameters.local_max_window_bits)
        self._compressor = self._new_compressor()
        self.inflater = Inflater(max_message_size, no_context_takeover=parameters.remote_no_context_takeover)

    @classmethod
    def from_config(cls, parameters: DeflateParameters, config: Any) -> PerMessageDeflate:
        """The codec for a WebSocket of a connection with this :class:`~ws2fast.Config`."""
        return cls(parameters, max_message_size=config.max_message_size, threshold=config.compression_threshold,
                   level=config.compression_level, memory_level=config.compression_memory_level,
                   window_bits=config.compression_window_bits)

    def frame_parser(self, client_side: bool) -> FrameParser:
        """A frame parser for this WebSocket's incoming frames that delivers compressed messages
        inflated (``max_message_size`` bounds the inflated size; the frames may carry a little
        more than it, as deflate can expand incompressible data)."""
        return FrameParser(client_side, compressed_limit(self.max_message_size), permessage_deflate=True,
                           inflater=self.inflater)

    def _new_compressor(self) -> zlib._Compress:
        return zlib.compressobj(self._level, zlib.DEFLATED, -self._window_bits, self._memory_level)

    def compress(self, data: bytes) -> bytes:
        """One message's payload, compressed (RFC 7692 §7.2.1: the trailing 00 00 FF FF cut)."""
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(_TAIL):
            out = out[:-4]
        if self.parameters.local_no_context_takeover:
            self._compressor = self._new_compressor()
        return out or b"\x00"

    def decompress(self, data: Any) -> bytes:
        """One message's payload, inflated; raises :class:`MessageTooBig` (1009) past the
        limit, before memory grows past it, or :class:`InvalidCompressedData` (1007)."""
        try:
            out = self.inflater.inflate(data)           # bytes: is_text is off
        except WebSocketProtocolError as exc:
            error = MessageTooBig if exc.close_code == MessageTooBig.close_code else InvalidCompressedData
            raise error(str(exc)) from None
        assert isinstance(out, bytes)
        return out
