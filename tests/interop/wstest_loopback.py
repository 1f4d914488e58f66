# Runs wstest (Python 2.7, in the Autobahn virtualenv) with its WebSocket server bound to
# 127.0.0.1: the fuzzingserver binds every interface and has no option to change that.
# Use: .autobahn/bin/python wstest_loopback.py <wstest arguments>  (add --webport 0 for
# fuzzingserver, whose web UI would listen on port 8080 of every interface).
import sys

import autobahn.twisted.websocket as websocket
import autobahntestsuite.fuzzing as fuzzing

_listen = websocket.listenWS


def _listen_on_loopback(factory, contextFactory=None, backlog=50, interface=''):
    return _listen(factory, contextFactory, backlog, interface='127.0.0.1')


fuzzing.listenWS = _listen_on_loopback

from autobahntestsuite.wstest import run  # noqa: E402

sys.exit(run())
