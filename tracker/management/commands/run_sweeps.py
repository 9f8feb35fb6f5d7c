"""Run the flag sweeps now, or judging any instant: ``manage.py run_sweeps --at 2026-03-08T12:00Z``."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tracker import rules, scheduling


def parse_instant(value: str) -> dt.datetime:
    try:
        instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--at must be an ISO 8601 instant such as 2026-03-08T12:00:00Z; got {value!r}") from None
    if timezone.is_naive(instant):
        raise CommandError("--at needs a UTC offset (e.g. Z or +01:00) so the instant is unambiguous.")
    return instant


class Command(BaseCommand):
    help = "Run the flag sweeps (all, or those named) judging now or the instant given with --at."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sweeps", nargs="*", choices=[*rules.SWEEPS, []], help="Sweeps to run (default: all).")
        parser.add_argument("--at", type=parse_instant, help="The instant to judge (ISO 8601 with offset).")
        parser.add_argument(
            "--extend-horizon", action="store_true", help="Plan doses up to the horizon before sweeping."
        )

    def handle(self, *args, **options) -> None:
        now = options["at"] or timezone.now()
        if options["extend_horizon"]:
            created = scheduling.extend_horizon(now=now)
            self.stdout.write(f"horizon: {created} planned doses created")
        for name in options["sweeps"] or list(rules.SWEEPS):
            result = rules.SWEEPS[name](now=now)
            self.stdout.write(f"{result.name}: examined {result.examined}, flags raised {result.flags_raised}")
