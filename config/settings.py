"""Settings for the treatment-course tracker, all read from the environment.

Defaults are the *embedded* set-up (SQLite file, filesystem Celery broker) so the
tracker starts on a bare machine; production sets ``DATABASE_URL``, ``REDIS_URL``,
``SECRET_KEY`` and ``ALLOWED_HOSTS``. ``DEBUG`` is off unless asked for, and with it
off a missing ``SECRET_KEY`` stops start-up. Every variable is listed in README.md.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("TRACKER_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "csp",
    # Second sign-in factor for staff: authenticator apps (TOTP) and one-time recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "tracker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A NUL or a huge integer in the path or query string is a 400, not a database error.
    "tracker.middleware.QueryStringGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Portal pages in the language cookie's or the browser's language (the patient's own once signed in).
    "tracker.portal.language.PortalLanguageMiddleware",
    # request.user.is_verified(): whether this session passed a second factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # Staff without one are sent to set it up or type a code (TRACKER_REQUIRE_STAFF_MFA).
    "tracker.accounts.mfa.StaffMFAMiddleware",
    # Clinicians read and type times in their clinic's zone (Clinic.timezone); storage is UTC.
    "tracker.middleware.ClinicTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # Records who made each change in the clinical history tables.
    "simple_history.middleware.HistoryRequestMiddleware",
    # Locks out repeated failed logins; last, as django-axes requires.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The portal's language switcher: the languages it offers (PortalLanguage).
                "tracker.portal.language.languages",
            ],
        },
    },
]

# --- Database: a SQLite file by default, PostgreSQL in production -----------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'tracker.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded demo runs web, a worker pool and beat on one SQLite file. Writers take the
    # write lock when their transaction starts (IMMEDIATE) and wait up to 20 s for it, instead
    # of failing with "database is locked" when two of them meet (say, two outbox tasks).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Time: everything stored in UTC; patients' local time comes from their zone ----
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-gb"
USE_I18N = True
# The patient portal's languages (tracker.models.PortalLanguage; docs/i18n.md). The clinician
# admin and the API stay in LANGUAGE_CODE; the catalogues are compiled at install, run and test.
LANGUAGES = [("en-gb", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Auth ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Patients sign in at the portal's page; the clinician admin keeps its own sign-in.
AUTHENTICATION_BACKENDS = [
    # Refuses logins for a locked-out username/address before checking the password.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Brute-force protection, for patients and clinicians alike: after AXES_FAILURE_LIMIT failed
# logins for one username from one address, that pair is locked for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:today"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", int(timedelta(hours=8).total_seconds()))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Staff sign in with a password and then a code from an authenticator app (or a recovery code);
# on by default in production, off with DEBUG so the demo's logins work without a phone.
TRACKER_REQUIRE_STAFF_MFA = env_bool("TRACKER_REQUIRE_STAFF_MFA", not DEBUG)
OTP_TOTP_ISSUER = env_str("TRACKER_MFA_ISSUER", "Treatment-course tracker")
# A clinic-issued password reset link for a patient (their users have no email) works once,
# and for this long.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_HOURS", 72) * 3600

# --- History (django-simple-history) ------------------------------------------------------
# Reasons given for a change (a dose change, entered in error) are clinicians' own sentences and
# are kept whole: the change-reason column is a text column, not simple-history's varchar(100).
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# --- REST API (tracker/api): session auth for the portal and admin, tokens for integrations
REST_FRAMEWORK = {
    # Token first, so a request without credentials is answered 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: one request shape to document, validate and fuzz; limited in size, depth and
    # numbers so a hostile body is a 400, not a 500 (tracker/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["tracker.api.parsers.LimitedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "tracker.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# /api/schema/ and /api/docs/ are for signed-in staff unless this is on (e.g. for a public
# integration portal); the API itself still needs a token or a session either way.
TRACKER_PUBLIC_API_DOCS = env_bool("TRACKER_PUBLIC_API_DOCS", False)
SPECTACULAR_SETTINGS = {
    "TITLE": "Treatment-course tracker API",
    "DESCRIPTION": "Patients, prescriptions, doses, questionnaires, side effects and flags; FHIR R4 export.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name get distinct component names.
    "ENUM_NAME_OVERRIDES": {
        "ScheduleKindEnum": "tracker.models.prescriptions.DoseSchedule.Kind",
        "FlagKindEnum": "tracker.models.flags.FlagKind",
        "FlagSeverityEnum": "tracker.models.flags.Severity",
        "SideEffectSeverityEnum": "tracker.models.assessments.SideEffectReport.Severity",
        "MeasurementKindEnum": "tracker.models.measurements.MeasurementKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.api.schema.document_error_responses",
    ],
}

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security: safe by default, relaxed only by DEBUG or explicit variables ----------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer probes over plain HTTP: the health check answers it instead of redirecting.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# No inline script runs: every script is a file served from this origin (Swagger UI's set-up
# script included, see config/urls.py). Inline style attributes stay allowed: the admin's
# templates and Swagger UI use them, and a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Only behind a proxy that sets this header itself (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Email: printed to the console unless an SMTP host is given -----------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# Seconds before an SMTP connection gives up: a hung mail server must not hold up the reminder sweep.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "tracker@localhost")
# The public address of the site, for links in emails (e.g. https://tracker.example.org).
TRACKER_SITE_URL = env_str("TRACKER_SITE_URL", "")

# --- Web Push dose reminders (issue 15): off unless all three are set ----------------------
# Generate a pair with py-vapid (`vapid --gen`, then `vapid --applicationServerKey`); see
# docs/reminders.md. The private key is the PEM file's text or its raw base64url form.
VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY")  # the applicationServerKey, base64url
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY")
VAPID_SUBJECT = env_str("VAPID_SUBJECT")  # mailto:someone@clinic.example, for the push services
# The push services' hosts the server posts to; a browser's endpoint elsewhere is refused, so a
# patient cannot make the server post into the clinic's network (SSRF). "*.x" is any name under x.
WEB_PUSH_ALLOWED_HOSTS = [
    "fcm.googleapis.com",  # Chrome, Edge on Android, Opera
    "updates.push.services.mozilla.com",  # Firefox
    "*.push.services.mozilla.com",
    "*.notify.windows.com",  # Edge on Windows
    "*.push.apple.com",  # Safari
]
# A push service on this machine (http or https to localhost/127.0.0.1): development and tests only.
WEB_PUSH_ALLOW_LOOPBACK = env_bool("WEB_PUSH_ALLOW_LOOPBACK", DEBUG)

# --- Celery: Redis in production, an embedded filesystem broker by default -------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder for in and out: producer and worker share it on one host.
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task, so a slow sweep is not redelivered while running.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# Tasks are idempotent, so a task lost with its worker is redelivered, not dropped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 300)
HORIZON_INTERVAL_SECONDS = env_int("HORIZON_INTERVAL_SECONDS", 3600)
# Dose reminders are due to the minute the patient chose, so they run on their own, shorter
# beat; the reminder sweep claims with SKIP LOCKED, so overlapping runs never send twice.
REMINDER_INTERVAL_SECONDS = env_int("REMINDER_INTERVAL_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "sweeps": {"task": "tracker.run_all_sweeps", "schedule": SWEEP_INTERVAL_SECONDS},
    "dose-reminders": {"task": "tracker.run_sweep", "schedule": REMINDER_INTERVAL_SECONDS, "args": ("reminders",)},
    "extend-horizon": {"task": "tracker.extend_horizon", "schedule": HORIZON_INTERVAL_SECONDS},
    # The notification outbox's safety net: emails that could not be queued at commit.
    "flag-notifications": {"task": "tracker.send_flag_notifications", "schedule": 60},
    # Open warnings, once a day at FLAG_DIGEST_HOUR (UTC).
    "warning-digest": {
        "task": "tracker.send_warning_digest",
        "schedule": crontab(hour=env_int("FLAG_DIGEST_HOUR", 7), minute=0),
    },
}

# --- Clinical thresholds: defaults in tracker/clinical.py, overridable per clinic -------
# A JSON file of {"KEY": value} pairs replaces the named defaults without a code change.
_clinical_file = env_str("TRACKER_CLINICAL_OVERRIDES")
TRACKER_CLINICAL_OVERRIDES: dict = {}
if _clinical_file:
    try:
        TRACKER_CLINICAL_OVERRIDES = json.loads(Path(_clinical_file).read_text())
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"TRACKER_CLINICAL_OVERRIDES: cannot read {_clinical_file}: {exc}") from exc

# --- Logging: to stderr, at INFO for the tracker ---------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
    "loggers": {"tracker": {"level": env_str("TRACKER_LOG_LEVEL", "INFO")}},
}
