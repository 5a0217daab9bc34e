"""Presigned storage URLs and the bytes behind them.

TensorPix hands out S3-style presigned URLs that are signed afresh on every read and
expire. The emulator does the same on its own clock, and serves those URLs itself: the
bytes are generated on the fly (a video- or JPEG-like header, then filler), so a large
reported ``size`` never sits in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode

STORAGE_PREFIX = "/storage/"
CHUNK_SIZE = 64 * 1024

MP4_HEADER = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x00\x00\x08free"
JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
JPEG_END = b"\xff\xd9"


class SignatureError(Exception):
    """A storage URL that is malformed, tampered with or expired; ``reason`` says which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class URLSigner:
    """Signs storage keys into URLs and checks them.

    A nonce changes every signature, so two reads of the same object never return the
    same URL (as with TensorPix), while the path stays stable.
    """

    def __init__(self, secret: bytes, ttl: float) -> None:
        self._secret = secret
        self.ttl = ttl
        self._nonces = itertools.count(1)
        self._nonce_lock = threading.Lock()

    def sign(self, base_url: str, key: str, now: float) -> str:
        path = STORAGE_PREFIX + quote(key)
        expires = int(now + self.ttl)
        with self._nonce_lock:
            nonce = next(self._nonces)
        query = {
            "X-Expires": str(expires),
            "X-Nonce": str(nonce),
            "X-Signature": self._signature(path, expires, nonce),
        }
        return f"{base_url}{path}?{urlencode(query)}"

    def verify(self, path: str, query: str, now: float) -> None:
        params = {name: values[-1] for name, values in parse_qs(query).items()}
        try:
            expires = int(params["X-Expires"])
            nonce = int(params["X-Nonce"])
            signature = params["X-Signature"]
        except (KeyError, ValueError):
            raise SignatureError("AccessDenied", "Query-string authentication required.") from None
        expected = self._signature(path, expires, nonce)
        if not hmac.compare_digest(expected, signature):
            raise SignatureError(
                "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        if now > expires:
            raise SignatureError("AccessDenied", "Request has expired.")

    def _signature(self, path: str, expires: int, nonce: int) -> str:
        message = f"{path}\n{expires}\n{nonce}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StoredObject:
    """What a storage key points at: how many bytes, of what kind."""

    size: int
    content_type: str
    seed: int


def iter_object_bytes(obj: StoredObject, start: int = 0) -> Iterator[bytes]:
    """Yield the object's bytes from ``start`` in chunks; always ``size - start`` bytes.

    The content depends only on the object (same bytes on every download), so a resumed
    or repeated download can be compared byte for byte.
    """
    header, trailer = (
        (JPEG_HEADER, JPEG_END) if obj.content_type == "image/jpeg" else (MP4_HEADER, b"")
    )
    filler = random.Random(obj.seed).randbytes(CHUNK_SIZE)
    position = start
    while position < obj.size:
        end = min(position + CHUNK_SIZE, obj.size)
        yield _slice(position, end, obj.size, header, trailer, filler)
        position = end


def _slice(start: int, end: int, size: int, header: bytes, trailer: bytes, filler: bytes) -> bytes:
    chunk = bytearray(_filler_range(filler, start, end))
    for offset, marker in ((0, header), (max(size - len(trailer), 0), trailer)):
        for index, byte in enumerate(marker):
            position = offset + index
            if start <= position < end and position < size:
                chunk[position - start] = byte
    return bytes(chunk)


def _filler_range(filler: bytes, start: int, end: int) -> bytes:
    begin = start % len(filler)
    length = end - start
    if begin + length <= len(filler):
        return filler[begin : begin + length]
    return filler[begin:] + filler[: length - (len(filler) - begin)]
