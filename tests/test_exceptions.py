"""The exception tree, the wire-code enums and the public names."""

from __future__ import annotations

import importlib

import pytest

import ws2fast
from ws2fast import errors, exceptions
from ws2fast.errors import CloseCode, ErrorCode


def test_tree():
    assert issubclass(exceptions.ProtocolError, exceptions.Ws2fastError)
    for cls in (exceptions.LocalProtocolError, exceptions.RemoteProtocolError):
        assert issubclass(cls, exceptions.ProtocolError)
    for cls in (exceptions.FrameError, exceptions.HPACKError, exceptions.HeaderListTooLarge,
                exceptions.WebSocketProtocolError, exceptions.MalformedHeaders, exceptions.ExtensionError,
                exceptions.InvalidCompressedData, exceptions.MessageTooBig):
        assert issubclass(cls, exceptions.RemoteProtocolError)
        assert cls.__name__ in exceptions.__doc__                  # drawn in the tree
    assert issubclass(exceptions.ConnectionLost, ConnectionError)
    assert issubclass(exceptions.ConnectionLost, exceptions.Ws2fastError)
    # the modules that raise them still name them
    from ws2fast import deflate, handshake
    assert handshake.MalformedHeaders is exceptions.MalformedHeaders
    assert deflate.MessageTooBig.close_code == 1009 and deflate.ExtensionError.close_code == 1010
    assert deflate.InvalidCompressedData.close_code == 1007
    assert exceptions.MalformedHeaders("x").error_code == 1


def test_codes_are_carried():
    assert exceptions.HPACKError("x").error_code is ErrorCode.COMPRESSION_ERROR
    assert exceptions.WebSocketProtocolError("x").close_code is CloseCode.PROTOCOL_ERROR
    error = exceptions.WebSocketProtocolError("x", close_code=1009)
    assert error.close_code is CloseCode.MESSAGE_TOO_BIG
    error = exceptions.FrameError("x", error_code=6)
    assert error.error_code is ErrorCode.FRAME_SIZE_ERROR and error.frames == []
    assert exceptions.RemoteProtocolError("x", error_code=0x1234).error_code == 0x1234
    assert exceptions.RemoteProtocolError("x", stream_id=3).stream_id == 3
    assert exceptions.RemoteProtocolError("x").stream_id is None


def test_enum_values_match_the_rfcs():
    assert ErrorCode.HTTP_1_1_REQUIRED == 0xD and ErrorCode.ENHANCE_YOUR_CALM == 0xB
    assert errors.SettingCode.ENABLE_CONNECT_PROTOCOL == 8
    assert errors.FrameType.CONTINUATION == 9
    assert errors.Opcode.PONG == 0xA
    assert CloseCode.BAD_GATEWAY == 1014


@pytest.mark.parametrize("module", ["ws2fast", "ws2fast.errors", "ws2fast.exceptions",
                                    "ws2fast.frames", "ws2fast.hpack", "ws2fast.wsframes"])
def test_all_names_exist(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ lists missing {name}"
    assert len(set(mod.__all__)) == len(mod.__all__)


def test_version():
    assert ws2fast.__version__


def test_the_whole_exception_tree_is_exported_at_the_top_level():
    for name in exceptions.__all__:
        assert getattr(ws2fast, name) is getattr(exceptions, name)
        assert name in ws2fast.__all__
    assert issubclass(ws2fast.InvalidURI, ValueError)
    assert issubclass(ws2fast.ConnectionClosedOK, ws2fast.ConnectionClosed)


@pytest.mark.parametrize("uri", ["ws://", "ws:///path", "wss://:443/", "http://host/", "ws://host:99999/"])
def test_connect_refuses_a_uri_it_cannot_use_before_any_io(uri):
    import asyncio

    async def main():
        with pytest.raises(ValueError) as info:
            await ws2fast.connect(uri)
        assert isinstance(info.value, ws2fast.InvalidURI)

    asyncio.run(main())


def test_the_sans_io_layer_imports_no_event_loop():
    # In a fresh interpreter: the sans-IO modules load without asyncio; the asyncio names of
    # the top level load it on first use.
    import subprocess
    import sys

    code = ("import sys, ws2fast, ws2fast.h2connection, ws2fast.h1connection\n"
            "conn = ws2fast.H2Connection(client_side=False); conn.initiate()\n"
            "assert 'asyncio' not in sys.modules, 'asyncio loaded by the sans-IO layer'\n"
            "assert 'connect' in dir(ws2fast)\n"
            "ws2fast.connect; assert 'asyncio' in sys.modules\n"
            "from ws2fast import serve, WebSocketListener\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr
