"""One OS process of the concurrency tests: syncs a listing into the test database.

``python -m tests.sync_worker MODE LISTING.json DIRECTORY ROUNDS`` sets Django up
(``DATABASE_URL`` names the test database; ``SYNC_FAST_PATH=0`` in the environment makes
it write through ``bulk_create``, as on other databases) and, for each round, waits for
``DIRECTORY/start-N`` so that the processes start together, syncs, and writes its result
as JSON to ``DIRECTORY/<pid>-N``. MODE is ``listing`` (the full listing, as
``tensorpix_sync`` syncs it) or ``jobs`` (every third job on its own, as polls do).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast


def main(mode: str, listing_path: str, directory: str, rounds: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    fast = os.environ.get("SYNC_FAST_PATH", "1") == "1"
    override_settings(TENSORPIX={**settings.TENSORPIX, "SYNC_FAST_PATH": fast}).enable()
    from django_tensorpix.client import Page, TensorPixClient
    from django_tensorpix.conf import Account
    from django_tensorpix.sync import sync_full_listing, sync_job

    class Listing:
        """The listing as a client would page it, without HTTP."""

        account = Account("default", "k")

        def iter_job_pages(self) -> Any:
            return iter([Page(page, sum(map(len, pages))) for page in pages])

    pages = json.loads(Path(listing_path).read_text())
    folder = Path(directory)
    (folder / f"ready-{os.getpid()}").touch()
    for round_number in range(int(rounds)):
        while not (folder / f"start-{round_number}").exists():
            time.sleep(0.005)
        if mode == "listing":
            result = sync_full_listing("jobs", cast(TensorPixClient, Listing()))
            outcome: dict[str, int | None] = {"created": result.created, "seen": result.seen}
        else:
            # Every third job, last first: polls meet the listing's pages mid-way.
            polled = [payload for page in pages for payload in page][::-3]
            for payload in polled:
                sync_job(payload)
            outcome = {"created": None, "seen": len(polled)}
        partial = folder / f"{os.getpid()}-{round_number}.part"
        partial.write_text(json.dumps(outcome))
        partial.rename(folder / f"{os.getpid()}-{round_number}")


if __name__ == "__main__":
    main(*sys.argv[1:])
