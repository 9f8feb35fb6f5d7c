"""Clinic-issued password reset links for patients, whose portal users have no email address.

A clinician who may change the patient's record issues the link; it is shown to them once to
hand to the patient (read out, printed, or sent through the clinic's own channel). The link is
Django's password reset token for the patient's user: it stops working once the password is
changed, at the next sign-in, and after ``PASSWORD_RESET_TIMEOUT``. Who issued it, and when,
goes to the admin log of the patient's record and to the application log.
"""

from __future__ import annotations

import logging

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tracker.models import Patient
from tracker.services.errors import ServiceError

logger = logging.getLogger(__name__)

ISSUED_MESSAGE = "Issued a portal password reset link."


def reset_link_refusal(patient: Patient) -> str | None:
    """Why no link can be issued for ``patient``, in a clinician's words; None when one can."""
    user = patient.user
    if user is None:
        return "This patient has no portal login, so there is no password to reset."
    if not user.is_active:
        return "This patient's portal login is switched off; a reset link would not let them sign in."
    if user.is_staff or user.is_superuser:
        return "This login belongs to a member of staff; staff reset their password through an administrator."
    return None


def issue_password_reset_link(*, patient: Patient, by: AbstractBaseUser) -> str:
    """The path of a one-time reset link for the patient's portal user; logs who issued it."""
    refusal = reset_link_refusal(patient)
    if refusal:
        raise ServiceError(refusal)
    user = patient.user
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    LogEntry.objects.log_actions(
        user_id=by.pk, queryset=[patient], action_flag=CHANGE, change_message=ISSUED_MESSAGE, single_object=True
    )
    logger.info("password reset link issued for patient %s by user %s", patient.pk, by.pk)
    return path
