"""A real Celery worker process on a real Redis broker, sharing the test's PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import need_service
from tests.e2e.services import WorkerProcess, redis_answers, redis_url, start_worker


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path) -> Iterator[WorkerProcess]:
    """A real worker on the machine's Redis (a private queue), sharing the test database."""
    need_service(connection.vendor == "postgresql", "a worker process needs the test database on PostgreSQL")
    url = redis_url()
    need_service(redis_answers(url), f"Redis does not answer at {url}")
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    worker = start_worker(url, queue, tmp_path / "worker.log", queue)
    try:
        yield worker
    finally:
        worker.stop()


# --- Real headless Chromium for the browser tests (stack-notes §4) ---------------------------
# pytest-playwright drives Debian's chromium through executable_path: no browser download.
# Tests that use `page` also touch the ORM, which Django refuses inside Playwright's event loop
# unless this is set.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    need_service(
        Path(CHROMIUM_PATH).exists(),
        f"Chromium not found at {CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)",
    )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM_PATH,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


# --- Shared by the browser tests ----------------------------------------------------------

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory


@pytest.fixture
def shots(output_path: str) -> Path:
    """Where screenshots go: pytest-playwright's output folder (test-results/ unless --output)."""
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
