"""Benchmark-only settings: the test settings plus a URLconf with a trivial view (bench/urls.py).

Used only by bench/web.py (``DJANGO_SETTINGS_MODULE=bench.settings``) so the trivial baseline runs
through exactly the same middleware, WSGI server and database as the pages it is compared with.
"""

from config.settings_test import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
