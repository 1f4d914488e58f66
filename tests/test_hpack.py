"""ws2fast.hpack: RFC 7541, checked against the public test vectors and the `hpack` package."""

from __future__ import annotations

import tracemalloc

import hpack as oracle
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import load_story, story_files, story_headers
from ws2fast.errors import ErrorCode
from ws2fast.exceptions import HeaderListTooLarge, HPACKError, RemoteProtocolError
from ws2fast.hpack import STATIC_TABLE, Decoder, Encoder, NeverIndexed, huffman_decode, huffman_encode


def hpack_int(value: int, prefix: int, pattern: int = 0) -> bytes:
    """Independent RFC 7541 §5.1 integer encoder for building test blocks."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([pattern | value])
    out = bytearray([pattern | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes, pattern: int = 0x40, prefix: int = 6) -> bytes:
    """A literal field with a literal name, no Huffman."""
    return (hpack_int(0, prefix, pattern) + hpack_int(len(name), 7) + name
            + hpack_int(len(value), 7) + value)


def oracle_decoder(header_table_size: int = 4096) -> oracle.Decoder:
    dec = oracle.Decoder(max_header_list_size=1 << 30)
    dec.max_allowed_table_size = header_table_size
    return dec


# -- test vectors ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "vector_set,story",
    [(vs, story) for vs in ("nghttp2", "nghttp2-change-table-size", "python-hpack")
     for story in story_files(vs)],
)
def test_decodes_vector_story(vector_set, story):
    data = load_story(vector_set, story)
    decoder = Decoder()
    for case in data["cases"]:
        if "header_table_size" in case:
            decoder.header_table_size = case["header_table_size"]
        got = decoder.decode(bytes.fromhex(case["wire"]))
        assert got == story_headers(case), f"{vector_set}/{story} seqno {case['seqno']}"
        assert all(type(field) is tuple for field in got)      # no never-indexed in these sets


def test_vector_sets_are_complete():
    # The vector folders hold what SOURCE.md says; a partial copy must not pass quietly.
    assert len(story_files("nghttp2")) == 32
    assert len(story_files("python-hpack")) == 32
    assert len(story_files("raw-data")) == 32
    assert len(story_files("nghttp2-change-table-size")) == 31


def _raw_stories():
    return [load_story("raw-data", s) for s in story_files("raw-data")]


def test_raw_data_round_trips_and_beats_the_hpack_encoder():
    ours_total = theirs_total = cases = 0
    for story in _raw_stories():
        encoder, decoder, their_decoder = Encoder(), Decoder(), oracle_decoder()
        their_encoder = oracle.Encoder()
        for case in story["cases"]:
            headers = story_headers(case)
            block = encoder.encode(headers)
            assert decoder.decode(block) == headers
            assert [(n, v) for n, v in their_decoder.decode(block, raw=True)] == headers
            ours_total += len(block)
            theirs_total += len(their_encoder.encode(headers, huffman=True))
            cases += 1
    assert cases == 3384
    # Uses the tables and Huffman at least as well as the reference encoder.
    assert ours_total <= theirs_total, (ours_total, theirs_total)


def test_raw_data_with_table_size_changes_round_trips_through_hpack():
    sizes = [4096, 1365, 2730, 0, 4096, 256, 8192, 100]
    for story in _raw_stories()[:8]:
        encoder, decoder, their_decoder = Encoder(), Decoder(), oracle_decoder(8192)
        decoder.header_table_size = 8192
        for i, case in enumerate(story["cases"]):
            if i % 7 == 3:
                new = sizes[(i // 7) % len(sizes)]
                # Lowered and raised again before the next block: two updates (RFC 7541 §4.2).
                encoder.header_table_size = new // 2
                encoder.header_table_size = new
                decoder.header_table_size = new // 2
                decoder.header_table_size = new
            headers = story_headers(case)
            block = encoder.encode(headers)
            assert decoder.decode(block) == headers
            assert [(n, v) for n, v in their_decoder.decode(block, raw=True)] == headers
            assert decoder.table_size == encoder.table_size
            assert decoder.table_size <= decoder.header_table_size


# -- differential, with Hypothesis -----------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from([n for n, _ in STATIC_TABLE] + [b"x-a", b"x-b", b":protocol"]),
    st.binary(min_size=1, max_size=20).map(lambda b: bytes(c | 0x60 for c in b)),
)
VALUES = st.one_of(st.sampled_from([b"", b"GET", b"/", b"websocket", b"200"]), st.binary(max_size=300))
HEADER_LISTS = st.lists(st.lists(st.tuples(NAMES, VALUES), max_size=12), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(HEADER_LISTS, st.booleans())
def test_hpack_package_blocks_decode_identically(header_lists, huffman):
    their_encoder, decoder, their_decoder = oracle.Encoder(), Decoder(), oracle_decoder()
    for headers in header_lists:
        block = their_encoder.encode(headers, huffman=huffman)
        assert decoder.decode(block) == [(bytes(n), bytes(v)) for n, v in their_decoder.decode(block, raw=True)]
        assert decoder.decode  # decoder still usable


@settings(max_examples=300, deadline=None)
@given(HEADER_LISTS, st.booleans(), st.sampled_from([0, 64, 256, 4096]))
def test_our_blocks_decode_identically_with_hpack_package(header_lists, huffman, table_size):
    encoder, decoder, their_decoder = Encoder(table_size, huffman=huffman), Decoder(table_size), \
        oracle_decoder(table_size)
    their_decoder.header_table_size = table_size
    for headers in header_lists:
        block = encoder.encode(headers)
        expected = [(n, v) for n, v in headers]
        assert decoder.decode(block) == expected
        assert [(bytes(n), bytes(v)) for n, v in their_decoder.decode(block, raw=True)] == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_huffman_matches_hpack_package(data):
    assert huffman_encode(data) == HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(data)
    assert huffman_decode(huffman_encode(data)) == data


def test_huffman_every_octet():
    for octet in range(256):
        s = bytes([octet]) * 3
        assert huffman_decode(huffman_encode(s)) == s


def test_static_table_is_rfc7541_appendix_a():
    from hpack.table import HeaderTable
    assert list(STATIC_TABLE) == list(HeaderTable.STATIC_TABLE)


# -- never-indexed fields (RFC 7541 §6.2.3) --------------------------------------------------

def test_never_indexed_is_preserved_both_ways():
    field = NeverIndexed((b"authorization", b"secret"))
    assert field == (b"authorization", b"secret") and isinstance(field, tuple)
    block = Encoder().encode([field, (b"x", b"y")])
    assert block[0] & 0xF0 == 0x10                     # never-indexed literal, indexed name (23)
    decoded = Decoder().decode(block)
    assert decoded == [(b"authorization", b"secret"), (b"x", b"y")]
    assert isinstance(decoded[0], NeverIndexed) and not isinstance(decoded[1], NeverIndexed)
    theirs = oracle_decoder().decode(block, raw=True)
    assert isinstance(theirs[0], oracle.NeverIndexedHeaderTuple)
    # The hpack package's never-indexed output decodes as NeverIndexed here too.
    their_block = oracle.Encoder().encode([(b"cookie", b"a=b", True)])
    assert isinstance(Decoder().decode(their_block)[0], NeverIndexed)


def test_never_indexed_fields_stay_out_of_the_table():
    encoder = Encoder()
    encoder.encode([NeverIndexed((b"x-secret", b"1"))])
    assert encoder.table_size == 0
    decoder = Decoder()
    decoder.decode(literal(b"x-secret", b"1", 0x10, 4))
    assert decoder.table_size == 0


# -- dynamic table ---------------------------------------------------------------------------

def test_dynamic_table_indexing_and_eviction():
    decoder = Decoder(header_table_size=100)
    decoder.decode(b"\x3f\x45")                       # size update to 100 (= 31 + 69)
    assert decoder.table_max_size == 100
    decoder.decode(literal(b"aaaa", b"1111"))           # 40 octets
    decoder.decode(literal(b"bbbb", b"2222"))           # 80 octets
    assert decoder.dynamic_table == [(b"bbbb", b"2222"), (b"aaaa", b"1111")]
    assert decoder.decode(b"\xbe\xbf") == [(b"bbbb", b"2222"), (b"aaaa", b"1111")]
    decoder.decode(literal(b"cccc", b"3333"))           # evicts aaaa
    assert decoder.dynamic_table == [(b"cccc", b"3333"), (b"bbbb", b"2222")]
    assert decoder.table_size == 80
    # An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    decoder.decode(literal(b"d" * 40, b"e" * 40))
    assert decoder.dynamic_table == [] and decoder.table_size == 0


def test_indexed_name_from_dynamic_table():
    decoder = Decoder()
    decoder.decode(literal(b"x-name", b"v1"))
    assert decoder.decode(hpack_int(62, 6, 0x40) + hpack_int(2, 7) + b"v2") == [(b"x-name", b"v2")]


def test_repeated_block_shares_field_objects():
    block = Encoder().encode([(b":method", b"GET"), (b"x-a", b"b")])
    decoder = Decoder()
    decoder.decode(block)
    first = decoder.decode(b"\x82\xbe")
    second = decoder.decode(b"\x82\xbe")
    assert first == second and first[1] is second[1]


# -- negative tests: every error carries COMPRESSION_ERROR and kills the decoder -------------

def _assert_compression_error(block: bytes, decoder: Decoder | None = None, match: str | None = None):
    decoder = decoder or Decoder()
    with pytest.raises(HPACKError, match=match) as info:
        decoder.decode(block)
    assert info.value.error_code == ErrorCode.COMPRESSION_ERROR
    assert isinstance(info.value, RemoteProtocolError)
    # Its table can no longer be trusted: every later block is refused.
    with pytest.raises(HPACKError, match="failed earlier"):
        decoder.decode(b"\x82")


def test_index_zero_is_an_error():
    _assert_compression_error(b"\x80", match="index 0")


@pytest.mark.parametrize("index", [62, 63, 127, 1000])
def test_index_past_the_tables_is_an_error(index):
    _assert_compression_error(hpack_int(index, 7, 0x80), match="outside")


def test_index_at_the_end_of_the_dynamic_table():
    decoder = Decoder()
    decoder.decode(literal(b"a", b"b"))
    assert decoder.decode(hpack_int(62, 7, 0x80)) == [(b"a", b"b")]
    _assert_compression_error(hpack_int(63, 7, 0x80), decoder, match="outside")


def test_literal_name_index_past_the_tables_is_an_error():
    _assert_compression_error(hpack_int(62, 6, 0x40) + b"\x01a", match="outside")


@pytest.mark.parametrize("value", [2**32, 2**32 + 5, 2**63, 2**64 - 1, 2**64, 2**70])
@pytest.mark.parametrize("prefix,pattern", [(7, 0x80), (6, 0x40), (5, 0x20), (4, 0x00)])
def test_huge_integers_are_refused(value, prefix, pattern):
    _assert_compression_error(hpack_int(value, prefix, pattern) + b"\x00" * 16, match="2\\^32-1")


def test_largest_integer_is_read():
    # 2^32-1 itself parses (then fails as an index) - the cap is exactly at the limit.
    _assert_compression_error(hpack_int(2**32 - 1, 7, 0x80), match="outside")


def test_integer_with_too_many_continuation_octets():
    # Value 127 spelled with redundant zero continuation octets.
    _assert_compression_error(b"\xff\x80\x80\x80\x80\x80\x00", match="2\\^32-1")


def test_truncated_integer_is_not_read_past_the_block():
    backing = b"\xff\x80" + b"\x00" * 8         # what follows the block would complete it
    with pytest.raises(HPACKError, match="ends inside an integer"):
        Decoder().decode(memoryview(backing)[:2])


def test_string_longer_than_the_block():
    _assert_compression_error(b"\x40\x05abc", match="runs past the end")
    _assert_compression_error(b"\x40\x01a\x7f\x80\x80\x04" + b"x" * 10, match="runs past the end")


def test_string_length_missing():
    _assert_compression_error(b"\x40", match="ends before a string")


def test_huffman_eos_is_an_error():
    _assert_compression_error(b"\x40\x01a\x84\xff\xff\xff\xff", match="Huffman")


def test_huffman_padding_longer_than_7_bits_is_an_error():
    # 'a' is 00011; '111' pads the first octet, then a whole octet of ones.
    assert huffman_decode(b"\x1f") == b"a"
    _assert_compression_error(b"\x40\x01a\x82\x1f\xff", match="Huffman")


def test_huffman_padding_not_all_ones_is_an_error():
    _assert_compression_error(b"\x40\x01a\x81\x18", match="Huffman")
    with pytest.raises(HPACKError):
        huffman_decode(b"\x18")


def test_size_update_above_the_setting():
    _assert_compression_error(hpack_int(4097, 5, 0x20), match="exceeds header_table_size")
    Decoder().decode(hpack_int(4096, 5, 0x20))       # the limit itself is fine
    Decoder().decode(hpack_int(4095, 5, 0x20))


def test_size_update_after_a_field():
    _assert_compression_error(b"\x82" + hpack_int(100, 5, 0x20), match="after the first field")


def test_size_update_required_after_lowering():
    decoder = Decoder()
    decoder.header_table_size = 1000
    _assert_compression_error(b"\x82", decoder, match="does not begin with a table size update")


def test_size_update_must_signal_the_smallest_value():
    decoder = Decoder()
    decoder.header_table_size = 100
    decoder.header_table_size = 4096
    _assert_compression_error(hpack_int(4096, 5, 0x20), decoder, match="lowered to 100")
    decoder = Decoder()
    decoder.header_table_size = 100
    decoder.header_table_size = 4096
    assert decoder.decode(hpack_int(50, 5, 0x20) + hpack_int(4096, 5, 0x20) + b"\x82") == [
        (b":method", b"GET")]
    assert decoder.table_max_size == 4096


def test_size_update_not_required_when_raised():
    decoder = Decoder()
    decoder.header_table_size = 8192
    assert decoder.decode(b"\x82") == [(b":method", b"GET")]


def test_size_update_to_zero_empties_the_table():
    decoder = Decoder()
    decoder.decode(literal(b"a", b"b"))
    decoder.decode(hpack_int(0, 5, 0x20) + hpack_int(4096, 5, 0x20))
    assert decoder.dynamic_table == []


# -- header list size (RFC 9113 §6.5.2, §10.5.1) ---------------------------------------------

@pytest.mark.parametrize("delta,ok", [(-1, True), (0, True), (1, False)])
def test_header_list_size_limit(delta, ok):
    headers = [(b"x-name", b"v" * 100), (b":method", b"GET")]
    size = sum(len(n) + len(v) + 32 for n, v in headers)
    decoder = Decoder(max_header_list_size=size - delta)     # the list is at limit + delta
    block = Encoder().encode(headers)
    if ok:
        assert decoder.decode(block) == headers
    else:
        with pytest.raises(HeaderListTooLarge) as info:
            decoder.decode(block)
        assert info.value.size == size and info.value.limit == size - 1
        assert info.value.status == 431 and not isinstance(info.value, HPACKError)


def test_header_list_too_large_keeps_the_table_in_sync():
    encoder, decoder = Encoder(), Decoder(max_header_list_size=200)
    big = [(b"x-%d" % i, b"v" * 50) for i in range(5)]       # each field is indexed on the way
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(encoder.encode(big))
    assert decoder.table_size == encoder.table_size
    # A later block that refers to those entries decodes correctly: the stream error
    # did not break the connection's HPACK context.
    assert decoder.decode(encoder.encode(big[3:])) == big[3:]


def test_hpack_bomb_is_stopped_while_decoding():
    decoder = Decoder(max_header_list_size=65536)
    decoder.decode(literal(b"x-bomb", b"b" * 4000))          # one 4 KB entry, index 62
    bomb = b"\xbe" * 65536                                    # 64 KB block -> 256 MB of fields
    tracemalloc.start()
    try:
        with pytest.raises(HeaderListTooLarge) as info:
            decoder.decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.size == 65536 * (6 + 4000 + 32)
    assert peak < 64 * 1024, peak        # fields past the limit were never kept
    assert decoder.decode(b"\xbe") == [(b"x-bomb", b"b" * 4000)]


@pytest.mark.parametrize("value", [-1, 2**32, 2**64])
def test_decoder_arguments_out_of_range(value):
    with pytest.raises(ValueError):
        Decoder(header_table_size=value)
    with pytest.raises(ValueError):
        Decoder(max_header_list_size=value)
    with pytest.raises(ValueError):
        Encoder(header_table_size=value)


# -- encoder ---------------------------------------------------------------------------------

def test_encoder_announces_lowered_size():
    encoder = Encoder()
    encoder.encode([(b"x-a", b"1")])
    encoder.header_table_size = 1000
    block = encoder.encode([(b":method", b"GET")])
    assert block == hpack_int(1000, 5, 0x20) + b"\x82"
    assert encoder.encode([(b":method", b"GET")]) == b"\x82"


def test_encoder_announces_minimum_then_final():
    encoder = Encoder()
    encoder.header_table_size = 10
    encoder.header_table_size = 4096
    block = encoder.encode([(b":method", b"GET")])
    assert block == hpack_int(10, 5, 0x20) + hpack_int(4096, 5, 0x20) + b"\x82"
    decoder = Decoder()
    decoder.header_table_size = 10
    decoder.header_table_size = 4096
    assert decoder.decode(block) == [(b":method", b"GET")]


def test_encoder_huffman_only_when_shorter():
    assert Encoder(huffman=False).encode([(b"x-a", b"aaaa")]) == literal(b"x-a", b"aaaa")
    block = Encoder().encode([(b"x-a", b"aaaa")])
    assert len(block) < len(literal(b"x-a", b"aaaa"))
    # Bytes that Huffman would lengthen go raw.
    block = Encoder().encode([(b"x-a", b"\x00\x01\x02")])
    assert block.endswith(b"\x03\x00\x01\x02")


def test_encoder_skips_indexing_entries_larger_than_the_table():
    encoder = Encoder(header_table_size=100)
    encoder.encode([(b"x-a", b"1")])
    encoder.encode([(b"x-b", b"v" * 200)])
    assert encoder.table_size == len(b"x-a1") + 32
    assert Decoder(100).decode(Encoder(100).encode([(b"x-b", b"v" * 200)])) == [(b"x-b", b"v" * 200)]


def test_encoder_accepts_str_and_mappings():
    block = Encoder().encode({":method": "GET", "x-ü": "wert"})
    assert Decoder().decode(block) == [(b":method", b"GET"), ("x-ü".encode(), b"wert")]
    with pytest.raises(TypeError):
        Encoder().encode([(b"a", 1)])


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=4), st.integers(0, 300))
def test_arbitrary_blocks_raise_only_documented_errors(blocks, table_size):
    decoder = Decoder(header_table_size=table_size, max_header_list_size=200)
    for block in blocks:
        try:
            headers = decoder.decode(block)
        except HPACKError:
            return
        except HeaderListTooLarge:
            continue
        assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)
        assert decoder.table_size <= decoder.table_max_size <= table_size
