"""ws2fast.Config: every field documented where help() shows it, with its true default, and
checked when made."""

from __future__ import annotations

import dataclasses
import re

import pytest

import ws2fast
from ws2fast import Config, RateLimit


def _documented_default(name: str) -> str:
    doc = " ".join(Config.__doc__.split())
    match = re.search(rf"``{name}`` \(([^)]*)\)", doc)
    assert match, f"Config.{name} is not described in Config's docstring (help(Config) shows it)"
    return match.group(1)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Config)])
def test_every_field_is_documented_with_its_default(field):
    shown = _documented_default(field)
    default = getattr(Config(), field)
    if isinstance(default, RateLimit):
        assert shown == f"{default.burst}, {default.per_second:g}/s"
    elif field == "clock":
        assert shown == "``time.monotonic``"
    else:
        assert shown == repr(default)


def test_help_shows_the_fields(capsys):
    help(Config)
    text = capsys.readouterr().out
    for name in ("max_concurrent_streams", "lingering_time", "empty_frame_limit"):
        assert name in text


@pytest.mark.parametrize("kwargs", [{"lingering_time": 0}, {"lingering_bytes": -1}, {"close_timeout": None},
                                    {"max_concurrent_streams": 2**32}, {"lingering_time": "2"}])
def test_bad_values_fail_where_they_are_written(kwargs):
    with pytest.raises((ValueError, TypeError)):
        Config(**kwargs)


def test_lingering_can_be_turned_off():
    assert Config(lingering_time=None).lingering_time is None


def test_websocket_public_attributes_are_documented():
    doc = ws2fast.WebSocket.__doc__
    for name in ("path", "subprotocol", "extensions", "headers", "request_headers", "close_code",
                 "close_reason", "stream_id"):
        assert f"``{name}``" in doc, name
    for name in dir(ws2fast.WebSocket):
        if not name.startswith("_"):
            member = getattr(ws2fast.WebSocket, name)
            assert f"``{name}``" in doc or (getattr(member, "__doc__", "") or "").strip(), name
