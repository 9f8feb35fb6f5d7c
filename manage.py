#!/usr/bin/env python
"""Django's command-line utility for the treatment-course tracker."""

import os
import sys

# Commands that only read the code and the migration files: they sign nothing and serve
# nobody, so they run without a SECRET_KEY (a throw-away one, never stored). Everything
# else, the server and `check --deploy` included, still refuses to start without one.
OFFLINE_COMMANDS = {"makemigrations", "showmigrations", "sqlmigrate"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in OFFLINE_COMMANDS and not os.environ.get("SECRET_KEY"):
        import secrets

        os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
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
