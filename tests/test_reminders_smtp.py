"""Reminder emails through a real SMTP server (aiosmtpd, in the test), not Django's locmem outbox.

The sweep runs with Django's SMTP backend pointed at the server, so what is checked is what an
SMTP conversation delivered: the envelope, the headers and the body as a mail client parses them.
"""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings

from tests.dosing import at
from tests.test_reminders import ADDRESS, dose_on, remind_daily
from tracker.models import DoseReminder
from tracker.rules import reminders

pytestmark = pytest.mark.django_db
SITE = "https://tracker.example.org"


class Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=controller.port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            DEFAULT_FROM_EMAIL="reminders@clinic.example",
            TRACKER_SITE_URL=SITE,
        ):
            yield inbox
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("day", "send", "when"),
    [
        ("2026-03-27", "2026-03-27T06:55", "07:10 on Friday 27 March (Europe/London time)"),  # GMT
        ("2026-03-30", "2026-03-30T05:55", "07:10 on Monday 30 March (Europe/London time)"),  # BST: 06:10 UTC
    ],
)
def test_the_reminder_email_arrives_over_smtp_with_the_link_and_the_local_due_time(
    smtp_server, patient, clinician, day, send, when
):
    rx = remind_daily(patient, clinician)
    dose = dose_on(rx, day)

    reminders.sweep(now=at(send))
    reminders.sweep(now=at(send))  # a second run sends nothing more

    (envelope,) = smtp_server.envelopes
    assert envelope.mail_from == "reminders@clinic.example"
    assert envelope.rcpt_tos == [ADDRESS]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["To"] == ADDRESS
    assert message["Subject"] == "Reminder: a dose is due at 07:10"
    body = message.get_content()
    assert f"A dose is due at {when}." in body
    assert f"{SITE}/#dose-{dose.pk}" in body  # straight to the dose's Taken button
    assert f"{SITE}/reminders/" in body
    assert "ertraline" not in body + message["Subject"]
    reminder = DoseReminder.objects.get()
    assert (reminder.status, reminder.channels) == (DoseReminder.Status.SENT, "email")


def test_a_refusing_smtp_server_leaves_the_reminder_owed(patient, clinician):
    """Nothing listens on the port: the send fails, the reminder waits for the next run."""
    remind_daily(patient, clinician)
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=free_port(),
        EMAIL_USE_TLS=False,
        EMAIL_TIMEOUT=2,
    ):
        reminders.sweep(now=at("2026-03-27T06:55"))
    assert DoseReminder.objects.get().status == DoseReminder.Status.PENDING
