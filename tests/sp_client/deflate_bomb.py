"""A SAML answer that is well-formed XML and a raw DEFLATE stream at once, inflating ~1000-fold.

Read as DEFLATE, byte 0 (a line feed) opens a fixed-Huffman block whose codes run on through
``<!--`` and the spaces after it and end with end-of-block. A final dynamic-Huffman block
follows whose only codes are end-of-block and "length 258" (one bit each) and "distance 1" (one
bit): each ``U`` (0b01010101) after its header is four copies of 258 bytes. The header bytes came
from a search over the free choices (literals, code-length code, encoding of the runs) for bytes
that are also valid comment text. Read as XML, all of it is a comment before the root element.
The tests check both readings instead of trusting these constants.
"""

from __future__ import annotations

import zlib

HEADER = b"\n<!--       \nh'Nr$Iru\xe1\x8e\xb7?_\xed\x99\x8f\xc6\x93s&"
# Bit 0 of "T" (0b01010100) is end-of-block of the final block: the stream ends there.
TRAILER = b"T-->"


def deflate_bomb(root: bytes, size: int) -> bytes:
    """``root`` (an XML element) after a comment that makes the whole ``size`` bytes a bomb."""
    padding = size - len(HEADER) - len(TRAILER) - len(root)
    assert padding > 0, "the bomb is larger than asked for"
    return HEADER + b"U" * padding + TRAILER + root


def inflated_size(data: bytes) -> int:
    """How large ``data`` inflates as raw DEFLATE, counted one MiB at a time; raises
    ``zlib.error`` unless it is a complete stream."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = len(inflater.decompress(data, 2**20))
    while inflater.unconsumed_tail and not inflater.eof:
        total += len(inflater.decompress(inflater.unconsumed_tail, 2**20))
    if not inflater.eof:
        raise zlib.error("the DEFLATE stream is incomplete")
    return total
