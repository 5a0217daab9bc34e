"""The only code that speaks HTTP to TensorPix.

One method per endpoint of the TensorPix REST API (images and video generation aside),
returning the parsed JSON as plain dicts (typed below) and raising the exceptions of
:mod:`django_tensorpix.exceptions`. It knows nothing about Django models: turning
payloads into rows is :mod:`django_tensorpix.sync`'s job.

Safety rules this module keeps:

* The API key goes only to the configured base URL's origin: every API request's URL is
  parsed the way requests connects to it and compared with the base URL's origin before
  it is sent, ambiguous URLs (backslashes, credentials, whitespace) are refused, API
  requests never follow redirects, and storage (presigned) URLs are fetched by a separate
  session that has no TensorPix credentials.
* Every API response is bounded: ``RESPONSE_TIMEOUT`` seconds in all, ``MAX_RESPONSE_BYTES``
  decoded bytes, JSON at most ``MAX_JSON_DEPTH`` deep; a listing stops with an error on a
  page that makes no progress or goes past the ``count`` TensorPix announced.
* Only GET and DELETE are retried. A POST that fails in transit raises
  :class:`OutcomeUnknown` at once: TensorPix may have created (and billed) the job.
* The key never appears in a message, a ``repr`` or a log line (it is cut out of
  error bodies a server echoes it in), and presigned URLs are logged in full only at DEBUG.

A client holds a ``requests.Session`` (connection reuse), so use one per thread.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any, NotRequired, TypedDict, TypeVar, Unpack, cast
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests_toolbelt import MultipartEncoder

import django_tensorpix
from django_tensorpix._http import (
    BoundedMultipartBody,
    SizedReader,
    UnsafeURL,
    error_for_response,
    format_origin,
    loads_bounded,
    origin,
    read_body,
    redact,
    refuse_ambiguous,
    request_label,
    without_query,
)
from django_tensorpix.conf import DEFAULT_ACCOUNT, Account, api_key_problem, tensorpix_settings
from django_tensorpix.exceptions import (
    ConfigurationError,
    DownloadError,
    MalformedResponse,
    OutcomeUnknown,
    TransientError,
)
from django_tensorpix.retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

USER_AGENT = (
    f"django-tensorpix/{django_tensorpix.__version__} (+python-requests/{requests.__version__})"
)
DOWNLOAD_CHUNK_SIZE = 256 * 1024
MAX_DOWNLOAD_REDIRECTS = 5

T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Page(list[T]):
    """One page of a list endpoint's ``results``; ``total`` is the whole listing's size.

    ``total`` is TensorPix's ``count`` when the page was read (``None`` if it sent none):
    enough for a progress bar, not a promise, since objects come and go while paging.
    """

    def __init__(self, results: Iterable[T], total: int | None) -> None:
        super().__init__(results)
        self.total = total


# Payloads, as TensorPix sends them (TensorPix's OpenAPI schema, copied in the repository's
# tests/data/, has every field's type and bounds).
# TypedDicts are plain dicts at run time; they only tell type checkers the keys.


class BalancePayload(TypedDict):
    balance_usd: str  # Credits, as a decimal string, despite the name


class MLModelPayload(TypedDict):
    id: int
    name: str
    task: int
    cost_weight: float
    upscale_factor: int
    fps_boost_factor: int
    priority: int
    max_resolution: int


class VideoPayload(TypedDict):
    id: int
    name: str
    width: int | None
    height: int | None
    created_at: str
    n_frames: int | None
    framerate: float | None
    size: int | None
    file: str | None  # presigned; null until the upload reaches storage
    owner: str
    thumbnail: str | None
    external_url: str | None
    bitrate: int | None
    codec_id: str | None
    bit_depth: int | None
    chroma_subsampling: str | None
    color_space: str | None


class RestoredVideoPayload(TypedDict):
    id: int
    job_id: int | None
    preview_videos: dict[str, str | None]
    name: str
    created_at: str
    deleted: NotRequired[str | None]
    framerate: NotRequired[float | None]
    n_frames: NotRequired[int | None]
    bitrate: NotRequired[int | None]
    codec_id: NotRequired[str | None]
    bit_depth: NotRequired[int | None]
    chroma_subsampling: NotRequired[str | None]
    color_space: NotRequired[str | None]
    size: NotRequired[int | None]
    file: NotRequired[str | None]  # presigned
    thumbnail: NotRequired[str | None]
    width: int
    height: int
    quality_score: NotRequired[int | None]
    owner: int


class JobPayload(TypedDict):
    id: int
    started: str
    preview: bool
    description: str
    cost_usd: str  # Credits, as a decimal string
    status: int  # 0 in queue, 1 processing, 2 finished, -1 failed, -2 canceled
    eta_s: float
    finished: str | None
    processing_progress: float  # a ratio 0..1, not a percentage
    input_video: VideoPayload
    output_video: RestoredVideoPayload | None
    ml_models: list[MLModelPayload]
    grain: float
    codec: str
    output_resolution: int
    comparison: bool
    stabilization_smoothing: int
    fps_interpolation_factor: float
    playback_speed: float
    sharpen_strength: float
    start_frame: int | None
    end_frame: int | None


class CreatedJobPayload(TypedDict):
    """The 201 answer of ``POST /api/jobs/``: the request echoed with ``id`` and cost."""

    id: int
    cost_usd: str
    input_video: int | None
    ml_models: list[int]
    owner: str


class EnhanceJobPayload(TypedDict):
    """The 201 answer of ``POST /api/jobs/from-url/``."""

    id: int
    cost_usd: str
    input_video: NotRequired[int | None]
    status: NotRequired[int]


class JobOptions(TypedDict, total=False):
    """Options both job-creating endpoints accept; filters ignore those they do not use."""

    codec: str
    crf: int
    container: str
    chroma_subsampling: str
    preview: bool
    start_frame: int | None
    end_frame: int | None
    output_resolution: int
    grain: float
    comparison: bool
    stabilization_smoothing: int
    target_fps: float
    playback_speed: float
    sharpen_strength: float


class UploadedJobOptions(JobOptions, total=False):
    """``POST /api/jobs/`` also takes ProRes settings; ``/api/jobs/from-url/`` does not."""

    qscale: int
    prores_profile: int


class TensorPixClient:
    """A connection to one TensorPix account.

    ``connect_timeout``, ``read_timeout`` and ``max_retries`` default to the
    ``TENSORPIX`` settings. ``sleep`` is how the client waits between retries; tests
    pass a recorder, and a ``clock`` (the time HTTP-date ``Retry-After`` headers are read
    against) that does not depend on the wall clock. An account without a usable key or
    base URL raises :class:`~django_tensorpix.exceptions.ConfigurationError` here, before
    any request.
    """

    def __init__(
        self,
        account: Account,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_retries: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        problem = api_key_problem(account.api_key)
        if problem is not None:
            raise ConfigurationError(
                f"The TensorPix API key of account {account.alias!r} {problem}; set it in "
                "settings.TENSORPIX (or TENSORPIX_API_KEY for the default account)."
            )
        try:
            self._origin = origin(account.base_url)
        except UnsafeURL as error:
            raise ConfigurationError(
                f"The base URL of TensorPix account {account.alias!r} {error}."
            ) from None
        self.account = account
        self.base_url = account.base_url
        self._timeout = (
            tensorpix_settings.CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
            tensorpix_settings.READ_TIMEOUT if read_timeout is None else read_timeout,
        )
        self._response_timeout = tensorpix_settings.RESPONSE_TIMEOUT
        self._max_response_bytes = tensorpix_settings.MAX_RESPONSE_BYTES
        self._retry = RetryPolicy.from_settings(max_retries=max_retries)
        self._sleep = sleep
        self._clock = clock
        self._page_size = tensorpix_settings.PAGE_SIZE
        self._upload_chunk_size = tensorpix_settings.UPLOAD_CHUNK_SIZE
        self._session = requests.Session()
        self._session.auth = _TokenAuth(account.api_key)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # Storage URLs are presigned: they get no TensorPix credentials at all.
        self._storage_session = requests.Session()
        self._storage_session.headers.update({"User-Agent": USER_AGENT})

    @classmethod
    def for_account(cls, alias: str = DEFAULT_ACCOUNT, **options: Any) -> TensorPixClient:
        """A client for the account ``alias`` of ``settings.TENSORPIX``."""
        return cls(tensorpix_settings.get_account(alias), **options)

    def __repr__(self) -> str:
        return f"<TensorPixClient account={self.account.alias!r} base_url={self.base_url!r}>"

    def close(self) -> None:
        self._session.close()
        self._storage_session.close()

    def __enter__(self) -> TensorPixClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Account

    def get_balance(self) -> BalancePayload:
        return cast(BalancePayload, self._get_object("/api/accounts/profile/balance/"))

    # Jobs

    def iter_jobs(self) -> Iterator[JobPayload]:
        for page in self.iter_job_pages():
            yield from page

    def iter_job_pages(self) -> Iterator[Page[JobPayload]]:
        pages = self.iter_pages("/api/jobs/", {"limit": self._page_size})
        return cast(Iterator[Page[JobPayload]], pages)

    def get_job(self, job_id: int) -> JobPayload:
        return cast(JobPayload, self._get_object(f"/api/jobs/{operator.index(job_id)}/"))

    def create_job(
        self, *, input_video: int, ml_models: list[int], **options: Unpack[UploadedJobOptions]
    ) -> CreatedJobPayload:
        """Start a job on an uploaded video (``POST /api/jobs/``). Never retried: it bills."""
        body = {"input_video": input_video, "ml_models": list(ml_models), **options}
        return cast(CreatedJobPayload, self._post_json("/api/jobs/", body))

    def create_job_from_url(
        self, *, video_url: str, ml_models: list[int], **options: Unpack[JobOptions]
    ) -> EnhanceJobPayload:
        """Start a job on a video at a public or presigned URL. Never retried: it bills."""
        body = {"video_url": video_url, "ml_models": list(ml_models), **options}
        return cast(EnhanceJobPayload, self._post_json("/api/jobs/from-url/", body))

    def cancel_job(self, job_id: int) -> None:
        """Stop a job (TensorPix's ``DELETE /api/jobs/{id}/`` cancels, it does not delete).

        Raises :class:`Conflict` if the job was already canceled, and :class:`APIError`
        (500) when TensorPix failed to cancel it.
        """
        self._delete(f"/api/jobs/{operator.index(job_id)}/")

    # AI filters ("ML models"), the one list paginated by page/page_size

    def iter_ml_models(self) -> Iterator[MLModelPayload]:
        for page in self.iter_ml_model_pages():
            yield from page

    def iter_ml_model_pages(self) -> Iterator[Page[MLModelPayload]]:
        pages = self.iter_pages("/api/ml-models/", {"page_size": self._page_size})
        return cast(Iterator[Page[MLModelPayload]], pages)

    # Uploaded (input) videos

    def iter_videos(self) -> Iterator[VideoPayload]:
        for page in self.iter_video_pages():
            yield from page

    def iter_video_pages(self) -> Iterator[Page[VideoPayload]]:
        pages = self.iter_pages("/api/videos/", {"limit": self._page_size})
        return cast(Iterator[Page[VideoPayload]], pages)

    def upload_video(
        self, fileobj: IO[bytes], filename: str, content_type: str | None = None
    ) -> VideoPayload:
        """Upload a video, streamed from ``fileobj`` in bounded chunks. Never retried.

        The upload starts at ``fileobj``'s current position; it must be seekable or
        have a ``size`` (as Django's ``File`` has), since the length is sent first. TensorPix
        answers before the file reaches its storage: poll :meth:`get_video` until
        ``file`` is set before starting a job on it.
        """
        content_type = content_type or mimetypes.guess_type(filename)[0] or "video/mp4"
        encoder = MultipartEncoder(fields={"file": (filename, SizedReader(fileobj), content_type)})
        body = BoundedMultipartBody(encoder, self._upload_chunk_size)
        response = self._send(
            "POST",
            self._url("/api/videos/"),
            data=body,
            headers={"Content-Type": body.content_type},
        )
        return cast(VideoPayload, self._parse_object(response, "POST"))

    def get_video(self, video_id: int) -> VideoPayload:
        return cast(VideoPayload, self._get_object(f"/api/videos/{operator.index(video_id)}/"))

    def delete_video(self, video_id: int) -> None:
        """Delete an uploaded video; :class:`Conflict` while an active job uses it."""
        self._delete(f"/api/videos/{operator.index(video_id)}/")

    # Enhanced (output) videos

    def iter_restored_videos(self) -> Iterator[RestoredVideoPayload]:
        for page in self.iter_restored_video_pages():
            yield from page

    def iter_restored_video_pages(self) -> Iterator[Page[RestoredVideoPayload]]:
        pages = self.iter_pages("/api/restored-videos/", {"limit": self._page_size})
        return cast(Iterator[Page[RestoredVideoPayload]], pages)

    def get_restored_video(self, video_id: int) -> RestoredVideoPayload:
        path = f"/api/restored-videos/{operator.index(video_id)}/"
        return cast(RestoredVideoPayload, self._get_object(path))

    def delete_restored_video(self, video_id: int) -> None:
        """Delete an enhanced video, freeing its storage (copy it somewhere first)."""
        self._delete(f"/api/restored-videos/{operator.index(video_id)}/")

    # Generic building blocks

    def iter_pages(
        self, path: str, params: dict[str, Any] | None = None
    ) -> Iterator[Page[dict[str, Any]]]:
        """Yield each page's ``results`` (a :class:`Page`), following ``next`` until null.

        Works for both of TensorPix's pagination styles (limit/offset and page/page_size)
        because it only follows ``next``. A ``next`` on another origin than the base URL
        raises :class:`MalformedResponse` before anything is sent there: following it
        would hand the API key to that host.

        A listing is bounded by what TensorPix says of it: an empty page that still has a
        ``next``, or more objects than the largest ``count`` announced plus one page (objects
        created while paging shift offsets by a few), raise :class:`MalformedResponse`
        rather than follow a broken or hostile server forever. A listing that ends with an
        error is incomplete: callers must not treat the pages read as the whole listing.
        """
        url: str | None = self._url(path, params)
        seen: set[str] = set()
        received = 0
        largest_count: int | None = None
        largest_page = 0
        while url is not None:
            seen.add(url)
            response = self._send("GET", url)
            label = request_label("GET", url)
            page = self._parse_object(response, "GET")
            results, next_url = page.get("results"), page.get("next")
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise MalformedResponse(f"{label} returned a page without a list of `results`.")
            if next_url is not None and not isinstance(next_url, str):
                raise MalformedResponse(f"{label} returned a `next` that is not a URL.")
            total = page.get("count")
            if isinstance(total, int) and not isinstance(total, bool):
                largest_count = max(total, largest_count or 0)
            else:
                total = None
            received += len(results)
            largest_page = max(largest_page, len(results))
            if next_url is not None and not results:
                raise MalformedResponse(
                    f"{label} returned an empty page with a `next` link; stopping the listing."
                )
            if largest_count is not None and received > largest_count + largest_page:
                raise MalformedResponse(
                    f"{label} took the listing to {received} objects although TensorPix "
                    f"counted {largest_count}; stopping the listing."
                )
            yield Page(results, total)
            url = self._next_url(label, url, next_url, seen)

    def download(self, url: str, fileobj: IO[bytes], *, max_bytes: int | None = None) -> int:
        """Stream the file at a presigned storage ``url`` into ``fileobj``; return its size.

        More than ``max_bytes`` (when given: the size TensorPix announced) raises
        :class:`DownloadError` as soon as it is exceeded, so a hostile storage cannot fill
        the disk. Plain ``http`` is accepted only on loopback (the emulator); anywhere
        else the signed URL would travel in clear.

        No TensorPix credentials are sent (the URL's signature is the permission), and
        redirects are followed only within the URL's own origin, compared the way requests
        connects (an ambiguous ``Location`` is refused). A storage error or a refused
        redirect raises :class:`DownloadError` (with the ``status``), a connection
        failure :class:`TransientError`.
        """
        logger.debug("Downloading %s", url)
        label = f"GET {without_query(url)}"
        try:
            url_origin = origin(url)
        except UnsafeURL as error:
            raise DownloadError(f"GET of a storage URL refused: the URL {error}.") from None
        if url_origin[0] == "http" and not _is_loopback(url_origin[1]):
            raise DownloadError(
                f"GET of a storage URL refused: plain http to {format_origin(url)} "
                "(only https, or http on loopback)."
            )
        for _ in range(MAX_DOWNLOAD_REDIRECTS + 1):
            response = self._send("GET", url, storage=True)
            if not response.is_redirect:
                break
            response.close()
            target = self._redirect_target(label, url, response, url_origin)
            url = target
        else:
            raise DownloadError(
                f"{label} redirected more than {MAX_DOWNLOAD_REDIRECTS} times.",
                status=response.status_code,
                method="GET",
                path=without_query(url),
            )
        with response:
            if not response.ok:
                raise DownloadError(
                    f"{label} failed: {response.status_code} {response.reason or ''}".rstrip(),
                    status=response.status_code,
                    method="GET",
                    path=without_query(url),
                )
            written = 0
            try:
                for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK_SIZE):
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise DownloadError(
                            f"{label} sent more than the {max_bytes} bytes expected; stopped.",
                            status=response.status_code,
                            method="GET",
                            path=without_query(url),
                        )
                    fileobj.write(chunk)
            except requests.RequestException as exc:
                # ``from None``: the cause's message would quote the signed URL.
                raise TransientError(
                    f"{label} broke off after {written} bytes ({type(exc).__name__}).",
                    method="GET",
                    path=without_query(url),
                ) from None
        logger.info("Downloaded %d bytes from %s", written, label)
        return written

    # Internals

    def _redirect_target(
        self,
        label: str,
        url: str,
        response: requests.Response,
        url_origin: tuple[str, str, int],
    ) -> str:
        """Where a storage redirect points, if it stays on ``url``'s origin."""
        location = response.headers.get("Location", "")
        details: dict[str, Any] = {
            "status": response.status_code,
            "method": "GET",
            "path": without_query(url),
        }
        try:
            refuse_ambiguous(location)
            target = urljoin(url, location)
            same_origin = origin(target) == url_origin
        except UnsafeURL as error:
            raise DownloadError(
                f"{label} redirected to a URL that {error}; refusing to follow.", **details
            ) from None
        if not same_origin:
            raise DownloadError(
                f"{label} redirected to another host ({format_origin(target)}); "
                "refusing to follow.",
                **details,
            )
        return target

    def _url(self, path: str, params: dict[str, Any] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url}{path}{query}"

    def _next_url(
        self, label: str, current: str, next_url: str | None, seen: set[str]
    ) -> str | None:
        if next_url is None:
            return None
        try:
            refuse_ambiguous(next_url)
            target = urljoin(current, next_url)
            same_origin = origin(target) == self._origin
        except UnsafeURL as error:
            raise MalformedResponse(
                f"{label} returned a `next` link that {error}; refusing to send the API key there."
            ) from None
        if not same_origin:
            raise MalformedResponse(
                f"{label} returned a `next` link on another origin ({format_origin(target)}, "
                f"expected {format_origin(self.base_url)}); refusing to send the API key there."
            )
        if target in seen:
            raise MalformedResponse(f"{label} returned a `next` link to a page already read.")
        return target

    def _get_object(self, path: str) -> dict[str, Any]:
        response = self._send("GET", self._url(path))
        return self._parse_object(response, "GET")

    def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send("POST", self._url(path), json=body)
        return self._parse_object(response, "POST")

    def _delete(self, path: str) -> None:
        response = self._send("DELETE", self._url(path))
        self._raise_for_status(response, "DELETE")

    def _parse_object(self, response: requests.Response, method: str) -> dict[str, Any]:
        """The JSON object of a successful response, or the matching exception."""
        self._raise_for_status(response, method)
        label = request_label(method, response.url)
        try:
            data = loads_bounded(response.content)
        except ValueError as error:
            content_type = response.headers.get("Content-Type", "no content type")
            raise MalformedResponse(
                f"{label} returned {response.status_code} with a body that is not JSON "
                f"we can read ({content_type}, {len(response.content)} bytes: "
                f"{redact(str(error), self.account.api_key)[:200]}).",
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"{label} returned {type(data).__name__} where a JSON object was expected.",
                status=response.status_code,
            )
        return data

    def _raise_for_status(self, response: requests.Response, method: str) -> None:
        if response.status_code >= 300:
            raise error_for_response(
                response,
                method=method,
                label=request_label(method, response.url),
                secret=self.account.api_key,
                now=self._clock(),
            )

    def _send(
        self, method: str, url: str, *, storage: bool = False, **kwargs: Any
    ) -> requests.Response:
        """Send one request, retrying idempotent ones; return the final response.

        Raises :class:`TransientError` for a connection error or timeout (at once for a
        POST, whose outcome is then unknown) and for a retryable status that outlived
        the retries; other statuses are returned for the caller to judge. ``storage``
        requests go out without TensorPix credentials and are named without their
        query string, which holds the presigned URL's signature, and are returned
        unread (streamed); API responses are read here, within ``RESPONSE_TIMEOUT`` and
        ``MAX_RESPONSE_BYTES``.
        """
        session = self._storage_session if storage else self._session
        label = f"{method} {without_query(url)}" if storage else request_label(method, url)
        if not storage:
            self._check_api_url(url, label)
        idempotent = method in IDEMPOTENT_METHODS
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = session.request(
                    method, url, timeout=self._timeout, allow_redirects=False, stream=True, **kwargs
                )
                if not storage:
                    # Counted from the answer's headers: an upload's own sending time is
                    # not the server's to bound.
                    read_body(
                        response,
                        deadline=time.monotonic() + self._response_timeout,
                        max_bytes=self._max_response_bytes,
                        label=label,
                    )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = _describe_transport_error(exc)
                if not idempotent or attempt >= self._retry.max_retries:
                    path = without_query(url) if storage else urlsplit(url).path
                    error = _transport_error(label, problem, method, path, attempt + 1)
                    # A storage URL's signature would show in the cause's message.
                    raise error from (None if storage else exc)
                wait = self._retry.backoff(attempt)
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ):
                raise MalformedResponse(
                    f"{label} failed: the response body was cut short or garbled."
                ) from None
            except TransientError as error:
                # The body timed out (RESPONSE_TIMEOUT or READ_TIMEOUT): as any timeout,
                # retried when idempotent.
                if not idempotent:
                    raise OutcomeUnknown(
                        f"{error}; the outcome is unknown: TensorPix may have acted on the "
                        "request.",
                        method=method,
                        path=error.path,
                        status=error.status,
                    ) from None
                if attempt >= self._retry.max_retries:
                    raise
                problem = "the response's body timed out"
                wait = self._retry.backoff(attempt)
            else:
                logger.debug(
                    "%s -> %s in %.3fs", label, response.status_code, time.monotonic() - started
                )
                if not idempotent or response.status_code not in RETRYABLE_STATUSES:
                    return response
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), now=self._clock()
                )
                too_long = retry_after is not None and retry_after > self._retry.retry_after_max
                if attempt >= self._retry.max_retries or too_long:
                    with response:
                        raise error_for_response(
                            response,
                            method=method,
                            label=label,
                            attempts=attempt + 1,
                            secret=self.account.api_key,
                            now=self._clock(),
                        )
                wait = self._retry.backoff(attempt) if retry_after is None else retry_after
                problem = f"{response.status_code} {response.reason or ''}".rstrip()
                response.close()
            attempt += 1
            logger.warning(
                "%s failed (%s); retry %d of %d in %.2fs",
                label,
                problem,
                attempt,
                self._retry.max_retries,
                wait,
            )
            self._sleep(wait)

    def _check_api_url(self, url: str, label: str) -> None:
        """Refuse to send the API key anywhere but the base URL's origin.

        The last line of defence: whatever built ``url``, it is read here as requests will
        connect to it.
        """
        try:
            same_origin = origin(url) == self._origin
        except UnsafeURL as error:
            raise MalformedResponse(
                f"Refusing to send the API key to a URL that {error}."
            ) from None
        if not same_origin:
            raise MalformedResponse(
                f"{label}: refusing to send the API key to {format_origin(url)}, another "
                f"origin than {format_origin(self.base_url)}."
            )


class _TokenAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Token <key>`` (TensorPix's scheme: "Token", not "Bearer").

    Set as the session's auth rather than a default header so that requests does not
    swap it for ~/.netrc credentials, and so that its repr stays key-free.
    """

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Token {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "<TokenAuth>"


def _describe_transport_error(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.Timeout):
        return "timed out waiting for the response"
    return f"connection error ({type(exc).__name__})"


def _transport_error(
    label: str, problem: str, method: str, path: str, attempts: int
) -> TransientError:
    if method in IDEMPOTENT_METHODS:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        message = f"{label} failed: {problem} (gave up after {tries})."
    else:
        message = (
            f"{label} failed: {problem}; the outcome is unknown: "
            "TensorPix may have acted on the request."
        )
        return OutcomeUnknown(message, method=method, path=path)
    return TransientError(message, method=method, path=path)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (as :func:`~django_tensorpix._http.origin` gives it) is loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
