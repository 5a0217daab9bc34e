"""A TensorPix emulator for tests and demos: a real HTTP server on loopback.

>>> from django_tensorpix.testing import TensorPixEmulator
>>> with TensorPixEmulator(api_key="test-key") as emulator:
...     emulator.base_url  # doctest: +SKIP
'http://127.0.0.1:40123'

See "Testing with the TensorPix emulator" in the README for the pytest fixtures, the
CLI, fault injection and the clock.
"""

from .emulator import TensorPixEmulator
from .faults import FAULT_KINDS, FaultRule
from .records import CANCELED, FAILED, FINISHED, IN_QUEUE, PROCESSING
from .server import RequestRecord

__all__ = [
    "CANCELED",
    "FAILED",
    "FAULT_KINDS",
    "FINISHED",
    "IN_QUEUE",
    "PROCESSING",
    "FaultRule",
    "RequestRecord",
    "TensorPixEmulator",
]
