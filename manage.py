#!/usr/bin/env python
"""Django's command-line utility for the treatment-course tracker."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now, to report a bad environment plainly
    except ImproperlyConfigured as error:
        # The settings refuse unsafe defaults (no SECRET_KEY with DEBUG off); say so in one line
        # instead of a traceback that ends somewhere else.
        sys.exit(f"Configuration error: {error}\nFor local development set DEBUG=1 (see README.md, Configuration).")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
