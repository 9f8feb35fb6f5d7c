"""Portal sign-in, password pages, refusal of non-patients, and 404 for every other patient's id."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.factories import UserFactory
from tests.symptoms import phq9
from tests.test_portal_support import PASSWORD, clinic_only, course, give_login, signed_in
from tracker.models import DoseEvent, PlannedDose

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(patient):
    return give_login(patient, "pat")


def test_anonymous_visitor_is_sent_to_the_patient_sign_in(client):
    response = client.get(reverse("portal:progress"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('portal:progress')}"


def test_sign_in_page_is_plain_and_leads_to_today(client, user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b"I forgot my password" in page.content and b"csrfmiddlewaretoken" in page.content

    response = client.post(reverse("login"), {"username": "pat", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("portal:today")
    assert client.get(reverse("portal:today")).status_code == 200


def test_wrong_password_says_so_plainly(client, user):
    response = client.post(reverse("login"), {"username": "pat", "password": "wrong"})
    assert response.status_code == 200
    assert b"That username and password did not match" in response.content


def test_sign_out_is_a_post_and_ends_the_session(client, user):
    signed_in(client, user)
    response = client.post(reverse("logout"))
    assert response.status_code == 200 and b"You have signed out" in response.content
    assert client.get(reverse("portal:today")).status_code == 302


def test_password_change_in_plain_words(client, user):
    signed_in(client, user)
    assert b"Change my password" in client.get(reverse("password_change")).content
    new = "a-much-longer-new-passphrase"
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    user.refresh_from_db()
    assert user.check_password(new)


def test_password_reset_emails_a_link_that_lets_the_patient_choose_a_new_password(client, user):
    response = client.post(reverse("password_reset"), {"email": user.email})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    (message,) = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Choose a new password for your treatment tracker"
    link = re.search(r"https?://[^/]+(/accounts/password/reset/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert b"Choose a new password" in form_page.content
    new = "another-long-passphrase-42"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(new)


def test_a_user_without_a_patient_record_is_refused_with_a_clear_message(client, clinician):
    signed_in(client, clinician.user)
    for name in ("portal:today", "portal:progress", "portal:questionnaires", "portal:checkin"):
        response = client.get(reverse(name))
        assert response.status_code == 403
        assert b"not linked to a patient record" in response.content
    assert UserFactory(username="nobody").is_authenticated  # any login without a patient, too
    signed_in(client, UserFactory(username="nobody"))
    assert client.get(reverse("portal:today")).status_code == 403


def test_every_url_with_another_patients_id_answers_404(client, patient, clinician, other_patient, other_clinician):
    signed_in(client, give_login(patient, "pat"))
    course(patient, clinician)
    theirs_rx = course(other_patient, other_clinician)
    theirs_esk = clinic_only(other_patient, other_clinician)
    theirs_dose = PlannedDose.objects.filter(prescription=theirs_rx).first()
    theirs_answers = phq9(other_patient, "2026-06-01T09:00", total=5)

    gets = [
        reverse("portal:log_as_needed", args=[theirs_rx.pk]),
        reverse("portal:outside_clinic", args=[theirs_esk.pk]),
        reverse("portal:outside_clinic_reported", args=[theirs_esk.pk]),
        reverse("portal:result", args=[theirs_answers.pk]),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = [
        (reverse("portal:log_dose", args=[theirs_dose.pk]), {"action": "taken"}),
        (reverse("portal:log_as_needed", args=[theirs_rx.pk]), {}),
        (reverse("portal:outside_clinic", args=[theirs_esk.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert not DoseEvent.objects.exists()
    # Ids that exist nowhere answer the same way, so a 404 tells nothing about other patients.
    assert client.post(reverse("portal:log_dose", args=[10**9]), {"action": "taken"}).status_code == 404
    assert client.get(reverse("portal:result", args=[10**9])).status_code == 404


def test_unknown_questionnaire_and_clinician_rated_scales_are_404(client, user):
    signed_in(client, user)
    for code in ("madrs", "cadss", "nonsense"):
        assert client.get(reverse("portal:questionnaire", args=[code])).status_code == 404


def test_every_form_carries_a_csrf_token(client, user, patient, clinician):
    course(patient, clinician)
    clinic_only(patient, clinician)
    signed_in(client, user)
    for url in (reverse("portal:today"), reverse("portal:questionnaire", args=["phq9"]), reverse("portal:checkin")):
        html = client.get(url).content.decode()
        assert html.count("<form") == html.count("csrfmiddlewaretoken"), url
    enforcing = type(client)(enforce_csrf_checks=True)
    enforcing.force_login(user)
    dose = PlannedDose.objects.filter(patient=patient).first()
    assert enforcing.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"}).status_code == 403
