"""Test settings for a worker process whose emails the test must count: one file per connection.

The test process reads the folder named by ``TRACKER_TEST_EMAIL_DIR``; locmem (the suite's
default) lives in the worker's memory where the test cannot see it.
"""

import os

from config.settings_test import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["TRACKER_TEST_EMAIL_DIR"]
