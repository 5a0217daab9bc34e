"""The TensorPix REST endpoints: routing, authentication, pagination and handlers.

Transport-free: :class:`TensorPixAPI` turns a :class:`Request` into a :class:`Response`;
``server.py`` does the sockets and the fault injection around it.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from .bodies import BodyReader, UnsupportedMediaType, parse_body, parse_multipart
from .listing import Listing
from .records import Video
from .render import Renderer
from .simulation import FOUR_PLACES, is_video_file
from .state import ApiProblem, EmulatorState
from .storage import STORAGE_PREFIX, SignatureError, URLSigner, iter_object_bytes
from .validation import ValidationFailed, parse_job_request

logger = logging.getLogger("django_tensorpix.testing")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


@dataclass
class Request:
    """One HTTP request as the API sees it; ``site_url`` is scheme + Host for links."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: BodyReader
    site_url: str

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None
    content_type: str = "application/json"
    content_length: int | None = None


def detail(status: int, message: str, **headers: str) -> Response:
    return Response(status, {"detail": message}, headers=dict(headers))


Handler = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool = True

    @property
    def name(self) -> str:
        """How fault rules and the request log name the route: "GET /api/jobs/{id}/"."""
        return f"{self.method} {self.template}"


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"\{id\}", r"(?P<id>\d+)")
    pattern = pattern.replace(r"\{key\}", r"(?P<key>.+)")
    return re.compile(f"^{pattern}$")


class TensorPixAPI:
    """The emulated endpoints over one :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState, signer: URLSigner, api_key: str) -> None:
        self.state = state
        self.signer = signer
        self._api_key = api_key
        self.storage_base_url = ""
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/api/accounts/profile/balance/", self.balance, True),
            ("GET", "/api/jobs/", self.list_jobs, True),
            ("POST", "/api/jobs/", self.create_job, True),
            ("POST", "/api/jobs/from-url/", self.create_job_from_url, True),
            ("GET", "/api/jobs/{id}/", self.retrieve_job, True),
            ("DELETE", "/api/jobs/{id}/", self.cancel_job, True),
            ("GET", "/api/ml-models/", self.list_ml_models, True),
            ("GET", "/api/videos/", self.list_videos, True),
            ("POST", "/api/videos/", self.upload_video, True),
            ("GET", "/api/videos/{id}/", self.retrieve_video, True),
            ("DELETE", "/api/videos/{id}/", self.delete_video, True),
            ("GET", "/api/restored-videos/", self.list_restored_videos, True),
            ("GET", "/api/restored-videos/{id}/", self.retrieve_restored_video, True),
            ("DELETE", "/api/restored-videos/{id}/", self.delete_restored_video, True),
            ("GET", STORAGE_PREFIX + "{key}", self.download, False),
            ("HEAD", STORAGE_PREFIX + "{key}", self.download, False),
        ]
        self.routes = [
            Route(method, template, _compile(template), handler, authenticated)
            for method, template, handler, authenticated in table
        ]

    # -- dispatch --------------------------------------------------------------------

    def resolve(
        self, method: str, path: str
    ) -> tuple[Route | None, dict[str, str], Response | None]:
        """The route for a request, or the 404/405 answer when there is none."""
        allowed = []
        for route in self.routes:
            match = route.pattern.match(path)
            if match:
                if route.method == method:
                    return route, match.groupdict(), None
                allowed.append(route.method)
        if allowed:
            return (
                None,
                {},
                detail(405, f'Method "{method}" not allowed.', Allow=", ".join(allowed)),
            )
        return None, {}, detail(404, "Not found.")

    def handle(self, route: Route, params: dict[str, str], request: Request) -> Response:
        if route.authenticated:
            refusal = self._authenticate(request)
            if refusal:
                return refusal
        try:
            return route.handler(request, params)
        except ValidationFailed as error:
            return Response(400, error.body())
        except ApiProblem as problem:
            return detail(problem.status, problem.detail)
        except UnsupportedMediaType as error:
            return detail(415, f'Unsupported media type "{error}" in request.')
        except Exception:
            # An emulator bug: answer like a crashing backend, and say where in the log.
            logger.exception("TensorPix emulator failed on %s %s", request.method, request.path)
            return detail(500, "A server error occurred.")

    def _authenticate(self, request: Request) -> Response | None:
        """TensorPix's DRF ``TokenAuthentication``: ``Authorization: Token <key>``."""
        scheme, _, key = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "token":
            message = "Authentication credentials were not provided."
            return detail(401, message, **{"WWW-Authenticate": "Token"})
        if not hmac.compare_digest(key.strip().encode(), self._api_key.encode()):
            return detail(401, "Invalid token.", **{"WWW-Authenticate": "Token"})
        return None

    def renderer(self) -> Renderer:
        now = self.state.settle()
        return Renderer(self.state, self.signer, self.storage_base_url, now)

    # -- account ---------------------------------------------------------------------

    def balance(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            balance = self.state.balance.quantize(FOUR_PLACES)
            return Response(200, {"balance_usd": str(balance)})

    # -- jobs --------------------------------------------------------------------------

    def list_jobs(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            renderer = self.renderer()
            return self._limit_offset_page(
                request,
                self.state.job_listing,
                lambda job_id: renderer.job(self.state.jobs[job_id]),
            )

    def retrieve_job(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            job = self.state.get_job(int(params["id"]))
            return Response(200, self.renderer().job(job))

    def create_job(self, request: Request, params: dict[str, str]) -> Response:
        data = parse_body(request.headers.get("content-type", ""), request.body)
        options = parse_job_request(data, from_url=False)
        with self.state.lock:
            job = self.state.create_job(options, from_url=False)
            return Response(201, self.renderer().created_job(job))

    def create_job_from_url(self, request: Request, params: dict[str, str]) -> Response:
        data = parse_body(request.headers.get("content-type", ""), request.body)
        options = parse_job_request(data, from_url=True)
        with self.state.lock:
            job = self.state.create_job(options, from_url=True)
            return Response(201, self.renderer().enhance_job_response(job))

    def cancel_job(self, request: Request, params: dict[str, str]) -> Response:
        self.state.cancel_job(int(params["id"]))
        return Response(204)

    # -- ml models ---------------------------------------------------------------------

    def list_ml_models(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            models = sorted(self.state.ml_models.values(), key=lambda model: model.id)
        page_size = _positive_int(request.param("page_size"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        pages = max((len(models) + page_size - 1) // page_size, 1)
        raw_page = request.param("page") or "1"
        page = pages if raw_page == "last" else _positive_int(raw_page, 0, None)
        if not 1 <= page <= pages:
            return detail(404, "Invalid page.")
        start = (page - 1) * page_size
        results = [model.payload() for model in models[start : start + page_size]]
        next_url = _page_url(request, page + 1) if page < pages else None
        previous_url = _page_url(request, page - 1) if page > 1 else None
        return Response(200, _envelope(len(models), next_url, previous_url, results))

    # -- videos ------------------------------------------------------------------------

    def list_videos(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            renderer = self.renderer()
            return self._limit_offset_page(
                request,
                self.state.video_listing,
                lambda video_id: renderer.video(self.state.videos[video_id]),
            )

    def upload_video(self, request: Request, params: dict[str, str]) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise UnsupportedMediaType(content_type.split(";", 1)[0] or "(none)")
        _, files = parse_multipart(content_type, request.body)
        upload = next((item for item in files if item.field_name == "file"), None)
        if upload is None:
            raise ValidationFailed({"file": ["No file was submitted."]})
        if upload.size == 0:
            raise ValidationFailed({"file": ["The submitted file is empty."]})
        if not is_video_file(upload.filename, upload.content_type):
            raise ValidationFailed({"file": ["Upload a valid video file."]})
        with self.state.lock:
            video = self.state.add_upload(upload.filename, upload.size)
            return Response(201, self.renderer().video(video))

    def retrieve_video(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            video: Video = self.state.get_video(int(params["id"]))
            return Response(200, self.renderer().video(video))

    def delete_video(self, request: Request, params: dict[str, str]) -> Response:
        self.state.delete_video(int(params["id"]))
        return Response(204)

    # -- restored videos ---------------------------------------------------------------

    def list_restored_videos(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            renderer = self.renderer()
            return self._limit_offset_page(
                request,
                self.state.restored_listing,
                lambda video_id: renderer.restored_video(self.state.restored_videos[video_id]),
            )

    def retrieve_restored_video(self, request: Request, params: dict[str, str]) -> Response:
        with self.state.lock:
            video = self.state.get_restored_video(int(params["id"]))
            return Response(200, self.renderer().restored_video(video))

    def delete_restored_video(self, request: Request, params: dict[str, str]) -> Response:
        self.state.delete_restored_video(int(params["id"]))
        return Response(204)

    # -- presigned storage ---------------------------------------------------------------

    def download(self, request: Request, params: dict[str, str]) -> Response:
        """Serve a presigned URL: no Authorization, but a valid, unexpired signature."""
        raw_query = urlencode(request.query, doseq=True)
        try:
            self.signer.verify(request.path, raw_query, self.state.settle())
        except SignatureError as error:
            return _storage_error(403, error.reason, str(error))
        obj = self.state.stored_object(unquote(params["key"]))
        if obj is None:
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        start, end = 0, obj.size
        headers = {"Accept-Ranges": "bytes"}
        status = 200
        requested = _byte_range(request.headers.get("range", ""), obj.size)
        if requested is not None:
            start, end = requested
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{obj.size}"
        chunks = _take(iter_object_bytes(obj, start), end - start)
        return Response(
            status,
            headers=headers,
            stream=None if request.method == "HEAD" else chunks,
            content_type=obj.content_type,
            content_length=end - start,
        )

    # -- pagination ------------------------------------------------------------------------

    def _limit_offset_page(
        self, request: Request, listing: Listing, render: Callable[[int], dict[str, Any]]
    ) -> Response:
        """DRF's ``LimitOffsetPagination``: default limit 100, at most 1000 per page."""
        limit = _positive_int(request.param("limit"), DEFAULT_LIMIT, MAX_LIMIT)
        offset = _non_negative_int(request.param("offset"))
        count = len(listing)
        ids = listing.page(self.state.list_order, offset, limit)
        next_url = None
        if offset + limit < count:
            next_url = _query_url(request, limit=limit, offset=offset + limit)
        previous_url = None
        if offset > 0:
            previous_offset = offset - limit
            previous_url = _query_url(
                request, limit=limit, offset=previous_offset if previous_offset > 0 else None
            )
        return Response(200, _envelope(count, next_url, previous_url, [render(i) for i in ids]))


def _envelope(
    count: int, next_url: str | None, previous_url: str | None, results: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"count": count, "next": next_url, "previous": previous_url, "results": results}


def _query_url(request: Request, **changes: int | None) -> str:
    query = {name: values for name, values in request.query.items() if name not in changes}
    for name, value in changes.items():
        if value is not None:
            query[name] = [str(value)]
    encoded = urlencode(query, doseq=True)
    return f"{request.site_url}{request.path}" + (f"?{encoded}" if encoded else "")


def _page_url(request: Request, page: int) -> str:
    return _query_url(request, page=page if page > 1 else None)


def _positive_int(raw: str | None, default: int, cap: int | None) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    if value <= 0:
        return default
    return min(value, cap) if cap else value


def _non_negative_int(raw: str | None) -> int:
    try:
        return max(int(raw), 0) if raw is not None else 0
    except ValueError:
        return 0


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    else:
        start, end = max(size - int(last), 0), size
    if start >= end:
        return None
    return start, end


def _take(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    remaining = length
    for chunk in chunks:
        if remaining <= 0:
            return
        yield chunk[:remaining]
        remaining -= len(chunk)


def _storage_error(status: int, code: str, message: str) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    encoded = body.encode()
    return Response(
        status,
        stream=iter([encoded]),
        content_type="application/xml",
        content_length=len(encoded),
    )
