"""Property: hostile values at every write endpoint and form are a 4xx (or a form error), never a 5xx.

Issue 14. Hypothesis throws values no clinician or patient would type at each field of each API
write operation (POST and PATCH in the OpenAPI schema) and of the main admin and portal forms:
strings beyond any column, NUL bytes (PostgreSQL refuses them in text), lone surrogates (UTF-8
cannot encode them), numbers beyond 64 bits or non-finite, JSON nested beyond the parser's limit,
wrong types and empty strings. Each example runs in a savepoint that is rolled back, so every
example meets the same world. A 400 must name the field (or, for a body the parser refuses, say
why); a form must come back with an error beside a field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

EXAMPLES = 12  # per endpoint or form; the whole module stays well under a minute on SQLite
RAW = "__raw__"  # a JSON token (1e999, NaN) that json.dumps cannot write, spliced in after encoding

# --- hostile values ---------------------------------------------------------------------------

long_text = st.sampled_from([101, 256, 501, 1_001, 5_001, 100_001]).map(lambda n: "x" * n)
nul_text = st.text(max_size=10).map(lambda s: f"{s}\x00{s}")
lone_surrogate = st.sampled_from(["\ud800", "a\udfffb", "\udc00\ud800"])
huge_number = st.sampled_from([10**30, -(10**30), 2**63, -(2**63) - 1, 2**31, 1e308, -1e308, 5e-324])
non_finite = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity"]).map(lambda t: (RAW, t))
nested = st.integers(min_value=33, max_value=120).map(lambda d: functools.reduce(lambda v, _: [v], range(d), 1))
wrong_type = st.sampled_from([None, True, False, [], {}, [1, 2], {"a": 1}, 1.5, -1, 0, " ", "abc", "2026-13-45"])
HOSTILE_JSON = st.one_of(
    long_text, nul_text, lone_surrogate, huge_number, non_finite, nested, wrong_type, st.just(""), st.text(max_size=30)
)


def encode(body: Any) -> str:
    """JSON with surrogates escaped (``\\ud800``, as a hostile client sends them) and raw tokens spliced in."""
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, tuple) and value and value[0] == RAW:
            raws.append(value[1])
            return f"{RAW}{len(raws) - 1}"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(body), ensure_ascii=True)
    for i, token in enumerate(raws):
        text = text.replace(f'"{RAW}{i}"', token)
    return text


def names(body: Any) -> set[str]:
    """Every key anywhere in an error body."""
    found: set[str] = set()
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            found |= set(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


# --- the API: every POST and PATCH operation ----------------------------------------------------


def today() -> str:
    return timezone.localdate().isoformat()


def now_text() -> str:
    return (timezone.now() - timezone.timedelta(minutes=5)).isoformat()


# (method, path template as in the schema, path id from the world, a valid body, personas)
CLINICIAN = ("clinician",)
PATIENT_TOO = ("clinician", "patient_a")
Op = tuple[str, str, Callable[[World], int | None], Callable[[World], dict], tuple[str, ...]]
REASON: Callable[[World], dict] = lambda w: {"reason": "Wrong patient"}  # noqa: E731
OPS: list[Op] = [
    (
        "post",
        "/api/assessments/",
        lambda w: None,
        lambda w: {"patient": w.patient_a.pk, "instrument": "gad7", "answers": [1] * 7},
        PATIENT_TOO,
    ),
    ("post", "/api/assessments/{id}/entered-in-error/", lambda w: w.assessment.pk, REASON, CLINICIAN),
    (
        "post",
        "/api/dose-events/",
        lambda w: None,
        lambda w: {
            "prescription": w.rx.pk,
            "occurred_at": now_text(),
            "skipped": False,
            "skip_reason": "",
            "note": "ok",
        },
        PATIENT_TOO,
    ),
    ("post", "/api/dose-events/{id}/entered-in-error/", lambda w: w.event.pk, REASON, CLINICIAN),
    (
        "post",
        "/api/dose-events/outside-clinic-report/",
        lambda w: None,
        lambda w: {"prescription": w.esketamine.pk, "occurred_at": now_text(), "note": "At home"},
        PATIENT_TOO,
    ),
    ("post", "/api/flags/{id}/acknowledge/", lambda w: w.flag.pk, lambda w: {"note": "seen"}, CLINICIAN),
    (
        "post",
        "/api/flags/{id}/resolve/",
        lambda w: w.flag.pk,
        lambda w: {"note": "Called; safe, plan agreed"},
        CLINICIAN,
    ),
    (
        "post",
        "/api/in-clinic-sessions/",
        lambda w: None,
        lambda w: {"prescription": w.esketamine.pk, "bp_before_systolic": 126, "bp_before_diastolic": 80},
        CLINICIAN,
    ),
    (
        "patch",
        "/api/in-clinic-sessions/{id}/",
        lambda w: w.session.pk,
        lambda w: {
            "adverse_events": "Mild nausea",
            "spo2_lowest": 97,
            "lot_number": "A1",
            "addendum_reason": "Late entry",
            "cadss_total": 3,
        },
        CLINICIAN,
    ),
    ("post", "/api/in-clinic-sessions/{id}/entered-in-error/", lambda w: w.session.pk, REASON, CLINICIAN),
    ("post", "/api/in-clinic-sessions/{id}/sign-off/", lambda w: w.session.pk, lambda w: {"note": "x"}, CLINICIAN),
    (
        "post",
        "/api/measurements/",
        lambda w: None,
        lambda w: {"patient": w.patient_a.pk, "kind": "hdl", "value": "52"},
        CLINICIAN,
    ),
    ("post", "/api/measurements/{id}/entered-in-error/", lambda w: w.pulse.pk, REASON, CLINICIAN),
    (
        "post",
        "/api/prescriptions/",
        lambda w: None,
        lambda w: {
            "patient": w.patient_a.pk,
            "drug": w.rx.drug_id,
            "dose": "25",
            "start_date": today(),
            "indication": "MDD",
            "schedules": [{"times_of_day": ["09:00"]}],
        },
        CLINICIAN,
    ),
    (
        "post",
        "/api/prescriptions/{id}/change-dose/",
        lambda w: w.rx.pk,
        lambda w: {"new_dose": "100", "effective_date": today(), "reason": "Titration"},
        CLINICIAN,
    ),
    ("post", "/api/prescriptions/{id}/entered-in-error/", lambda w: w.rx.pk, REASON, CLINICIAN),
    (
        "post",
        "/api/prescriptions/{id}/reschedule/",
        lambda w: w.rx.pk,
        lambda w: {"reason": "Evening suits", "schedules": [{"times_of_day": ["21:00"]}]},
        CLINICIAN,
    ),
    (
        "post",
        "/api/prescriptions/{id}/stop/",
        lambda w: w.rx.pk,
        lambda w: {"end_date": today(), "reason": "Remission"},
        CLINICIAN,
    ),
    (
        "post",
        "/api/prescriptions/preview/",
        lambda w: None,
        lambda w: {
            "patient": w.patient_a.pk,
            "drug": w.rx.drug_id,
            "start_date": today(),
            "schedules": [{"times_of_day": ["09:00"]}],
        },
        CLINICIAN,
    ),
    (
        "post",
        "/api/side-effects/",
        lambda w: None,
        lambda w: {"patient": w.patient_a.pk, "effect": "headache", "severity": "moderate", "description": "dull"},
        PATIENT_TOO,
    ),
    ("post", "/api/side-effects/{id}/entered-in-error/", lambda w: w.side_effect.pk, REASON, CLINICIAN),
    (
        "post",
        "/api/weight-measurements/",
        lambda w: None,
        lambda w: {"patient": w.patient_a.pk, "weight_kg": "73.1"},
        CLINICIAN,
    ),
    ("post", "/api/weight-measurements/{id}/entered-in-error/", lambda w: w.weight.pk, REASON, CLINICIAN),
]
API_CASES = [(op, persona) for op in OPS for persona in op[4]]


@functools.cache
def schema_write_operations() -> set[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {(m, p) for p, ops in schema["paths"].items() for m in ops if m in ("post", "patch", "put")}


@functools.cache
def request_fields(method: str, path: str) -> tuple[str, ...]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    content = schema["paths"][path][method].get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    return tuple(component.get("properties", {}))


def test_the_cases_cover_every_write_operation_in_the_schema():
    assert {(m, p) for m, p, *_ in OPS} == schema_write_operations()


def ensure_pulse(world: World) -> None:
    from tracker.services.measurements import record_measurement

    if not hasattr(world, "pulse"):
        world.pulse = record_measurement(patient=world.patient_a, kind="pulse", value=72, recorded_by=None)


def assert_answer(response, fields: set[str], where: str) -> None:
    """Never a 5xx; a 400 names a field of the request (or the whole body's fault, in words)."""
    assert response.status_code < 500, (where, response.status_code, response.content[:300])
    if response.status_code != 400:
        return
    body = response.json()
    keys = names(body)
    if "detail" in keys and isinstance(body, dict) and set(body) == {"detail"}:
        # The parser or the view refused the body as a whole; it says why in words.
        assert str(body["detail"]).strip(), where
        return
    assert keys & (fields | {"non_field_errors"}), (where, fields, body)


HOSTILE_EDIT = st.tuples(
    st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=3),
    st.lists(HOSTILE_JSON, min_size=3, max_size=3),
)


@pytest.mark.parametrize(("op", "persona"), API_CASES, ids=[f"{op[0]}-{op[1]}-{persona}" for op, persona in API_CASES])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edit=HOSTILE_EDIT)
def test_hostile_values_at_api_writes(world: World, op: Op, persona: str, edit) -> None:
    method, template, pk_of, body_of, _ = op
    ensure_pulse(world)
    fields = sorted(set(request_fields(method, template)) | set(body_of(world)))
    picks, values = edit
    body = body_of(world)
    mutated = set()
    for pick, value in zip(picks, values, strict=False):
        field = fields[pick % len(fields)]
        body[field] = value
        mutated.add(field)
    pk = pk_of(world)
    url = template.replace("{id}", str(pk))
    with transaction.atomic():
        client = client_for(world, persona)
        response = getattr(client, method)(url, encode(body), content_type="application/json")
        assert_answer(response, set(fields), f"{method.upper()} {url} as {persona} ({sorted(mutated)})")
        transaction.set_rollback(True)


# --- the admin's service forms and the portal's forms -------------------------------------------

# Form posts are URL-encoded bytes, so a lone surrogate arrives as the bytes UTF-8 forbids for one.
SURROGATE_BYTES = b"\xed\xa0\x80"
HOSTILE_FORM = st.one_of(
    long_text.map(str.encode),
    nul_text.map(str.encode),
    st.just(SURROGATE_BYTES),
    st.sampled_from(
        ["1e999", "-1e999", "NaN", "inf", "99999999999999999999999", "-1", "0", "2026-13-45", "25:99", " "]
    ).map(str.encode),
    st.just(b""),
    st.text(max_size=30).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


def form_fields(response) -> tuple[object | None, dict[str, str]]:
    """The page's form and its fields' initial values, as a browser would post them unchanged."""
    context = response.context
    form = context.get("form") or getattr(context.get("adminform"), "form", None)
    if form is None:
        return None, {}
    values = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        values[form.add_prefix(name)] = "" if value is None else str(value)
    return form, values


def form_errors(response) -> list:
    """Every error on the page's forms and formsets."""
    context = response.context
    errors = []
    for key in ("form", "failed_form", "adminform", "errors", "formset"):
        value = context.get(key) if context else None
        if value is None:
            continue
        form = getattr(value, "form", value)
        if hasattr(form, "errors") and form.errors:
            errors.append(form.errors)
    return errors


# (name, who, URL from the world, extra valid values the page's initial values lack)
Form = tuple[str, str, Callable[[World], str], Callable[[World], dict[str, str]]]


def admin(name: str, model: str, *args_of: Callable[[World], object], query: Callable[[World], str] = lambda w: ""):
    from tests.test_admin_scoping import admin_url

    return lambda w: admin_url(name, model, *(a(w) for a in args_of)) + query(w)


def reverse_of(name: str, *args_of: Callable[[World], object]) -> Callable[[World], str]:
    from django.urls import reverse

    return lambda w: reverse(name, args=[a(w) for a in args_of])


FORMS: list[Form] = [
    (
        "prescribe",
        "clinician",
        admin("prescribe", "prescription", lambda w: w.patient_a.pk),
        lambda w: {"drug": str(w.rx.drug_id), "dose": "50", "start_date": today(), "times_of_day": "09:00"},
    ),
    (
        "change dose",
        "clinician",
        admin("change_dose", "prescription", lambda w: w.rx.pk),
        lambda w: {"new_dose": "100", "effective_date": today(), "reason": "Titration"},
    ),
    (
        "reschedule",
        "clinician",
        admin("reschedule", "prescription", lambda w: w.rx.pk),
        lambda w: {"reason": "Evening suits", "times_of_day": "21:00"},
    ),
    (
        "record a score",
        "clinician",
        reverse_of("admin:tracker_patient_record_score", lambda w: w.patient_a.pk, lambda w: "phq9"),
        lambda w: {f"item_{i}": "1" for i in range(1, 10)},
    ),
    (
        "record a dose",
        "clinician",
        reverse_of("admin:tracker_patient_record_dose", lambda w: w.patient_a.pk),
        lambda w: {"prescription": str(w.rx.pk)},
    ),
    (
        "add a weight",
        "clinician",
        admin("add", "weightmeasurement", query=lambda w: f"?patient={w.patient_a.pk}"),
        lambda w: {"patient": str(w.patient_a.pk), "weight_kg": "71.0"},
    ),
    (
        "add a measurement",
        "clinician",
        admin("add", "clinicalmeasurement", query=lambda w: f"?patient={w.patient_a.pk}"),
        lambda w: {"patient": str(w.patient_a.pk), "kind": "hdl", "value": "52"},
    ),
    (
        "add an in-clinic session",
        "clinician",
        admin("add", "inclinicsession"),
        lambda w: {
            "prescription": str(w.esketamine.pk),
            "care_setting": "outpatient",
            "bp_before_systolic": "126",
            "bp_before_diastolic": "80",
        },
    ),
    (
        "portal: log a dose",
        "patient_a",
        reverse_of("portal:log_dose", lambda w: w.open_planned.pk),
        lambda w: {
            "action": "taken",
            "skip_choice": "",
            "skip_reason": "",
            "taken_at": "",
            "extra_dose": "",
            "client_key": "",
        },
    ),
    (
        "portal: PHQ-9",
        "patient_a",
        reverse_of("portal:questionnaire", lambda w: "phq9"),
        lambda w: {f"q{i}": "1" for i in range(1, 10)},
    ),
    ("portal: weekly check-in", "patient_a", reverse_of("portal:checkin"), lambda w: {}),
    (
        "portal: outside-clinic report",
        "patient_a",
        reverse_of("portal:outside_clinic", lambda w: w.esketamine.pk),
        lambda w: {"note": "At home"},
    ),
]


# Posted from the portal's today page; the fields are the form's own (tracker/portal/forms.py).
POST_ONLY = {"portal: log a dose"}


@pytest.mark.parametrize("form_case", FORMS, ids=[f[0] for f in FORMS])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edit=st.tuples(
        st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=3),
        st.lists(HOSTILE_FORM, min_size=3, max_size=3),
    )
)
def test_hostile_values_at_forms(client, world: World, form_case: Form, edit) -> None:
    from urllib.parse import urlencode

    name, persona, url_of, extra_of = form_case
    url = url_of(world)
    client.force_login(world.users[persona])
    values = extra_of(world)
    if name not in POST_ONLY:
        page = client.get(url)
        assert page.status_code == 200, (name, page.status_code)
        form, values = form_fields(page)
        assert form is not None, name
        values.update(extra_of(world))
    fields = sorted(values)
    picks, hostile = edit
    body: dict[str, bytes | str] = dict(values)
    for pick, value in zip(picks, hostile, strict=False):
        body[fields[pick % len(fields)]] = value
    with transaction.atomic():
        response = client.post(url, urlencode(body), content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, (name, response.status_code)
        if response.status_code in (200, 400):
            assert form_errors(response), (name, "a form came back without an error beside a field")
        transaction.set_rollback(True)
