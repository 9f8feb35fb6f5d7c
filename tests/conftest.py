"""Shared fixtures: personas (two clinics, their clinicians and patients) and service gates."""

from __future__ import annotations

import importlib
import os

import pytest

from tests import factories

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def need_service(available: bool, reason: str) -> None:
    """Skip locally when a real service is absent; fail in CI (REQUIRE_SERVICES=1)."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def _reseed_migration_data() -> None:
    """Put back the drug catalogue the data migration seeds (role groups are recreated on
    demand by tracker.services.clinicians)."""
    from django.apps import apps

    from tracker.models import Drug

    if not Drug.objects.exists():
        importlib.import_module("tracker.migrations.0002_seed_drug_catalogue").seed(apps, None)


@pytest.fixture(autouse=True)
def _keep_seeded_rows_in_transactional_tests(request: pytest.FixtureRequest) -> None:
    """Transactional tests end by emptying every table, which also removes the rows the
    migrations seed; the next such test gets them back, so test order never matters."""
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    if transactional or {"transactional_db", "live_server"} & set(request.fixturenames):
        request.getfixturevalue("transactional_db")
        _reseed_migration_data()


@pytest.fixture
def clinic(db):
    return factories.ClinicFactory(name="Northside Clinic", slug="northside")


@pytest.fixture
def other_clinic(db):
    return factories.ClinicFactory(name="Southside Clinic", slug="southside")


@pytest.fixture
def clinician(clinic):
    return factories.ClinicianFactory(clinic=clinic, user__username="dr-north")


@pytest.fixture
def other_clinician(other_clinic):
    return factories.ClinicianFactory(clinic=other_clinic, user__username="dr-south")


@pytest.fixture
def patient(clinic, clinician):
    return factories.PatientFactory(clinic=clinic, responsible_clinician=clinician, record_number="N-0001")


@pytest.fixture
def other_patient(other_clinic, other_clinician):
    return factories.PatientFactory(clinic=other_clinic, responsible_clinician=other_clinician, record_number="S-0001")


def pytest_configure(config: pytest.Config) -> None:
    """The portal's compiled translations (locale/*/django.mo) are not committed: build them once."""
    from tracker.portal.catalogues import compile_catalogues

    compile_catalogues()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Name the database and broker in the log, so a CI run shows it really ran on PostgreSQL."""
    from urllib.parse import urlsplit

    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        test_name = db.get("TEST", {}).get("NAME") or "in-memory"
        where = ""
    else:
        test_name = db.get("TEST", {}).get("NAME") or f"test_{db['NAME']}"
        where = f" on {db.get('HOST') or 'local socket'}:{db.get('PORT') or 'default port'}"
    broker = urlsplit(settings.CELERY_BROKER_URL)  # printed without any password
    port = f":{broker.port}" if broker.port else ""
    return [
        f"database: {connection.vendor}, test database {test_name} (from {db['NAME']}){where}",
        f"celery broker: {broker.scheme}://{broker.hostname or ''}{port}{broker.path}",
    ]
