"""HTTP details the client needs but callers never see.

Turning a TensorPix error response into the matching exception, comparing URL origins
(so the API key only ever goes to the configured host), stripping presigned URLs of
their signature before they reach a message, and capping upload reads.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from requests_toolbelt import MultipartEncoder
from urllib3.exceptions import DecodeError, LocationParseError, ProtocolError, ReadTimeoutError
from urllib3.util import Url, parse_url

from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    ResponseTooLarge,
    TensorPixError,
    TransientError,
)
from django_tensorpix.retry import IDEMPOTENT_METHODS, RETRYABLE_STATUSES, parse_retry_after

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Longest piece of an error body quoted in a message; bodies of proxies can be whole pages.
_MAX_DETAIL_CHARS = 300
# Deepest JSON nesting accepted in an answer. TensorPix's deepest object (a page of jobs
# with their output's preview URLs) is 5 levels deep; anything near this bound is hostile,
# and deeper values would make every later comparison of the stored JSON recurse as deep.
MAX_JSON_DEPTH = 32
# Bytes asked of the socket per read while a body is read (decoded, at most this much
# comes back per read): small enough that a gzip bomb never inflates far past the cap.
_READ_CHUNK = 64 * 1024
REDACTED = "[redacted]"


class UnsafeURL(ValueError):
    """A URL the client will not send a request to; the message says why, not the URL."""


def parse_http_url(url: str) -> Url:
    """``url`` parsed exactly as requests will connect to it, or :class:`UnsafeURL`.

    requests prepares a URL (IDNA, quoting) and hands it to urllib3, whose ``parse_url``
    finds the host it connects to. Checks run on that same parse, so a URL that two parsers
    read differently (``http://a\\@b/``: host ``a`` for urllib3, ``b`` for ``urlsplit``)
    cannot pass a check for one host and reach another. Anything ambiguous is refused
    outright: backslashes, whitespace or control characters, credentials in the URL, a
    scheme other than http(s), no host.
    """
    refuse_ambiguous(url)
    try:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        parts = parse_url(prepared.url or "")
    except (requests.RequestException, LocationParseError, ValueError):
        raise UnsafeURL("cannot be parsed") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise UnsafeURL("is not an http(s) URL")
    if parts.auth is not None:
        raise UnsafeURL("carries credentials")
    if not parts.host:
        raise UnsafeURL("has no host")
    return parts


def refuse_ambiguous(url: str) -> None:
    """:class:`UnsafeURL` if ``url`` holds a character parsers disagree on.

    Checked on the text as received, before ``urljoin``/``urlsplit``, which silently drop
    some of them (tabs, newlines, leading spaces).
    """
    if any(char == "\\" or char.isspace() or not char.isprintable() for char in url):
        raise UnsafeURL("contains a backslash, whitespace or a control character")


def origin(url: str) -> tuple[str, str, int]:
    """The (scheme, host, port) requests connects to for ``url``; :class:`UnsafeURL` if unsure."""
    parts = parse_http_url(url)
    scheme = str(parts.scheme)
    return scheme, str(parts.host).lower(), parts.port or _DEFAULT_PORTS[scheme]


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
    response: requests.Response,
    *,
    method: str,
    label: str,
    attempts: int = 1,
    secret: str = "",
    now: datetime | None = None,
) -> TensorPixError:
    """The exception for a TensorPix error response to ``label`` (e.g. ``"GET /api/jobs/1/"``).

    Classified by status code alone: TensorPix's documented error bodies (``{"detail": ...}``
    and the validation shape ``{"errors": {...}, "non_field_errors": [...]}``) carry no code
    that says more, and guessing from words (a 400 "Not a storage URL" is no quota error)
    misleads callers. ``secret`` (the API key) is cut out of everything quoted from the
    body: a server may echo the ``Authorization`` header back.
    """
    status = response.status_code
    body = redact(_parse_body(response), secret)
    path = urlsplit(response.url or "").path
    reason = redact(response.reason or "", secret)
    message = f"{label} failed: {status} {describe_body(body) or reason}".rstrip()
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
    if status == 429 and retry_after is not None:
        message += f" (TensorPix asked to wait {retry_after:g}s)"
    if attempts > 1:
        message += f" (gave up after {attempts} attempts)"
    details: dict[str, Any] = {"status": status, "body": body, "method": method, "path": path}
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **details)
    if method in IDEMPOTENT_METHODS and status in RETRYABLE_STATUSES:
        return TransientError(message, method=method, path=path, status=status)
    if method not in IDEMPOTENT_METHODS and status >= 500:
        return OutcomeUnknown(
            f"{message}; the outcome is unknown: TensorPix may have acted on the request",
            method=method,
            path=path,
            status=status,
        )
    error_class = _ERRORS_BY_STATUS.get(status, APIError)
    return error_class(message, **details)


_ERRORS_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    402: InsufficientCredits,
    403: AuthenticationError,
    404: NotFound,
    409: Conflict,
}


def redact(value: Any, secret: str) -> Any:
    """``value`` (a JSON value) with every occurrence of ``secret`` replaced by a marker."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, REDACTED)
    if isinstance(value, dict):
        return {redact(key, secret): redact(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secret) for item in value]
    return value


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
        return loads_bounded(response.content)
    except ValueError:
        return None


def loads_bounded(content: bytes) -> Any:
    """Parse a JSON body no deeper than :data:`MAX_JSON_DEPTH`; ``ValueError`` otherwise.

    ``json.loads`` recurses once per level, so a body nested 100,000 deep would raise
    ``RecursionError`` from the parser itself; the nesting is measured first, on the text.
    """
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (strings skipped)."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        symbol = match.group()
        if symbol in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif symbol in "]}":
            depth -= 1
    return deepest


def read_body(response: requests.Response, *, deadline: float, max_bytes: int, label: str) -> bytes:
    """Read a streamed response's whole (decoded) body, within a time and a size budget.

    ``READ_TIMEOUT`` only bounds each wait on the socket: a server dripping one byte a
    second would never time out, and a small gzip body may unpack to gigabytes. Reads
    are small and return what has arrived (``read1``), so the budgets are checked often.
    The body is kept on the response, so ``response.content`` works afterwards.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise TransientError(
                    f"{label} failed: the response took longer than RESPONSE_TIMEOUT "
                    f"({size} bytes read).",
                    method=label.partition(" ")[0],
                    path=urlsplit(response.url or "").path,
                    status=response.status_code,
                )
            chunk = response.raw.read1(_READ_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(
                    f"{label} returned a body larger than MAX_RESPONSE_BYTES ({max_bytes:,} "
                    "bytes, decoded); refusing to read further.",
                    status=response.status_code,
                )
            chunks.append(chunk)
    except ReadTimeoutError:
        raise TransientError(
            f"{label} failed: timed out waiting for the rest of the response ({size} bytes read).",
            method=label.partition(" ")[0],
            path=urlsplit(response.url or "").path,
            status=response.status_code,
        ) from None
    except (ProtocolError, DecodeError, OSError) as exc:
        raise MalformedResponse(
            f"{label} failed: the response body was cut short or garbled ({type(exc).__name__}).",
            status=response.status_code,
        ) from None
    finally:
        response.close()
    body = b"".join(chunks)
    response._content = body
    return body


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
