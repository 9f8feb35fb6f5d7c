"""The crisis page after a self-harm answer: every number is a tel: link, configured per clinic (issue 15)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from tests.test_portal_support import give_login, signed_in
from tracker.management.commands.seed_demo import Command as SeedDemo
from tracker.models import Clinic, CrisisContact

pytestmark = pytest.mark.django_db
# Three or more digits in a row (spaces allowed inside): what a patient would read as a number.
NUMBER = re.compile(r"\+?\d[\d ]*\d")


@pytest.fixture
def portal(client, patient):
    return signed_in(client, give_login(patient, "pat"))


def crisis_section(portal) -> str:
    answers = {f"q{n}": 0 for n in range(1, 9)} | {"q9": 2}
    html = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers, follow=True).content.decode()
    return html[html.index('<section class="crisis"') : html.index("</section>")]


def unlinked_numbers(section: str) -> list[str]:
    """Numbers left in the text once every tel: link (and the markup) is taken out."""
    text = re.sub(r'<a [^>]*href="tel:[^"]+"[^>]*>.*?</a>', "", section, flags=re.S)
    text = re.sub(r"<[^>]+>", "", text)
    return [n for n in NUMBER.findall(text) if len(n.replace(" ", "").lstrip("+")) >= 3]


def test_default_guidance_numbers_are_all_tap_to_call(portal):
    section = crisis_section(portal)
    for tel in ("999", "112", "911", "116123", "988"):
        assert f'href="tel:{tel}"' in section
    assert unlinked_numbers(section) == []


def test_clinic_contacts_follow_the_clinics_own_number_each_as_a_tel_link(portal, patient):
    clinic = patient.clinic
    clinic.phone = "020 7946 0000"
    clinic.crisis_guidance = "Please call one of the numbers below now."
    clinic.save()
    CrisisContact.objects.create(clinic=clinic, label="Duty line", number="020 7946 0001", position=0)
    CrisisContact.objects.create(clinic=clinic, label="Samaritans", number="116 123", position=1)
    section = crisis_section(portal)
    clinic_at = section.index(f'<a class="button" href="tel:02079460000">Your clinic, {clinic.name}: 020 7946 0000</a>')
    duty_at = section.index('<a class="button" href="tel:02079460001">Duty line: 020 7946 0001</a>')
    samaritans_at = section.index('<a class="button" href="tel:116123">Samaritans: 116 123</a>')
    assert clinic_at < duty_at < samaritans_at
    assert unlinked_numbers(section) == []


def test_the_demo_clinic_offers_samaritans_nhs_111_and_999_as_tel_links(client, patient):
    clinic = SeedDemo()._clinic()
    patient.clinic = clinic
    patient.save(update_fields=["clinic"])
    portal = signed_in(client, give_login(patient, "pat"))
    section = crisis_section(portal)
    for tel in ("02079460320", "02079460321", "111", "116123", "999"):
        assert f'href="tel:{tel}"' in section
    assert unlinked_numbers(section) == []
    assert SeedDemo()._clinic().crisis_contacts.count() == 4  # seeding again adds nothing


def test_crisis_contacts_are_edited_in_the_clinic_admin_and_bad_numbers_refused(client, clinic):
    client.force_login(UserFactory(username="operator", is_staff=True, is_superuser=True))
    url = reverse("admin:tracker_clinic_change", args=[clinic.pk])
    form = {
        "name": clinic.name,
        "slug": clinic.slug,
        "timezone": clinic.timezone,
        "address": "",
        "phone": "",
        "crisis_guidance": "",
        "crisis_contacts-TOTAL_FORMS": "1",
        "crisis_contacts-INITIAL_FORMS": "0",
        "crisis_contacts-MIN_NUM_FORMS": "0",
        "crisis_contacts-MAX_NUM_FORMS": "1000",
        "crisis_contacts-0-label": "Crisis team",
        "crisis_contacts-0-number": "call us",
        "crisis_contacts-0-position": "0",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert "Enter the number as it is dialled" in refused.content.decode()
    assert not CrisisContact.objects.exists()
    saved = client.post(url, {**form, "crisis_contacts-0-number": "0800 123 456"})
    assert saved.status_code == 302
    contact = Clinic.objects.get(pk=clinic.pk).crisis_contacts.get()
    assert (contact.label, contact.number, contact.tel) == ("Crisis team", "0800 123 456", "0800123456")
