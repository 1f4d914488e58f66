"""HPACK header compression (RFC 7541), compiled.

``Decoder(header_table_size=4096, max_header_list_size=65536).decode(block)`` returns a list of
``(name, value)`` bytes tuples; ``Encoder(header_table_size=4096, huffman=True).encode(headers)``
returns a block.  Never-indexed fields are :class:`NeverIndexed` tuples both ways.

>>> from ws2fast.hpack import Decoder, Encoder
>>> block = Encoder().encode([(b":method", b"GET"), (b"user-agent", b"ws2fast")])
>>> Decoder().decode(block)
[(b':method', b'GET'), (b'user-agent', b'ws2fast')]
"""

from ._core import STATIC_TABLE, Decoder, Encoder, NeverIndexed, huffman_decode, huffman_encode

__all__ = ["Decoder", "Encoder", "NeverIndexed", "STATIC_TABLE", "huffman_encode", "huffman_decode"]
