"""Command line: ``python -m ws2fast <command>``.

``info`` (the default) prints the version, how the compiled core was built, and the result of a
quick self-check of the wire codecs; ``serve``, ``connect`` and ``demo`` are in ``ws2fast.cli``.
"""

from __future__ import annotations

import argparse
import platform
import sys

from . import __version__, _core
from .frames import Frame, FrameReader, build_headers, build_settings
from .hpack import Decoder, Encoder


def _self_check() -> list[str]:
    headers = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", b"/chat"),
        (b":authority", b"example.com"),
        (b"sec-websocket-version", b"13"),
    ]
    encoder, decoder = Encoder(), Decoder()
    block = encoder.encode(headers)
    wire = build_settings({0x8: 1}) + build_headers(1, block)
    settings, frame = FrameReader().feed(wire)
    repeat = encoder.encode(headers)
    if not isinstance(settings, Frame) or not isinstance(frame, Frame) or settings.settings != [(0x8, 1)] \
            or decoder.decode(frame.data) != headers \
            or decoder.decode(repeat) != headers:
        raise SystemExit("self-check FAILED: the codecs do not round-trip")
    return [
        f"extended CONNECT header block: {len(block)} octets, {len(repeat)} when repeated",
        "HTTP/2 frames and HPACK: round trip ok",
    ]


def info(_args: argparse.Namespace) -> int:
    print(f"ws2fast {__version__} on Python {platform.python_version()} ({platform.machine()})")
    print(f"compiled core: {_core.__file__} (build profile: {_core.BUILD_PROFILE})")
    for line in _self_check():
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (its commands are in ws2fast.cli)."""
    from .cli import main_commands

    parser = argparse.ArgumentParser(
        prog="python -m ws2fast",
        description="ws2fast: WebSockets over HTTP/2 (RFC 8441) and HTTP/1.1 (RFC 6455). "
                    "With no command, 'info' runs.",
        epilog="'python -m ws2fast COMMAND --help' describes a command and its options.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("info", help="version, build and a self-check of the codecs",
                        description="The version, how the compiled core was built, and a quick "
                                    "self-check of the wire codecs.").set_defaults(run=info)
    main_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        args.run = info
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
