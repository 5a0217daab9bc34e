"""The HTTP transport: a threaded stdlib server on loopback, with faults applied.

HTTP/1.1 with keep-alive, as ``requests`` sessions expect. Faults that strike before
the API runs (error, rate_limit, latency, reset) leave the state untouched; "truncated"
and "lost_response" run the request first, so a created job exists although the client
never sees a usable answer. A truncated JSON answer is cut with a matching
Content-Length (invalid JSON); a truncated download stops half-way under the full
Content-Length (an incomplete read).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from .api import Request, Response, Route, TensorPixAPI, detail
from .bodies import BodyReader
from .faults import ERROR_STATUSES, FaultInjector, FaultRule
from .validation import ValidationFailed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received. ``status`` is 0 when no answer was sent.

    ``at`` is real time (``time.time()``), so tests can measure a client's backoff;
    ``route`` is the matched template ("GET /api/jobs/{id}/"), or "" when none matched;
    ``fault`` the kind of the injected fault that struck it ("reset", "truncated"...), or "".
    """

    method: str
    path: str
    query: str
    status: int
    at: float
    route: str = ""
    fault: str = ""


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        api: TensorPixAPI,
        faults: FaultInjector,
        record: Callable[[RequestRecord], None],
    ) -> None:
        super().__init__(address, EmulatorRequestHandler)
        self.api = api
        self.faults = faults
        self.record = record

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-answer are normal here (and in fault tests).

        Anything else is a bug of the emulator's: logged, so that a test does not see a
        mysterious connection reset only.
        """
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        logger.exception("The TensorPix emulator failed to answer %s", client_address)


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive clients
    # wait for a delayed ACK between them (tens of milliseconds per request).
    disable_nagle_algorithm = True
    server_version = "TensorPixEmulator/1.0"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_HEAD = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log (``emulator.requests``) records what tests need."""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        route, params, refusal = self.server.api.resolve(self.command, split.path)
        route_name = route.name if route else ""
        fault = self.server.faults.pick(self.command, route_name) if route else None
        kind = fault.kind if fault else None
        reader = self._body_reader()
        response = None
        if kind != "reset":
            response = self._response(route, params, refusal, fault, split, reader)
        # Logged before answering, so a client that has its answer finds it in the log.
        if response is None or kind == "lost_response":
            self._record(split, 0, route_name, kind)
            self._reset()
            return
        self._record(split, response.status, route_name, kind)
        self._send(response, truncate=kind == "truncated")

    def _response(
        self,
        route: Route | None,
        params: dict[str, str],
        refusal: Response | None,
        fault: FaultRule | None,
        split: SplitResult,
        reader: BodyReader,
    ) -> Response:
        """The answer to send: a fault's, a routing refusal, or the API's."""
        if fault and fault.kind in ("error", "rate_limit"):
            response = self._fault_response(fault)
        elif route is None or refusal is not None:
            response = refusal or detail(404, "Not found.")
        else:
            if fault and fault.kind == "latency":
                time.sleep(fault.delay or 0)
            response = self.server.api.handle(route, params, self._request(split, reader))
        self._finish_reading(reader)
        return response

    def _record(self, split: SplitResult, status: int, route_name: str, fault: str | None) -> None:
        record = RequestRecord(
            self.command, split.path, split.query, status, time.time(), route_name, fault or ""
        )
        self.server.record(record)

    def _request(self, split: SplitResult, reader: BodyReader) -> Request:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=reader,
            site_url=f"http://{host}",
        )

    def _finish_reading(self, reader: BodyReader) -> None:
        """Read what the handler left of the body, so keep-alive stays in step."""
        try:
            reader.drain()
        except ValidationFailed:
            self.close_connection = True

    def _body_reader(self) -> BodyReader:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return BodyReader(self.rfile, length, chunked)

    def _fault_response(self, fault: FaultRule) -> Response:
        if fault.kind == "rate_limit":
            retry_after = fault.retry_after_header()
            wait = retry_after if retry_after.isdigit() else "a few"
            return detail(
                429,
                f"Request was throttled. Expected available in {wait} seconds.",
                **{"Retry-After": retry_after},
            )
        status = fault.status or 503
        headers = (
            {"Retry-After": fault.retry_after_header()} if fault.retry_after is not None else {}
        )
        if status == 500 or status not in ERROR_STATUSES:
            return detail(status, "A server error occurred.", **headers)
        # Gateways in front of TensorPix answer 502/503/504 with HTML, not JSON.
        phrase = HTTPStatus(status).phrase
        page = f"<html><head><title>{status} {phrase}</title></head><body>{phrase}</body></html>"
        encoded = page.encode()
        return Response(
            status,
            headers=headers,
            stream=iter([encoded]),
            content_type="text/html",
            content_length=len(encoded),
        )

    def _send(self, response: Response, *, truncate: bool = False) -> None:
        payload: bytes | None = None
        if response.stream is None and response.body is not None:
            payload = json.dumps(response.body).encode()
            if truncate:
                payload = payload[: max(len(payload) // 2, 1)]
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if payload is not None:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
        elif response.content_length is not None:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(response.content_length))
        else:
            self.send_header("Content-Length", "0")
        if truncate or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if payload is not None:
            self.wfile.write(payload)
        elif response.stream is not None:
            self._write_stream(response, truncate)

    def _write_stream(self, response: Response, truncate: bool) -> None:
        """Send a streamed body; truncated, it stops half-way under the full Content-Length."""
        assert response.stream is not None
        budget = (response.content_length or 0) // 2 if truncate else None
        for chunk in response.stream:
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            self.wfile.write(chunk)
            if budget == 0:
                return

    def _reset(self) -> None:
        """Abort the TCP connection (RST), so the client sees "connection reset"."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
