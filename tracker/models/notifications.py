"""What the tracker has emailed, where "once" must hold across processes."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DigestDelivery(models.Model):
    """One warning digest sent to one address for one day.

    The unique constraint is the guard: a second beat, or a digest task delivered twice,
    finds the row (or waits on it and then finds it) and sends nothing. The row is written
    in the transaction that sends the email, so a failed send leaves no row and the next
    run tries again.
    """

    recipient = models.EmailField()
    day = models.DateField(help_text="The day (UTC) the digest is for.")
    sent_at = models.DateTimeField(default=timezone.now)
    warnings = models.PositiveIntegerField(help_text="Open warnings the digest counted.")

    class Meta:
        verbose_name_plural = "digest deliveries"
        constraints = [
            models.UniqueConstraint(fields=["recipient", "day"], name="tracker_digest_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"Digest to {self.recipient} for {self.day}"
