"""``{% push_panel patient %}``: the reminders page's "notifications on this device" section.

A tag rather than view context, so the section (templates/portal/_push.html) brings what it
needs: whether push is set up, the public VAPID key for ``PushManager.subscribe``, and
digests of the patient's live subscriptions so push.js can tell whether this browser's is one.
"""

from __future__ import annotations

from typing import Any

from django import template

from tracker.models import Patient
from tracker.services import push

register = template.Library()


@register.inclusion_tag("portal/_push.html")
def push_panel(patient: Patient) -> dict[str, Any]:
    config = push.config()
    live = push.live_subscriptions(patient.pk) if config else []
    return {
        "push_on": config is not None,
        "public_key": config.public_key if config else "",
        "mine": " ".join(push.endpoint_digest(sub.endpoint) for sub in live),
        "count": len(live),
        "devices": [(sub, push.device_label(sub.user_agent)) for sub in live],
    }
