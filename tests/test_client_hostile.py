"""A hostile or broken server: ambiguous URLs, drips, floods, bombs, deep JSON, odd headers.

Each case runs against the tiny loopback servers of ``test_client_safety``; none may make
the client hang, exhaust memory, crash with a non-TensorPix error, or show the API key.
"""

from __future__ import annotations

import gzip
import io
import json
import time
from http.server import BaseHTTPRequestHandler

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import Account
from django_tensorpix.exceptions import (
    ConfigurationError,
    DownloadError,
    MalformedResponse,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    TensorPixError,
    TransientError,
)
from tests.test_client_safety import API_KEY, _page, api_host, client, other_host

__all__ = ["api_host", "client", "other_host"]  # fixtures, shared


def _send_raw(handler: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# Item 1: one parser for the origin check and the connection.


@pytest.mark.parametrize(
    "template",
    [
        "http://localhost:{other}\\@127.0.0.1:{api}/api/jobs/?limit=100&offset=1",
        "http://127.0.0.1:{api}\\@localhost:{other}/api/jobs/?limit=100&offset=1",
        "http://user:pw@127.0.0.1:{api}/api/jobs/?offset=1",
        "http://127.0.0.1:{api}/api/jobs/?offset=1\n",
        " http://localhost:{other}/api/jobs/?offset=1",
        "ftp://127.0.0.1:{api}/api/jobs/",
    ],
)
def test_ambiguous_next_links_are_refused_and_nothing_is_sent(
    api_host, other_host, client, template
):
    api, other = api_host.server.server_port, other_host.server.server_port
    next_url = template.format(api=api, other=other)
    api_host.json("/api/jobs/?limit=100", _page([{"id": 1}], next_url))

    with pytest.raises(MalformedResponse, match="refusing to send the API key") as caught:
        list(client.iter_jobs())

    assert other_host.received == []
    assert len(api_host.received) == 1
    assert API_KEY not in str(caught.value)


def test_no_api_request_leaves_the_base_origin_whatever_builds_its_url(other_host, client):
    # The last check sits in front of the socket, not only in the paging code.
    port = other_host.server.server_port
    for url in (f"http://localhost:{port}\\@127.0.0.1/x", f"http://localhost:{port}/x"):
        with pytest.raises(MalformedResponse, match=r"(?i)refusing to send the API key"):
            client._send("GET", url)
    assert other_host.received == []


@pytest.mark.parametrize(
    "template",
    [
        "http://localhost:{other}\\@127.0.0.1:{api}/elsewhere.mp4",
        "http://x@localhost:{other}/elsewhere.mp4",
        "//localhost:{other}/elsewhere.mp4",
    ],
)
def test_download_refuses_ambiguous_or_foreign_redirects(api_host, other_host, client, template):
    api, other = api_host.server.server_port, other_host.server.server_port
    api_host.redirect("/out.mp4?sig=secret", template.format(api=api, other=other))
    other_host.routes["/elsewhere.mp4"] = (200, {}, b"bait")

    with pytest.raises(DownloadError, match="refusing to follow") as caught:
        client.download(f"{api_host.url}/out.mp4?sig=secret", io.BytesIO())

    assert caught.value.status == 302
    assert other_host.received == []
    assert "secret" not in str(caught.value)


def test_download_errors_are_specific(api_host, client):
    api_host.routes["/gone.mp4"] = (404, {}, b"")
    with pytest.raises(DownloadError) as caught:
        client.download(f"{api_host.url}/gone.mp4", io.BytesIO())
    assert caught.value.status == 404
    with pytest.raises(DownloadError):
        client.download("file:///etc/passwd", io.BytesIO())


# Item 3: total time per response, and listings that never end.


def test_a_response_that_drips_times_out_as_a_whole(api_host, settings):
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    api_host.handlers["/api/jobs/1/"] = drip
    settings.TENSORPIX = {**settings.TENSORPIX, "RESPONSE_TIMEOUT": 0.3}
    account = Account("default", API_KEY, api_host.url)

    client = TensorPixClient(account, max_retries=1, sleep=lambda _: None)
    with client, pytest.raises(TransientError, match="RESPONSE_TIMEOUT") as caught:
        client.get_job(1)

    assert caught.value.status == 200
    assert len(api_host.received) == 2  # retried once, as any timeout of a GET


def test_a_body_that_stalls_past_the_read_timeout_is_a_transient_error(api_host):
    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b'{"id": 1')
        handler.wfile.flush()
        time.sleep(1.0)

    api_host.handlers["/api/jobs/1/"] = stall
    account = Account("default", API_KEY, api_host.url)
    client = TensorPixClient(account, read_timeout=0.2, max_retries=0)
    with client, pytest.raises(TransientError, match="timed out") as caught:
        client.get_job(1)
    assert caught.value.status == 200


def test_empty_pages_with_a_next_link_stop_the_listing(api_host, client):
    def endless(handler: BaseHTTPRequestHandler) -> None:
        offset = len(api_host.received)
        body = _page([], f"{api_host.url}/api/jobs/?limit=100&offset={offset}")
        _send_raw(handler, 200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    api_host.handlers["/api/jobs/?limit=100"] = endless

    with pytest.raises(MalformedResponse, match="empty page"):
        list(client.iter_jobs())
    assert len(api_host.received) == 1


def test_pages_beyond_the_announced_count_stop_the_listing(api_host, client):
    def flood(handler: BaseHTTPRequestHandler) -> None:
        n = len(api_host.received)
        body = {
            "count": 10,
            "next": f"{api_host.url}/flood/{n}",
            "results": [{"id": n * 10 + i} for i in range(10)],
        }
        _send_raw(handler, 200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    api_host.handlers["/api/jobs/?limit=100"] = flood
    for n in range(1, 50):
        api_host.handlers[f"/flood/{n}"] = flood

    with pytest.raises(MalformedResponse, match="counted 10"):
        list(client.iter_jobs())
    assert len(api_host.received) == 3


# Items 4 and 5: the key in settings and in bodies.


def test_a_key_with_a_trailing_newline_is_stripped(api_host):
    api_host.json("/api/jobs/1/", {"id": 1})
    with TensorPixClient(Account("default", f"{API_KEY}\n", api_host.url)) as client:
        client.get_job(1)
    assert api_host.received[0].headers["Authorization"] == f"Token {API_KEY}"


@pytest.mark.parametrize("key", [f"{API_KEY}\nX-Evil: 1", f"{API_KEY} {API_KEY}", "", "sk-\x7f"])
def test_a_key_that_cannot_be_sent_is_a_configuration_error_without_the_key(api_host, key):
    with pytest.raises(ConfigurationError) as caught:
        TensorPixClient(Account("default", key, api_host.url))

    assert isinstance(caught.value, ImproperlyConfigured)
    assert isinstance(caught.value, TensorPixError)
    assert API_KEY not in str(caught.value)
    assert api_host.received == []


def test_a_base_url_that_is_ambiguous_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="backslash"):
        TensorPixClient(Account("default", API_KEY, "http://a\\@127.0.0.1:9"))


def test_the_key_is_redacted_from_echoed_error_bodies(api_host, client):
    echo = {"detail": f"bad token Token {API_KEY}", "errors": {API_KEY: [API_KEY]}}
    api_host.json("/api/jobs/1/", echo, status=404)

    with pytest.raises(NotFound) as caught:
        client.get_job(1)

    assert API_KEY not in str(caught.value)
    assert API_KEY not in json.dumps(caught.value.body)
    assert "bad token Token [redacted]" in str(caught.value)


# Item 6: size caps, decoded.


def test_a_body_over_the_cap_is_refused(api_host, settings):
    settings.TENSORPIX = {**settings.TENSORPIX, "MAX_RESPONSE_BYTES": 100_000}
    api_host.routes["/api/jobs/1/"] = (200, {}, b'{"id": 1, "x": "' + b"a" * 200_000 + b'"}')

    client = TensorPixClient(Account("default", API_KEY, api_host.url), max_retries=0)
    with client, pytest.raises(ResponseTooLarge, match="MAX_RESPONSE_BYTES") as caught:
        client.get_job(1)
    assert caught.value.status == 200


def test_a_gzip_bomb_is_refused_by_its_decoded_size(api_host, settings):
    settings.TENSORPIX = {**settings.TENSORPIX, "MAX_RESPONSE_BYTES": 1_000_000}
    bomb = gzip.compress(b'{"id": 1, "x": "' + b"a" * 20_000_000 + b'"}')
    assert len(bomb) < 100_000
    api_host.routes["/api/jobs/1/"] = (200, {"Content-Encoding": "gzip"}, bomb)

    client = TensorPixClient(Account("default", API_KEY, api_host.url), max_retries=0)
    with client, pytest.raises(ResponseTooLarge):
        client.get_job(1)


def test_a_small_gzip_body_is_read(api_host, client):
    api_host.routes["/api/jobs/1/"] = (
        200,
        {"Content-Encoding": "gzip"},
        gzip.compress(b'{"id":1}'),
    )
    assert client.get_job(1) == {"id": 1}


# Item 7: nesting depth.


@pytest.mark.parametrize("depth", [100_000, 500])
def test_deeply_nested_json_is_malformed(api_host, client, depth):
    body = b'{"id": 1, "extra": ' + b"[" * depth + b"]" * depth + b"}"
    api_host.routes["/api/jobs/1/"] = (200, {"Content-Type": "application/json"}, body)

    with pytest.raises(MalformedResponse, match="nested deeper"):
        client.get_job(1)


def test_deeply_nested_error_bodies_are_not_quoted(api_host, client):
    body = b'{"detail": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    api_host.routes["/api/jobs/1/"] = (404, {"Content-Type": "application/json"}, body)

    with pytest.raises(NotFound) as caught:
        client.get_job(1)
    assert caught.value.body is None


# Item 8: any Retry-After.


@pytest.mark.parametrize("value", ["²", "9" * 400, "1e400", "-5", "Mon, 99 Foo 99999 99:99:99"])
def test_any_retry_after_gives_a_tensorpix_error(api_host, client, value):
    api_host.routes["/api/jobs/1/"] = (429, {"Retry-After": value}, b'{"detail": "Slow down."}')

    with pytest.raises(RateLimited) as caught:
        client.get_job(1)

    assert "inf" not in str(caught.value)
    assert caught.value.retry_after is None or caught.value.retry_after <= 365 * 24 * 3600
