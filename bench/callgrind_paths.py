"""Instructions per message on the sans-IO hot paths, for before/after comparisons that noise
cannot hide (a shared machine's timings can).

    python bench/callgrind_paths.py [--n N]

runs each path under ``valgrind --tool=callgrind`` twice, with N and 2N messages, and prints
(instructions(2N) - instructions(N)) / N: the cost of one more message, with start-up, imports
and set-up cancelled out.  Paths (64-byte binary messages, one read per message, as a socket
delivers them when messages come one at a time):

- ``h2-receive``: a server H2Connection with an accepted WebSocket: ``receive_data`` of one DATA
  frame carrying one masked frame, then ``data_to_send`` (the WINDOW_UPDATEs);
- ``h2-echo``: the same, plus ``send_message`` of the message back;
- ``h1-receive`` and ``h1-echo``: the same over an H1Connection after the Upgrade.

Compare two builds by running the script with each on ``PYTHONPATH`` (both builds in place):
``PYTHONPATH=/path/to/base python bench/callgrind_paths.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

PATHS = ("h2-receive", "h2-echo", "h1-receive", "h1-echo")
SIZE = 64


def _h2_server():
    from ws2fast import Config, H2Connection
    from ws2fast.frames import PREFACE, build_data, build_headers, build_settings, build_window_update
    from ws2fast.hpack import Encoder
    from ws2fast.wsframes import build_frame

    connect = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
               (b":path", b"/"), (b":authority", b"bench.test"), (b"sec-websocket-version", b"13")]
    conn = H2Connection(client_side=False, config=Config(connection_window_size=1 << 30,
                                                         initial_window_size=1 << 30))
    conn.initiate()
    conn.receive_data(PREFACE + build_settings({4: (1 << 31) - 1}) + build_settings(ack=True)
                      + build_window_update(0, (1 << 31) - 1 - 65535)
                      + build_headers(1, Encoder().encode(connect)))
    conn.accept_websocket(1)
    conn.data_to_send()
    message = build_data(1, build_frame(2, bytes(range(SIZE)), mask_key=b"\x9a\x01\x7e\x33"))
    return conn, message


def _h1_server():
    from ws2fast import H1Connection
    from ws2fast.wsframes import build_frame

    conn = H1Connection(client_side=False)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: bench.test\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
    conn.accept_websocket(0)
    conn.data_to_send()
    return conn, build_frame(2, bytes(range(SIZE)), mask_key=b"\x9a\x01\x7e\x33")


def run(path: str, n: int) -> None:
    conn, message = (_h2_server if path.startswith("h2") else _h1_server)()
    receive, take = conn.receive_data, conn.data_to_send
    if path.endswith("echo"):
        send = conn.send_message
        for _ in range(n):
            for event in receive(message):
                send(event.stream_id, event.data)
            take()
    else:
        count = 0
        for _ in range(n):
            count += len(receive(message))
            take()
        assert count == n, count


def _instructions(path: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--run", path, "--n", str(n)],
                       check=True, capture_output=True)
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--run", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", default=list(PATHS))
    args = parser.parse_args()
    if args.run:
        run(args.run, args.n)
        return
    import ws2fast
    print(f"# ws2fast from {os.path.dirname(ws2fast.__file__)}, {SIZE}-byte messages, n={args.n}")
    for path in args.paths:
        one = _instructions(path, args.n)
        two = _instructions(path, 2 * args.n)
        print(f"{path:12} {(two - one) / args.n:10.1f} instructions/message")


if __name__ == "__main__":
    main()
