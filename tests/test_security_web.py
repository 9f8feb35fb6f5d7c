"""Free text is escaped wherever it is shown (portal, admin, API), and CSRF guards every form."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests import factories
from tests.conftest import need_service
from tests.dosing import daily_course
from tests.e2e.services import redis_answers, redis_url
from tracker.models import PlannedDose
from tracker.services.assessments import EffectReport, report_side_effects
from tracker.services.doses import record_dose, report_outside_clinic

pytestmark = pytest.mark.django_db
SCRIPT = "<script>alert('stored')</script>"


def assert_escaped(html: str) -> None:
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(" in html


@pytest.fixture
def patient_user(patient):
    patient.user = factories.UserFactory(username="escaping-patient")
    patient.save()
    return patient.user


@pytest.fixture
def stored_script(patient, clinician, patient_user):
    """A skip reason, a side-effect description and an outside-clinic note, each holding a script."""
    today = timezone.localdate(timezone.now().astimezone(patient.zone))
    rx = daily_course(patient, clinician, start=(today - timezone.timedelta(days=1)).isoformat(), times=("00:01",))
    dose = PlannedDose.objects.filter(prescription=rx, local_date=today).get()
    record_dose(
        prescription=rx,
        planned_dose=dose,
        occurred_at=dose.due_at,
        reporter="patient",
        outcome="skipped",
        skip_reason=SCRIPT,
        recorded_by=patient_user,
    )
    report_side_effects(patient=patient, effects=[EffectReport("other", "severe", description=SCRIPT)])
    esk = daily_course(patient, clinician, name="esketamine", dose="56", kind="weekdays", weekdays=(1,))
    report_outside_clinic(prescription=esk, occurred_at=timezone.now(), reporter="patient", note=SCRIPT)
    return patient


def test_portal_escapes_the_patients_own_free_text(client, stored_script, patient_user):
    client.force_login(patient_user)
    assert_escaped(client.get(reverse("portal:today")).content.decode())


def test_admin_escapes_free_text_on_the_worklist_timeline_and_record_pages(client, stored_script, clinician):
    client.force_login(clinician.user)
    assert_escaped(client.get(reverse("admin:index")).content.decode())  # the flag quotes the note
    assert_escaped(client.get(reverse("admin:tracker_patient_timeline", args=[stored_script.pk])).content.decode())
    report = stored_script.side_effects.get()
    assert_escaped(client.get(reverse("admin:tracker_sideeffectreport_change", args=[report.pk])).content.decode())


def test_api_returns_free_text_as_json_data_and_escapes_it_in_the_browsable_view(stored_script, clinician):
    api = Client()
    key = Token.objects.create(user=clinician.user).key
    response = api.get("/api/side-effects/", HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT="application/json")
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["results"][0]["description"] == SCRIPT  # data, not markup
    html = api.get("/api/side-effects/", HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT="text/html")
    assert html["Content-Type"].startswith("text/html")
    assert_escaped(html.content.decode())


@pytest.mark.parametrize(
    "url",
    ["/accounts/login/", "/admin/login/", "/accounts/password/change/", "portal:questionnaire"],
)
def test_forms_refuse_a_post_without_the_csrf_token(url, patient_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient_user)
    target = reverse(url, args=["phq9"]) if ":" in url else url
    assert client.post(target, {"username": "x", "password": "y"}).status_code == 403


def test_dose_log_refuses_a_post_without_the_csrf_token(patient, clinician, patient_user):
    rx = daily_course(patient, clinician, start=timezone.localdate().isoformat())
    dose = PlannedDose.objects.filter(prescription=rx).first()
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient_user)
    assert client.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"}).status_code == 403
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.PENDING


def test_api_with_a_session_needs_the_csrf_token_but_a_token_client_does_not(patient, patient_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(patient_user)
    body = json.dumps({"patient": patient.pk, "instrument": "gad7", "answers": [0] * 7})
    assert client.post("/api/assessments/", body, content_type="application/json").status_code == 403
    key = Token.objects.create(user=patient_user).key
    token_client = Client(enforce_csrf_checks=True)
    response = token_client.post(
        "/api/assessments/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 201


# --- Headers and endpoints (issue 14) ----------------------------------------------------------


def test_every_page_carries_a_content_security_policy_without_inline_script(client, clinician, patient_user):
    client.force_login(clinician.user)
    pages = ["/admin/", reverse("admin:tracker_patient_changelist"), "/api/docs/", "/api/patients/", "/health/"]
    for url in pages:
        policy = client.get(url).headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy, url
    portal = Client()
    assert "default-src 'self'" in portal.get(reverse("login")).headers["Content-Security-Policy"]


def test_swagger_ui_runs_no_inline_script(admin_client):
    page = admin_client.get("/api/docs/").content.decode()
    scripts = page.split("<script")[1:]
    assert scripts and all(tag.lstrip().startswith("src=") for tag in scripts), scripts
    init = admin_client.get("/api/docs/?script=")
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in init.content.decode()


def test_schema_and_docs_are_for_signed_in_staff(client, patient, patient_user, clinician):
    assert client.get("/api/schema/").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/admin/login/")
    patient_token = Token.objects.create(user=patient_user)
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {patient_token.key}").status_code == 403
    staff_token = Token.objects.create(user=clinician.user)
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {staff_token.key}").status_code == 200


def test_health_answers_plain_http_even_with_the_https_redirect_on(settings):
    settings.SECURE_SSL_REDIRECT = True
    plain = Client()  # a new client builds its middleware under the setting
    assert plain.get("/health/").status_code == 200
    assert plain.get("/accounts/login/").status_code == 301


HEALTHY = {"status": "ok", "database": "ok", "broker": "ok"}
BROKER_DOWN = {"status": "failed", "database": "ok", "broker": "failed"}


def health(settings) -> tuple[int, dict, float]:
    settings.SECURE_SSL_REDIRECT = True  # a plain-HTTP probe, as a load balancer sends
    started = time.monotonic()
    response = Client().get("/health/")
    return response.status_code, response.json(), time.monotonic() - started


def test_health_with_the_embedded_broker_is_ok_while_its_folder_exists(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    assert health(settings)[:2] == (200, HEALTHY)
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone")}
    assert health(settings)[:2] == (503, BROKER_DOWN)


def test_health_asks_redis_itself(settings):
    url = redis_url()
    need_service(redis_answers(url), f"Redis does not answer at {url}")
    settings.CELERY_BROKER_URL = url
    assert health(settings)[:2] == (200, HEALTHY)


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never answers, like a hung broker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_health_is_503_naming_the_broker_when_it_is_down(settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/0"
    status, body, seconds = health(settings)
    assert (status, body) == (503, BROKER_DOWN)
    assert seconds < 3


def test_health_gives_up_on_a_broker_that_never_answers_within_seconds(settings, silent_port):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_port}/0"
    status, body, seconds = health(settings)
    assert (status, body) == (503, BROKER_DOWN)
    assert seconds < 5, "a load balancer's probe must not hang on the broker"


def test_health_is_503_naming_the_database_when_it_does_not_answer(settings, tmp_path, monkeypatch):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}

    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", refused)
    status, body, _ = health(settings)
    assert (status, body) == (503, {"status": "failed", "database": "failed", "broker": "ok"})
