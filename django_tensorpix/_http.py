"""HTTP details the client needs but callers never see.

Turning a TensorPix error response into the matching exception, comparing URL origins
(so the API key only ever goes to the configured host), stripping presigned URLs of
their signature before they reach a message, and capping upload reads.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from requests_toolbelt import MultipartEncoder

from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    Conflict,
    InsufficientCredits,
    NotFound,
    OutcomeUnknown,
    QuotaExceeded,
    RateLimited,
    TensorPixError,
    TransientError,
)
from django_tensorpix.retry import IDEMPOTENT_METHODS, RETRYABLE_STATUSES, parse_retry_after

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Longest piece of an error body quoted in a message; bodies of proxies can be whole pages.
_MAX_DETAIL_CHARS = 300


def origin(url: str) -> tuple[str, str, int | None]:
    """The (scheme, host, port) of ``url``, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def format_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def without_query(url: str) -> str:
    """``url`` without query string, fragment or credentials: what a message may show.

    Presigned storage URLs carry their signature in the query string; TensorPix re-signs
    them on every read, so the rest of the URL is also what identifies the file.
    """
    parts = urlsplit(url)
    return f"{format_origin(url)}{parts.path}"


def request_label(method: str, url: str) -> str:
    """``"GET /api/jobs/?limit=100"``: the request named the way messages and logs name it."""
    parts = urlsplit(url)
    return f"{method} {parts.path}{'?' + parts.query if parts.query else ''}"


def error_for_response(
    response: requests.Response, *, method: str, label: str, attempts: int = 1
) -> TensorPixError:
    """The exception for a TensorPix error response to ``label`` (e.g. ``"GET /api/jobs/1/"``).

    400 and 402 are told apart by their body: TensorPix uses them both for "not enough
    Credits" and for "storage quota full", besides plain validation errors.
    """
    status = response.status_code
    body = _parse_body(response)
    path = urlsplit(response.url or "").path
    message = f"{label} failed: {status} {describe_body(body) or response.reason or ''}".rstrip()
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429 and retry_after is not None:
        message += f" (TensorPix asked to wait {retry_after:g}s)"
    if attempts > 1:
        message += f" (gave up after {attempts} attempts)"
    details: dict[str, Any] = {"status": status, "body": body, "method": method, "path": path}
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **details)
    if method in IDEMPOTENT_METHODS and status in RETRYABLE_STATUSES:
        return TransientError(message, method=method, path=path)
    if method not in IDEMPOTENT_METHODS and status >= 500:
        return OutcomeUnknown(
            f"{message}; the outcome is unknown: TensorPix may have acted on the request",
            method=method,
            path=path,
        )
    if status in (401, 403):
        return AuthenticationError(message, **details)
    if status == 404:
        return NotFound(message, **details)
    if status == 409:
        return Conflict(message, **details)
    if status in (400, 402):
        text = json.dumps(body).lower() if body is not None else ""
        if "credit" in text:
            return InsufficientCredits(message, **details)
        if "quota" in text or "storage" in text:
            return QuotaExceeded(message, **details)
        if status == 402:
            return InsufficientCredits(message, **details)
    return APIError(message, **details)


def describe_body(body: Any) -> str:
    """A one-line summary of a DRF-style error body (``detail``, ``errors``, ...)."""
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            return _shorten(body["detail"])
        pieces: list[str] = []
        for key, value in body.items():
            if key == "errors" and isinstance(value, dict):
                pieces += [f"{field}: {_join(messages)}" for field, messages in value.items()]
            elif key == "non_field_errors":
                pieces.append(_join(value))
            else:
                pieces.append(f"{key}: {_join(value)}")
        return _shorten("; ".join(piece for piece in pieces if piece))
    if isinstance(body, list):
        return _shorten(_join(body))
    return ""


def _join(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _MAX_DETAIL_CHARS:
        return text
    return text[: _MAX_DETAIL_CHARS - 1] + "…"


def _parse_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class SizedReader:
    """A file object seen as "the bytes from its current position to its end".

    requests-toolbelt needs every part's length up front (for ``Content-Length``) and
    finds it only for real files, ``BytesIO`` (by copying it whole) or objects with a
    length. This gives it one for any seekable file, or a Django ``File``'s ``size``.
    """

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._fileobj = fileobj
        self._remaining = _remaining_length(fileobj)

    @property
    def len(self) -> int:
        return self._remaining

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        if size is None or size < 0 or size > self._remaining:
            size = self._remaining
        data = self._fileobj.read(size)
        if not data:
            raise ValueError(f"the file ended {self._remaining} bytes short of its length")
        self._remaining -= len(data)
        return data


def _remaining_length(fileobj: IO[bytes]) -> int:
    try:
        position = fileobj.tell()
        fileobj.seek(0, os.SEEK_END)
        end = fileobj.tell()
        fileobj.seek(position)
    except (AttributeError, OSError, ValueError):
        size = getattr(fileobj, "size", None)
        if isinstance(size, int):
            return size
        raise TypeError("Uploads need a seekable file or one with a `size`.") from None
    return end - position


class BoundedMultipartBody:
    """A ``MultipartEncoder`` that never hands out more than ``chunk_size`` bytes per read.

    requests sends a body that has ``read`` and a length in pieces (with a
    ``Content-Length``, which every WSGI server understands, unlike chunked uploads),
    and the encoder reads the file only as far as each piece needs. Capping the
    pieces makes ``UPLOAD_CHUNK_SIZE`` the most an upload holds in memory.
    """

    def __init__(self, encoder: MultipartEncoder, chunk_size: int) -> None:
        self._encoder = encoder
        self._chunk_size = chunk_size

    @property
    def content_type(self) -> str:
        return str(self._encoder.content_type)

    @property
    def len(self) -> int:
        return int(self._encoder.len)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._chunk_size:
            size = self._chunk_size
        return bytes(self._encoder.read(size))
