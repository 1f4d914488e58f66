"""Handshakes as pure functions: HTTP/2 header-list validation (RFC 9113 §8.2-§8.3), the
RFC 8441 extended CONNECT and the RFC 6455 opening handshake, and subprotocol negotiation.

Nothing here keeps state or touches a socket; the connections call these once per request.
A header list that breaks a rule raises :class:`MalformedHeaders` (a stream PROTOCOL_ERROR on
HTTP/2, a 400 on HTTP/1.1).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .exceptions import MalformedHeaders  # noqa: F401   (raised here; this module's name too)

__all__ = [
    "MalformedHeaders",
    "Request",
    "validate_request",
    "validate_response",
    "validate_trailers",
    "extended_connect_headers",
    "websocket_offers",
    "accept_key",
    "WEBSOCKET_GUID",
]

#: RFC 6455 §1.3.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Header = tuple[bytes, bytes]

# RFC 9113 §8.2.2: fields that are specific to a connection have no place in HTTP/2.
_CONNECTION_SPECIFIC = frozenset(
    [b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"]
)
_REQUEST_PSEUDO = frozenset([b":method", b":scheme", b":authority", b":path", b":protocol"])
# RFC 9110 §5.1 token characters, lowercase only (RFC 9113 §8.2.1).
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
_STATUS = re.compile(rb"[0-9]{3}\Z")


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request head."""

    method: str
    scheme: str
    authority: str
    path: str
    protocol: str | None        # RFC 8441 :protocol (extended CONNECT)
    headers: tuple[Header, ...]
    content_length: int | None


def _check_fields(
    headers: Iterable[Header], allowed_pseudo: frozenset[bytes]
) -> tuple[dict[bytes, bytes], list[Header]]:
    pseudo: dict[bytes, bytes] = {}
    regular: list[Header] = []
    for name, value in headers:
        if name[:1] == b":":
            if regular:
                raise MalformedHeaders(f"pseudo-header {name!r} after a regular field (RFC 9113 §8.3)")
            if name not in allowed_pseudo:
                raise MalformedHeaders(f"pseudo-header {name!r} is not allowed here (RFC 9113 §8.3)")
            if name in pseudo:
                raise MalformedHeaders(f"pseudo-header {name!r} appears twice (RFC 9113 §8.3)")
            pseudo[name] = value
        else:
            if not _NAME.match(name):
                raise MalformedHeaders(
                    f"field name {name!r} is not a lowercase token (RFC 9113 §8.2.1)"
                )
            if name in _CONNECTION_SPECIFIC:
                raise MalformedHeaders(f"connection-specific field {name!r} (RFC 9113 §8.2.2)")
            if name == b"te" and value.lower() != b"trailers":
                raise MalformedHeaders("te other than 'trailers' (RFC 9113 §8.2.2)")
            regular.append((name, value))
        if _BAD_VALUE.search(value):
            raise MalformedHeaders(
                f"value of {name!r} holds NUL, CR or LF or has leading/trailing whitespace "
                "(RFC 9113 §8.2.1)"
            )
    return pseudo, regular


def _content_length(regular: list[Header]) -> int | None:
    values = {v for n, v in regular if n == b"content-length"}
    if not values:
        return None
    if len(values) > 1:
        raise MalformedHeaders("conflicting content-length values (RFC 9110 §8.6)")
    (value,) = values
    if not value.isdigit() or len(value) > 18:
        raise MalformedHeaders(f"invalid content-length {value!r} (RFC 9110 §8.6)")
    return int(value)


def validate_request(headers: Iterable[Header], *, connect_protocol_enabled: bool) -> Request:
    """Check a request header list (RFC 9113 §8.3.1, RFC 8441 §4) and return its parts.

    ``connect_protocol_enabled``: we advertised SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, so
    ``:protocol`` may appear.
    """
    pseudo, regular = _check_fields(headers, _REQUEST_PSEUDO)
    method = pseudo.get(b":method")
    if method is None:
        raise MalformedHeaders("request without :method (RFC 9113 §8.3.1)")
    protocol = pseudo.get(b":protocol")
    if protocol is not None:
        if not connect_protocol_enabled:
            raise MalformedHeaders(
                ":protocol sent although we did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL "
                "(RFC 8441 §3)"
            )
        if method != b"CONNECT":
            raise MalformedHeaders(":protocol in a request whose :method is not CONNECT (RFC 8441 §4)")
        for name in (b":scheme", b":path", b":authority"):
            if not pseudo.get(name):
                raise MalformedHeaders(f"extended CONNECT without {name.decode()} (RFC 8441 §4)")
    elif method == b"CONNECT":
        # Plain CONNECT (RFC 9113 §8.5): :authority only.
        if b":scheme" in pseudo or b":path" in pseudo:
            raise MalformedHeaders("CONNECT with :scheme or :path but no :protocol (RFC 9113 §8.5)")
        if not pseudo.get(b":authority"):
            raise MalformedHeaders("CONNECT without :authority (RFC 9113 §8.5)")
    else:
        for name in (b":scheme", b":path"):
            if not pseudo.get(name):
                raise MalformedHeaders(f"request without {name.decode()} (RFC 9113 §8.3.1)")
    content_length = _content_length(regular)
    if method == b"CONNECT" and content_length is not None:
        raise MalformedHeaders("content-length in a CONNECT request (RFC 9110 §9.3.6)")
    try:
        return Request(
            method=method.decode("ascii"),
            scheme=pseudo.get(b":scheme", b"").decode("ascii"),
            authority=pseudo.get(b":authority", b"").decode("ascii"),
            path=pseudo.get(b":path", b"").decode("ascii"),
            protocol=None if protocol is None else protocol.decode("ascii"),
            headers=tuple(regular),
            content_length=content_length,
        )
    except UnicodeDecodeError as exc:
        raise MalformedHeaders(f"non-ASCII pseudo-header value: {exc}") from None


def validate_response(headers: Iterable[Header]) -> tuple[int, tuple[Header, ...], int | None]:
    """Check a response header list (RFC 9113 §8.3.2); return (status, fields, content-length)."""
    pseudo, regular = _check_fields(headers, frozenset([b":status"]))
    status = pseudo.get(b":status")
    if status is None or not _STATUS.match(status):
        raise MalformedHeaders(f"response without a 3-digit :status ({status!r}) (RFC 9113 §8.3.2)")
    return int(status), tuple(regular), _content_length(regular)


def validate_trailers(headers: Iterable[Header]) -> tuple[Header, ...]:
    """Check a trailer section: no pseudo-headers (RFC 9113 §8.1)."""
    _, regular = _check_fields(headers, frozenset())
    return tuple(regular)


def _token_list(values: Iterable[bytes]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        for item in value.split(b","):
            item = item.strip()
            if item:
                out.append(item.decode("latin-1"))
    return tuple(out)


def websocket_offers(headers: Iterable[Header]) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """Subprotocol offers, extension offers (raw values) and origin of a WebSocket request."""
    headers = list(headers)
    protocols = _token_list(v for n, v in headers if n == b"sec-websocket-protocol")
    extensions = tuple(
        v.decode("latin-1").strip() for n, v in headers if n == b"sec-websocket-extensions"
    )
    origins = [v for n, v in headers if n == b"origin"]
    origin = origins[0].decode("latin-1") if origins else None
    return protocols, tuple(e for e in extensions if e), origin


def extended_connect_headers(
    path: str,
    authority: str,
    scheme: str = "https",
    subprotocols: Iterable[str] = (),
    extensions: Iterable[str] = (),
    origin: str | None = None,
    headers: Iterable[tuple[bytes | str, bytes | str]] = (),
) -> list[Header]:
    """The header list of an RFC 8441 extended CONNECT for a WebSocket (§4, §5)."""
    if not path.startswith("/") and path != "*":
        raise ValueError(f"path must start with '/', not {path!r}")
    out: list[Header] = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", scheme.encode("ascii")),
        (b":path", path.encode("ascii")),
        (b":authority", authority.encode("ascii")),
        (b"sec-websocket-version", b"13"),
    ]
    subprotocols = list(subprotocols)
    if subprotocols:
        out.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("ascii")))
    extensions = list(extensions)
    if extensions:
        out.append((b"sec-websocket-extensions", ", ".join(extensions).encode("ascii")))
    if origin is not None:
        out.append((b"origin", origin.encode("ascii")))
    out.extend(encode_headers(headers))
    return out


def encode_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> list[Header]:
    """Caller-supplied fields as lowercase byte pairs; names are checked as RFC 9113 §8.2 asks."""
    out: list[Header] = []
    for name, value in headers:
        n = name.encode("ascii") if isinstance(name, str) else bytes(name)
        v = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        n = n.lower()
        if not _NAME.match(n) or n in _CONNECTION_SPECIFIC:
            raise ValueError(f"header name {n!r} cannot be sent over HTTP/2")
        if _BAD_VALUE.search(v):
            raise ValueError(f"header value {v!r} holds NUL/CR/LF or edge whitespace")
        out.append((n, v))
    return out


def accept_key(key: bytes | str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key.strip() + WEBSOCKET_GUID).digest()).decode("ascii")
