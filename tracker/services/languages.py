"""The patient's portal language: changed by the patient, kept in the record's history."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from tracker.models import Patient, PortalLanguage
from tracker.services.errors import ServiceError


def django_language(portal_language: str) -> str:
    """The Django language code for a Patient.language value ("en" is the site's en-gb).

    One helper for every place that speaks to the patient (the portal's pages, the reminder
    emails and notifications), so they agree: a value outside LANGUAGES (blank, or a language
    since dropped) falls back to the site's language instead of whatever Django has a catalogue for.
    """
    try:
        return translation.get_supported_language_variant(portal_language)
    except LookupError:
        return settings.LANGUAGE_CODE


@transaction.atomic
def set_portal_language(*, patient: Patient, language: str) -> Patient:
    """Store the patient's choice; simple-history records who changed it and when.

    The history row's user comes from the request (HistoryRequestMiddleware), so a change
    made in the portal is recorded as made by the patient. An unchanged choice writes nothing.
    """
    if language not in PortalLanguage.values:
        raise ServiceError({"language": _("Choose one of the languages in the list.")})
    if patient.language == language:
        return patient
    patient.language = language
    patient.save(update_fields=["language", "updated_at"])
    return patient
