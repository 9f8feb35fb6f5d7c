"""Error pages speak plainly and give nothing away."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_not_found_page_is_plain_and_does_not_confirm_the_record_exists(client, patient, other_patient):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "We could not find that page" in text
    assert "someone else's record" in text
    assert other_patient.family_name not in text


# --- 403: the admin's refusals in its own style, with the reason and a way back ------------


@pytest.fixture
def nurse(clinic):
    from tests import factories

    return factories.ClinicianFactory(clinic=clinic, role="nurse", title="", user__username="nurse-north")


def prescribe_url(patient) -> str:
    from django.urls import reverse

    return reverse("admin:tracker_prescription_prescribe", args=[patient.pk])


@pytest.mark.django_db
def test_an_admin_refusal_says_why_in_the_admins_style(client, nurse, patient):
    from django.contrib.auth.models import Permission

    # A nurse given the add permission by hand is still no prescriber: the refusal names the rule.
    nurse.user.user_permissions.add(Permission.objects.get(codename="add_prescription"))
    client.force_login(nurse.user)
    response = client.get(prescribe_url(patient))
    assert response.status_code == 403
    text = response.content.decode()
    assert "Only prescribers can prescribe or change a dose." in text
    assert 'id="site-name"' in text and "Treatment-course tracker" in text  # admin/base_site.html
    assert "<title>You cannot do this | Treatment-course tracker</title>" in text
    assert '<a href="/admin/">Back to the start page</a>' in text


@pytest.mark.django_db
def test_an_admin_refusal_without_a_message_still_explains(client, nurse, patient):
    from tracker.admin.errors import GENERIC_REASON

    client.force_login(nurse.user)
    response = client.get(prescribe_url(patient))
    assert response.status_code == 403
    assert GENERIC_REASON in response.content.decode()


@pytest.mark.django_db
def test_the_way_back_is_the_referring_page_only_when_it_is_on_this_site(client, nurse, patient):
    from django.urls import reverse

    client.force_login(nurse.user)
    page = reverse("admin:tracker_patient_change", args=[patient.pk])
    here = client.get(prescribe_url(patient), HTTP_REFERER=f"http://testserver{page}?tab=1").content.decode()
    assert f'<a href="{page}?tab=1">Back to the previous page</a>' in here
    elsewhere = client.get(prescribe_url(patient), HTTP_REFERER="https://evil.example/phish").content.decode()
    assert "evil.example" not in elsewhere
    assert '<a href="/admin/">Back to the start page</a>' in elsewhere
    itself = client.get(prescribe_url(patient), HTTP_REFERER=f"http://testserver{prescribe_url(patient)}")
    assert '<a href="/admin/">Back to the start page</a>' in itself.content.decode()


@pytest.mark.django_db
def test_a_refusal_outside_the_admin_keeps_the_portals_style_and_gives_nothing_away(rf):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied

    from tracker.admin.errors import permission_denied

    request = rf.get("/today/")
    request.user = AnonymousUser()
    response = permission_denied(request, PermissionDenied("Patient 42 belongs to Southside"))
    assert response.status_code == 403
    text = response.content.decode()
    assert "You cannot open this page" in text
    assert "My treatment" in text  # the portal's base.html
    assert "Southside" not in text and 'id="site-name"' not in text
