"""Where the client refuses to go (foreign `next` links, redirects, credentials on storage)
and how it reads error answers the emulator does not give.

Each test runs tiny stdlib HTTP servers on loopback that answer from a table and record
what they receive.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import Account
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
    TensorPixError,
)

API_KEY = "sk-safety-test-key"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class LoopbackHost:
    """A server answering ``routes[path]`` = (status, headers, body), recording requests."""

    server: ThreadingHTTPServer
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    # Paths answered by a function writing the whole response itself (drips, floods...).
    handlers: dict[str, Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def json(self, path: str, payload: object, status: int = 200) -> None:
        headers = {"Content-Type": "application/json"}
        self.routes[path] = (status, headers, json.dumps(payload).encode())

    def redirect(self, path: str, location: str) -> None:
        self.routes[path] = (302, {"Location": location}, b"")


def _start_host() -> LoopbackHost:
    host: LoopbackHost

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.received.append(Received(self.command, self.path, dict(self.headers.items())))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path in host.handlers:
                host.handlers[self.path](self)
                return
            status, headers, body = host.routes.get(self.path, (404, {}, b"not here"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_DELETE = do_GET

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host = LoopbackHost(server)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return host


@pytest.fixture
def api_host() -> Iterator[LoopbackHost]:
    host = _start_host()
    yield host
    host.server.shutdown()
    host.server.server_close()


@pytest.fixture
def other_host() -> Iterator[LoopbackHost]:
    host = _start_host()
    yield host
    host.server.shutdown()
    host.server.server_close()


@pytest.fixture
def client(api_host: LoopbackHost) -> Iterator[TensorPixClient]:
    with TensorPixClient(Account("default", API_KEY, api_host.url), max_retries=0) as client:
        yield client


def _page(results: list[dict], next_url: str | None) -> dict:
    return {"count": 99, "next": next_url, "previous": None, "results": results}


def test_next_link_to_another_port_is_refused_before_anything_is_sent(api_host, other_host, client):
    api_host.json("/api/jobs/?limit=100", _page([{"id": 1}], f"{other_host.url}/api/jobs/?o=1"))
    other_host.json("/api/jobs/?o=1", _page([{"id": 2}], None))

    pages = client.iter_job_pages()
    assert next(pages) == [{"id": 1}]
    with pytest.raises(MalformedResponse, match="another origin") as caught:
        next(pages)

    assert other_host.received == []
    assert other_host.url in str(caught.value)
    assert "?o=1" not in str(caught.value)


@pytest.mark.parametrize(
    "foreign",
    [
        "http://localhost:{port}/api/jobs/?offset=1",  # another host name, same port
        "https://127.0.0.1:{port}/api/jobs/?offset=1",  # another scheme
        "http://user@evil.example:{port}/api/jobs/?offset=1",
    ],
)
def test_next_link_to_another_host_or_scheme_is_refused(api_host, client, foreign):
    port = api_host.server.server_port
    api_host.json("/api/jobs/?limit=100", _page([{"id": 1}], foreign.format(port=port)))

    with pytest.raises(MalformedResponse, match="refusing to send the API key"):
        list(client.iter_jobs())

    assert [r.path for r in api_host.received] == ["/api/jobs/?limit=100"]


def test_relative_next_link_on_the_same_origin_is_followed(api_host, client):
    api_host.json("/api/videos/?limit=100", _page([{"id": 1}], "/api/videos/?limit=100&offset=1"))
    api_host.json("/api/videos/?limit=100&offset=1", _page([{"id": 2}], None))

    assert [video["id"] for video in client.iter_videos()] == [1, 2]
    assert all(r.headers["Authorization"] == f"Token {API_KEY}" for r in api_host.received)


def test_next_link_that_loops_back_is_refused(api_host, client):
    api_host.json("/api/jobs/?limit=100", _page([{"id": 1}], f"{api_host.url}/api/jobs/?limit=100"))

    with pytest.raises(MalformedResponse, match="already read"):
        list(client.iter_jobs())
    assert len(api_host.received) == 1


@pytest.mark.parametrize(
    "payload",
    [{"count": 0, "next": None}, {"results": {"id": 1}}, {"results": [1, 2]}, [{"id": 1}]],
)
def test_page_of_the_wrong_shape_is_malformed(api_host, client, payload):
    api_host.json("/api/restored-videos/?limit=100", payload)

    with pytest.raises(MalformedResponse, match=r"GET /api/restored-videos/\?limit=100"):
        list(client.iter_restored_videos())


def test_next_that_is_not_a_string_is_malformed(api_host, client):
    api_host.json("/api/jobs/?limit=100", {"results": [], "next": 2})

    with pytest.raises(MalformedResponse, match="not a URL"):
        list(client.iter_jobs())


def test_success_body_that_is_not_json_is_malformed(api_host, client):
    api_host.routes["/api/jobs/5/"] = (200, {"Content-Type": "text/html"}, b"<html>hi</html>")

    with pytest.raises(MalformedResponse, match=r"GET /api/jobs/5/ returned 200 .*not JSON"):
        client.get_job(5)


def test_api_requests_do_not_follow_redirects(api_host, other_host, client):
    api_host.redirect("/api/jobs/5/", f"{other_host.url}/api/jobs/5/")
    other_host.json("/api/jobs/5/", {"id": 5})

    with pytest.raises(APIError) as caught:
        client.get_job(5)

    assert caught.value.status == 302
    assert other_host.received == []


def test_download_sends_no_tensorpix_credentials(api_host, client):
    api_host.routes["/bucket/out.mp4?X-Signature=abc"] = (200, {}, b"video bytes" * 1000)
    target = io.BytesIO()

    written = client.download(f"{api_host.url}/bucket/out.mp4?X-Signature=abc", target)

    assert written == 11_000
    assert target.getvalue() == b"video bytes" * 1000
    (request,) = api_host.received
    assert "Authorization" not in request.headers
    assert request.headers["User-Agent"].startswith("django-tensorpix/")


def test_download_follows_a_redirect_within_the_same_origin(api_host, client):
    api_host.redirect("/old.mp4?sig=1", "/new.mp4?sig=2")
    api_host.routes["/new.mp4?sig=2"] = (200, {}, b"moved")
    target = io.BytesIO()

    assert client.download(f"{api_host.url}/old.mp4?sig=1", target) == 5
    assert target.getvalue() == b"moved"


def test_download_refuses_a_redirect_to_another_host(api_host, other_host, client):
    api_host.redirect("/out.mp4?X-Signature=secret", f"{other_host.url}/elsewhere.mp4")
    other_host.routes["/elsewhere.mp4"] = (200, {}, b"bait")
    target = io.BytesIO()

    with pytest.raises(TensorPixError, match="redirected to another host") as caught:
        client.download(f"{api_host.url}/out.mp4?X-Signature=secret", target)

    assert other_host.received == []
    assert target.getvalue() == b""
    assert "secret" not in str(caught.value)


def test_download_error_names_the_file_without_its_signature(api_host, client):
    api_host.routes["/gone.mp4?X-Signature=secret"] = (403, {}, b"<Error>AccessDenied</Error>")

    with pytest.raises(
        APIError, match=r"GET http://127\.0\.0\.1:\d+/gone\.mp4 failed: 403"
    ) as caught:
        client.download(f"{api_host.url}/gone.mp4?X-Signature=secret", io.BytesIO())

    assert caught.value.status == 403
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "status", "body", "expected"),
    [
        ("GET", 401, {"detail": "Invalid token."}, AuthenticationError),
        ("GET", 403, {"detail": "Your plan has no API access."}, AuthenticationError),
        ("GET", 404, {"detail": "Not found."}, NotFound),
        ("DELETE", 409, {"detail": "Job already canceled."}, Conflict),
        ("POST", 402, {"detail": "Payment required."}, InsufficientCredits),
        ("POST", 402, {"detail": "Out of CREDITS."}, InsufficientCredits),
        # By status, never by words: these are all 400s.
        ("POST", 400, {"non_field_errors": ["Not enough credits."]}, InvalidRequest),
        ("POST", 400, {"errors": {"video_url": ["Not a storage URL."]}}, InvalidRequest),
        ("POST", 400, {"detail": "Quota exceeded"}, InvalidRequest),
        ("GET", 404, {"detail": "No credits for this storage quota."}, NotFound),
        ("GET", 418, {"detail": "Not enough credits."}, APIError),
        ("GET", 418, None, APIError),
        ("DELETE", 500, {"detail": "Failed to cancel the job."}, APIError),
        ("POST", 500, {"detail": "A server error occurred."}, OutcomeUnknown),
        ("POST", 429, {"detail": "Throttled."}, RateLimited),
    ],
)
def test_error_statuses_map_to_exceptions(api_host, client, method, status, body, expected):
    path = "/api/jobs/from-url/" if method == "POST" else "/api/jobs/7/"
    raw = b"teapot" if body is None else json.dumps(body).encode()
    api_host.routes[path] = (status, {"Content-Type": "application/json"}, raw)
    call = {
        "GET": lambda: client.get_job(7),
        "DELETE": lambda: client.cancel_job(7),
        "POST": lambda: client.create_job_from_url(video_url="https://e.com/v.mp4", ml_models=[1]),
    }[method]

    with pytest.raises(expected) as caught:
        call()

    assert type(caught.value) is expected
    assert str(caught.value).startswith(f"{method} {path} failed: {status}")
    if isinstance(caught.value, APIError):
        assert (caught.value.status, caught.value.body) == (status, body)
    assert len(api_host.received) == 1
