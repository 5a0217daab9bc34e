"""Archive downloads are bounded: no more bytes than expected, no plain http off loopback.

A hostile or broken storage must not fill the disk of the worker that archives, and a
presigned URL (a secret until it expires) must not travel in clear over a network.
"""

from __future__ import annotations

import io

import pytest

from django_tensorpix.exceptions import DownloadError, TransientError
from tests.test_client_safety import api_host, client

__all__ = ["api_host", "client"]  # the fixtures, shared with the client's safety tests


def test_a_download_stops_as_soon_as_it_exceeds_the_expected_size(api_host, client):
    api_host.routes["/out.mp4?X-Signature=s"] = (200, {}, b"x" * 2_000_000)
    target = io.BytesIO()

    with pytest.raises(DownloadError, match="more than the 1000 bytes") as caught:
        client.download(f"{api_host.url}/out.mp4?X-Signature=s", target, max_bytes=1000)

    assert len(target.getvalue()) <= 1000
    assert "X-Signature" not in str(caught.value)


def test_a_download_of_exactly_the_expected_size_passes(api_host, client):
    api_host.routes["/out.mp4?X-Signature=s"] = (200, {}, b"x" * 1000)

    assert client.download(f"{api_host.url}/out.mp4?X-Signature=s", io.BytesIO(), max_bytes=1000)


@pytest.mark.parametrize(
    "url",
    ["http://storage.example.com/out.mp4?X-Signature=s", "http://192.0.2.1/out.mp4?X-Signature=s"],
)
def test_plain_http_off_loopback_is_refused_before_connecting(client, url):
    with pytest.raises(DownloadError, match="plain http") as caught:
        client.download(url, io.BytesIO())

    assert "X-Signature" not in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_on_loopback_is_allowed(client, host):
    # Nothing listens on port 9: the refusal must come from the connection, not the rule.
    with pytest.raises(TransientError) as caught:
        client.download(f"http://{host}:9/out.mp4", io.BytesIO())

    assert "plain http" not in str(caught.value)
