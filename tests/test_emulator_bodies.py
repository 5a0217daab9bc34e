"""The emulator's streaming body parsers, fed byte by byte."""

from __future__ import annotations

import hashlib
import io

import pytest
from requests_toolbelt import MultipartEncoder

from django_tensorpix.testing.bodies import BodyReader, parse_body, parse_multipart
from django_tensorpix.testing.validation import ValidationFailed


class Trickle(io.BytesIO):
    """A socket that hands out one byte per read, the worst case for a parser."""

    def read(self, size: int | None = -1, /) -> bytes:
        return super().read(1 if size and size > 0 else size)


def multipart(fields: list) -> tuple[str, bytes]:
    encoder = MultipartEncoder(fields=fields, boundary="b0undary")
    return encoder.content_type, encoder.to_string()


def chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return framed + b"0\r\n\r\n"


def test_multipart_parses_the_same_one_byte_at_a_time():
    data = b"\r\n--b0undar" * 300 + b"tail"
    content_type, body = multipart(
        [("ml_models", "1"), ("ml_models", "4"), ("file", ("a b.mp4", data, "video/mp4"))]
    )

    fields, files = parse_multipart(content_type, BodyReader(Trickle(body), len(body), False))

    assert fields == {"ml_models": ["1", "4"]}
    assert len(files) == 1
    assert (files[0].filename, files[0].content_type, files[0].size) == (
        "a b.mp4",
        "video/mp4",
        len(data),
    )
    assert files[0].sha256 == hashlib.sha256(data).hexdigest()


def test_chunked_transfer_encoding_is_unframed():
    content_type, body = multipart([("file", ("a.mp4", b"x" * 5000, "video/mp4"))])
    framed = chunked(body, 777)

    _, files = parse_multipart(content_type, BodyReader(io.BytesIO(framed), None, True))

    assert files[0].size == 5000


def test_form_encoded_body_keeps_repeated_keys():
    body = b"ml_models=1&ml_models=4&crf=20"

    data = parse_body(
        "application/x-www-form-urlencoded", BodyReader(io.BytesIO(body), len(body), False)
    )

    assert data.get_list("ml_models") == ["1", "4"]
    assert data.get("crf") == "20"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"no boundary here"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n"),
    ],
)
def test_malformed_multipart_is_a_validation_error(content_type, body):
    with pytest.raises(ValidationFailed):
        parse_multipart(content_type, BodyReader(io.BytesIO(body), len(body), False))


def test_body_shorter_than_its_content_length_is_refused():
    with pytest.raises(ValidationFailed, match="ended early"):
        BodyReader(io.BytesIO(b"abc"), 10, False).read_all()
