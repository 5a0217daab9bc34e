"""Request bodies: JSON, form-encoded and streamed multipart.

Multipart is parsed incrementally so an uploaded video is counted (size, SHA-256) and
never held in memory. Both ``Content-Length`` and chunked transfer encoding are read,
since ``requests`` sends a generator body chunked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import Protocol
from urllib.parse import parse_qs

from .validation import RequestData, ValidationFailed

READ_SIZE = 64 * 1024
MAX_FORM_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024


class ByteStream(Protocol):
    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


class UnsupportedMediaType(Exception):
    """The body's content type is not one the endpoint parses (415)."""


class BodyReader:
    """Reads exactly the request body, whichever framing the client used."""

    def __init__(self, stream: ByteStream, content_length: int | None, chunked: bool) -> None:
        self._stream = stream
        self._remaining = content_length or 0
        self._chunked = chunked
        self._chunk_left = 0
        self._finished = not chunked and not content_length

    @property
    def finished(self) -> bool:
        return self._finished

    def read(self, size: int = READ_SIZE) -> bytes:
        if self._finished:
            return b""
        if self._chunked:
            return self._read_chunked(size)
        data = self._stream.read(min(size, self._remaining))
        if not data:
            raise ValidationFailed(non_field_errors=["The request body ended early."])
        self._remaining -= len(data)
        self._finished = self._remaining == 0
        return data

    def _read_chunked(self, size: int) -> bytes:
        if self._chunk_left == 0:
            line = self._stream.readline(1024).strip()
            try:
                self._chunk_left = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ValidationFailed(non_field_errors=["Malformed chunked body."]) from None
            if self._chunk_left == 0:
                while self._stream.readline(1024).strip():
                    pass
                self._finished = True
                return b""
        data = self._stream.read(min(size, self._chunk_left))
        if not data:
            raise ValidationFailed(non_field_errors=["The request body ended early."])
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._stream.readline(1024)
        return data

    def read_all(self, limit: int = MAX_FORM_BYTES) -> bytes:
        parts: list[bytes] = []
        total = 0
        while not self._finished:
            data = self.read()
            total += len(data)
            if total > limit:
                raise ValidationFailed(non_field_errors=["The request body is too large."])
            parts.append(data)
        return b"".join(parts)

    def drain(self) -> None:
        while not self._finished:
            self.read()


@dataclass(frozen=True)
class UploadedFile:
    """What the emulator keeps of an uploaded file: never its bytes."""

    field_name: str
    filename: str
    content_type: str
    size: int
    sha256: str


def parse_body(content_type: str, reader: BodyReader) -> RequestData:
    """Parse a JSON, form-encoded or multipart (no files kept) body into ``RequestData``."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        raw = reader.read_all()
        try:
            value = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValidationFailed(non_field_errors=[f"JSON parse error - {error}"]) from None
        if not isinstance(value, dict):
            raise ValidationFailed(
                non_field_errors=[
                    f"Invalid data. Expected a dictionary, but got {type(value).__name__}."
                ]
            )
        return RequestData(value, is_form=False)
    if media_type == "application/x-www-form-urlencoded":
        text = reader.read_all().decode("utf-8", errors="replace")
        return RequestData(parse_qs(text, keep_blank_values=True), is_form=True)
    if media_type == "multipart/form-data":
        fields, _ = parse_multipart(content_type, reader)
        return RequestData(fields, is_form=True)
    raise UnsupportedMediaType(media_type or "(none)")


def parse_multipart(
    content_type: str, reader: BodyReader
) -> tuple[dict[str, list[str]], list[UploadedFile]]:
    """Stream a multipart body: form fields as text, file parts only counted and hashed."""
    boundary = _boundary(content_type)
    parser = _MultipartStream(reader, boundary)
    fields: dict[str, list[str]] = {}
    files: list[UploadedFile] = []
    for headers in parser.parts():
        disposition = headers.get_param("name", header="content-disposition")
        name = str(disposition) if disposition else ""
        filename = headers.get_filename()
        if filename is None:
            value = b"".join(parser.body(limit=MAX_FORM_BYTES))
            fields.setdefault(name, []).append(value.decode("utf-8", errors="replace"))
            continue
        digest = hashlib.sha256()
        size = 0
        for chunk in parser.body(limit=None):
            size += len(chunk)
            digest.update(chunk)
        content_type_of_part = headers.get_content_type()
        files.append(UploadedFile(name, filename, content_type_of_part, size, digest.hexdigest()))
    return fields, files


def _boundary(content_type: str) -> bytes:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        raise ValidationFailed(non_field_errors=["Multipart form parse error - Invalid boundary."])
    return boundary.encode("latin-1")


class _MultipartStream:
    """An incremental multipart/form-data tokenizer over a :class:`BodyReader`."""

    def __init__(self, reader: BodyReader, boundary: bytes) -> None:
        self._reader = reader
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray(b"\r\n")
        self._done = False

    def _fill(self) -> bool:
        data = self._reader.read()
        self._buffer += data
        return bool(data)

    def parts(self) -> Iterator[Message]:
        self._skip_to_delimiter()
        while not self._done:
            while len(self._buffer) < 2 and self._fill():
                pass
            ending = bytes(self._buffer[:2])
            if ending == b"--":
                self._done = True
                self._reader.drain()
                return
            if ending != b"\r\n":
                raise _malformed()
            del self._buffer[:2]
            yield self._headers()

    def _skip_to_delimiter(self) -> None:
        while True:
            index = self._buffer.find(self._delimiter)
            if index >= 0:
                del self._buffer[: index + len(self._delimiter)]
                return
            keep = len(self._delimiter)
            del self._buffer[: max(len(self._buffer) - keep, 0)]
            if not self._fill():
                raise _malformed()

    def _headers(self) -> Message:
        while True:
            index = self._buffer.find(b"\r\n\r\n")
            if index >= 0:
                raw = bytes(self._buffer[:index]).decode("utf-8", errors="replace")
                del self._buffer[: index + 4]
                return HeaderParser().parsestr(raw)
            if len(self._buffer) > MAX_HEADER_BYTES or not self._fill():
                raise _malformed()

    def body(self, limit: int | None) -> Iterator[bytes]:
        """The current part's bytes, up to (not including) the next delimiter."""
        total = 0
        keep = len(self._delimiter) - 1
        while True:
            index = self._buffer.find(self._delimiter)
            if index >= 0:
                chunk = bytes(self._buffer[:index])
                del self._buffer[: index + len(self._delimiter)]
                total += len(chunk)
                if chunk:
                    yield chunk
                break
            if len(self._buffer) > keep:
                chunk = bytes(self._buffer[: len(self._buffer) - keep])
                del self._buffer[: len(chunk)]
                total += len(chunk)
                yield chunk
            if limit is not None and total > limit:
                raise ValidationFailed(non_field_errors=["A form field is too large."])
            if not self._fill():
                raise _malformed()


def _malformed() -> ValidationFailed:
    return ValidationFailed(non_field_errors=["Multipart form parse error - Invalid body."])
