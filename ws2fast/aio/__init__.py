"""ws2fast.aio: the asyncio client and server (websockets-like).

- :func:`connect` / :class:`Client`: open WebSockets (HTTP/2 when the server allows it).
- :func:`serve`: a server for WebSockets and plain requests over HTTP/2 and HTTP/1.1.
- :class:`WebSocket`: ``send``, ``recv``, ``async for``, ``recv_into``, ``ping``, ``close``.
"""

from .client import Client, connect
from .connection import Connection
from .server import Accept, Reject, Request, Server, serve
from .websocket import WebSocket, WebSocketListener

__all__ = ["connect", "Client", "serve", "Server", "Request", "Accept", "Reject", "WebSocket", "WebSocketListener",
           "Connection"]
