"""``TensorPixEmulator``: the public face of the emulator.

Starts the loopback server, and gives tests the knobs that the real TensorPix does not
have: the clock, seeding, deterministic failures, fault injection and a request log.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any, Generic, TypeVar

from .api import TensorPixAPI
from .catalogue import DEFAULT_CATALOGUE, MLModel
from .clock import Clock
from .faults import UNLIMITED, FaultInjector, FaultRule
from .listing import LIST_ORDERS
from .records import CANCELED, FAILED, FINISHED, IN_QUEUE, PROCESSING
from .render import Renderer
from .seeding import seed_jobs
from .server import EmulatorHTTPServer, RequestRecord
from .state import EmulatorState
from .storage import URLSigner

T = TypeVar("T")
_DEFAULT_TIMES: Any = object()


class _StateSetting(Generic[T]):
    """An emulator attribute that reads and writes the state under its lock."""

    def __init__(self, convert: Callable[[Any], T] | None = None) -> None:
        self._convert = convert

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, emulator: TensorPixEmulator, owner: type | None = None) -> T:
        with emulator.state.lock:
            value: T = getattr(emulator.state, self.name)
            return value

    def __set__(self, emulator: TensorPixEmulator, value: T) -> None:
        with emulator.state.lock:
            emulator.state.settle()
            setattr(emulator.state, self.name, self._convert(value) if self._convert else value)


class TensorPixEmulator:
    """A fake TensorPix account served over HTTP on loopback.

    ``speed=None`` gives a manual clock that only :meth:`advance` moves; a number runs
    simulated time that many times faster than real time. ``seed`` makes every random
    choice (failure draws, shuffled order, eta noise, probabilistic faults) repeatable.
    """

    balance = _StateSetting[Decimal](lambda value: Decimal(str(value)))
    storage_quota = _StateSetting[int]()
    max_active_jobs = _StateSetting[int]()
    failure_rate = _StateSetting[float]()
    queue_delay = _StateSetting[float]()
    upload_processing_s = _StateSetting[float]()
    output_size_range = _StateSetting[tuple[int, int]]()
    owner_email = _StateSetting[str]()
    owner_id = _StateSetting[int]()

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        port: int = 0,
        seed: int = 0,
        speed: float | None = None,
        catalogue: bool = True,
        host: str = "127.0.0.1",
        url_ttl: float = 3600.0,
    ) -> None:
        self.api_key = api_key
        self.clock = Clock(speed)
        self.state = EmulatorState(self.clock, seed=seed, catalogue=catalogue)
        self.signer = URLSigner(secrets.token_bytes(32), url_ttl)
        self.faults = FaultInjector(seed)
        self.api = TensorPixAPI(self.state, self.signer, api_key)
        self._host, self._port = host, port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        self._model_ids = itertools.count(max((m.id for m in DEFAULT_CATALOGUE), default=0) + 1)

    def __repr__(self) -> str:
        return f"<TensorPixEmulator {self.base_url if self._server else '(stopped)'}>"

    # -- lifecycle of the server -------------------------------------------------------

    def start(self) -> TensorPixEmulator:
        if self._server is not None:
            return self
        self._server = EmulatorHTTPServer(
            (self._host, self._port), self.api, self.faults, self._record
        )
        self.api.storage_base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="tensorpix-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TensorPixEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://{self._host}:{self.port}"

    # -- clock -------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's current time in epoch seconds."""
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move the clock forward; queued jobs start and running jobs progress or end."""
        self.clock.advance(seconds)
        self.state.settle()

    # -- seeding -----------------------------------------------------------------------

    def seed_jobs(self, n: int, status: int | None = None) -> list[int]:
        """Create ``n`` jobs straight in the state (no HTTP), oldest first.

        ``status=None`` gives a realistic mix (mostly Finished, some Failed and Canceled,
        the newest few still active); Finished jobs have their output video.
        """
        if status not in (None, IN_QUEUE, PROCESSING, FINISHED, FAILED, CANCELED):
            raise ValueError(f"unknown job status {status!r}")
        return seed_jobs(self.state, n, status)

    def add_video(self, **overrides: Any) -> int:
        """An uploaded video that is ready for a job (``file`` set); returns its id.

        ``overrides`` set any :class:`~.records.Video` field (``name``, ``size``,
        ``width``, ``height``, ``n_frames``, ``framerate``...).
        """
        name = overrides.pop("name", "sample_720p.mp4")
        size = overrides.pop("size", 2_500_000)
        with self.state.lock:
            video = self.state.add_upload(name, size, **overrides)
            video.ready_at = video.created_at
            return video.id

    def add_ml_model(self, name: str, task: int, **fields: Any) -> int:
        """Add an AI filter to the catalogue (e.g. with ``catalogue=False``)."""
        model = MLModel(next(self._model_ids), name, task, fields.pop("cost_weight", 1.0))
        model = replace(model, **fields)
        with self.state.lock:
            self.state.ml_models[model.id] = model
        return model.id

    def fail_job(self, job_id: int) -> None:
        """Make an active job end Failed; raises ``ValueError`` if it already ended."""
        self.state.fail_job(job_id)

    # -- inspection --------------------------------------------------------------------

    def job_payload(self, job_id: int) -> dict[str, Any]:
        """What ``GET /api/jobs/{id}/`` would return now (URLs freshly signed)."""
        with self.state.lock:
            job = self.state.get_job(job_id)
            return self._renderer().job(job)

    @property
    def storage_used(self) -> int:
        with self.state.lock:
            return self.state.storage_used

    @property
    def list_order(self) -> str:
        return self.state.list_order

    @list_order.setter
    def list_order(self, order: str) -> None:
        if order not in LIST_ORDERS:
            raise ValueError(f"list_order must be one of {LIST_ORDERS}")
        with self.state.lock:
            self.state.list_order = order

    def _renderer(self) -> Renderer:
        base = self.base_url if self._server else "http://127.0.0.1"
        return Renderer(self.state, self.signer, base, self.state.settle())

    # -- faults ------------------------------------------------------------------------

    def inject(
        self,
        route: str,
        kind: str,
        *,
        times: int | None = _DEFAULT_TIMES,
        probability: float | None = None,
        status: int | None = None,
        retry_after: int | float | str | None = None,
        delay: float | None = None,
    ) -> FaultRule:
        """Make ``route`` ("GET /api/jobs/{id}/", "POST *", "*") fail as ``kind`` says.

        Fires on the next ``times`` matching calls (default 1); with a ``probability`` it
        fires on each matching call with that seeded chance, ``times`` times at most
        (default: without limit). ``times=None`` means without limit.
        """
        known = {route.name for route in self.api.routes}
        method, _, path = route.partition(" ")
        if route != "*" and route not in known and not (path == "*" and method.isupper()):
            raise ValueError(
                f"unknown route {route!r}; use '*', 'POST *' or one of {sorted(known)}"
            )
        if times is _DEFAULT_TIMES:
            times = None if probability is not None else 1
        rule = FaultRule(
            route=route,
            kind=kind,
            remaining=UNLIMITED if times is None else times,
            probability=probability,
            status=status,
            retry_after=retry_after,
            delay=delay,
        )
        return self.faults.add(rule)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- request log -------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._requests_lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far, in order (a copy)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()
