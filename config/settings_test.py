"""Settings for the test suite: the real settings with test-only secrets and no TLS redirect.

The database and broker still come from ``DATABASE_URL`` / ``REDIS_URL`` so CI runs the
suite on PostgreSQL and Redis.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-any-deployment")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from config.settings import *  # noqa: F403

# Fast hashing: tests create many users; production keeps Django's default hasher.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Staff MFA is off unless a test turns it on (tests/test_mfa.py), so the admin's tests sign in
# with force_login as before.
TRACKER_REQUIRE_STAFF_MFA = False
