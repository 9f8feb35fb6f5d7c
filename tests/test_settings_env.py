"""Settings from the environment: strict parsing, safe defaults, clinical overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list
from tracker import clinical

PROJECT_DIR = Path(__file__).resolve().parent.parent
VAR = "TRACKER_TEST_FLAG"


# --- env_bool ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "yes", "on", "TRUE", "Yes", " on "])
def test_env_bool_true_values(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "no", "off", "FALSE", "No", " off "])
def test_env_bool_false_values(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, True) is False


@pytest.mark.parametrize("default", [True, False])
def test_env_bool_unset_gives_the_default(monkeypatch, default):
    monkeypatch.delenv(VAR, raising=False)
    assert env_bool(VAR, default) is default


@pytest.mark.parametrize("raw", ["", "  "])
def test_env_bool_blank_keeps_the_safe_default(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, True) is True


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled", "tru"])
def test_env_bool_refuses_anything_else_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_bool(VAR, False)
    assert str(excinfo.value) == f"{VAR} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}."


# --- env_int / env_list ---------------------------------------------------------------------


def test_env_int_parses_whole_numbers(monkeypatch):
    monkeypatch.setenv(VAR, "3600")
    assert env_int(VAR, 1) == 3600


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_env_int_unset_or_blank_gives_the_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv(VAR, raising=False)
    else:
        monkeypatch.setenv(VAR, raw)
    assert env_int(VAR, 42) == 42


@pytest.mark.parametrize("raw", ["ten", "1.5", "10s"])
def test_env_int_refuses_non_numbers_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_int(VAR, 1)
    assert str(excinfo.value) == f"{VAR} must be a whole number; got {raw!r}."


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv(VAR, " a.example.org, b.example.org ,,")
    assert env_list(VAR, ["x"]) == ["a.example.org", "b.example.org"]
    monkeypatch.delenv(VAR)
    assert env_list(VAR, ["x"]) == ["x"]


# --- Importing config.settings in a fresh interpreter ---------------------------------------


def _import_settings(tmp_path, **env):
    """Import config.settings in a clean subprocess with only the given variables set."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "TRACKER_CLINICAL_OVERRIDES"}
    }
    base["TRACKER_DATA_DIR"] = str(tmp_path)  # the default broker makes folders here
    base.update(env)
    code = "import config.settings as s; print(repr((s.DEBUG, s.TRACKER_CLINICAL_OVERRIDES)))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=base, capture_output=True, text=True, timeout=60
    )


def test_missing_secret_key_with_debug_off_stops_start_up(tmp_path):
    result = _import_settings(tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_empty_secret_key_with_debug_off_stops_start_up(tmp_path):
    result = _import_settings(tmp_path, SECRET_KEY="", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def _manage(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env["TRACKER_DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_migration_check_runs_without_a_secret_key(tmp_path):
    result = _manage(tmp_path, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_other_commands_still_refuse_to_start_without_a_secret_key(tmp_path):
    result = _manage(tmp_path, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_settings_import_with_a_secret_key(tmp_path):
    result = _import_settings(tmp_path, SECRET_KEY="a-real-secret-for-this-test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(False, {})"


def test_debug_on_allows_a_missing_secret_key(tmp_path):
    result = _import_settings(tmp_path, DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("(True,")


def test_garbled_debug_stops_start_up_naming_the_variable(tmp_path):
    result = _import_settings(tmp_path, DEBUG="maybe", SECRET_KEY="x" * 40)
    assert result.returncode != 0
    assert "DEBUG must be one of 1/0, true/false, yes/no, on/off; got 'maybe'." in result.stderr


def test_clinical_overrides_file_is_read(tmp_path):
    overrides = tmp_path / "clinical.json"
    overrides.write_text(json.dumps({"ADHERENCE_MIN_SHARE": 0.9}))
    result = _import_settings(tmp_path, SECRET_KEY="x" * 40, TRACKER_CLINICAL_OVERRIDES=str(overrides))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(False, {'ADHERENCE_MIN_SHARE': 0.9})"


def test_unreadable_clinical_overrides_file_stops_start_up(tmp_path):
    broken = tmp_path / "clinical.json"
    broken.write_text("{not json")
    result = _import_settings(tmp_path, SECRET_KEY="x" * 40, TRACKER_CLINICAL_OVERRIDES=str(broken))
    assert result.returncode != 0
    assert f"TRACKER_CLINICAL_OVERRIDES: cannot read {broken}" in result.stderr


# --- clinical.get -------------------------------------------------------------------------------


def test_clinical_get_returns_the_default_without_override(settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {}
    assert clinical.get("ADHERENCE_MIN_SHARE") == 0.8
    assert clinical.get("PLANNING_HORIZON_DAYS") == 14


def test_clinical_get_returns_the_override(settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {"ADHERENCE_MIN_SHARE": 0.9}
    assert clinical.get("ADHERENCE_MIN_SHARE") == 0.9
    assert clinical.get("PLANNING_HORIZON_DAYS") == 14  # keys not overridden keep their default


def test_clinical_get_unknown_key_is_an_error(settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {}
    with pytest.raises(KeyError):
        clinical.get("NO_SUCH_THRESHOLD")


def test_overrides_reach_the_helpers(settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {
        "AGE_ADJUSTED_MAXIMUM": {"citalopram": [65, 20]},
        "DISCONTINUATION_RISK_HIGH": ["sertraline"],
        "GRACE_HOURS_BY_CLASS": {"ssri": 3},
    }
    assert clinical.age_adjusted_maximum("citalopram", 64) is None
    assert clinical.age_adjusted_maximum("citalopram", 66) == Decimal("20")
    assert clinical.discontinuation_risk("Sertraline") == "high"
    assert clinical.grace_for_class("ssri").total_seconds() == 3 * 3600


def test_default_helpers_without_override(settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {}
    assert clinical.age_adjusted_maximum("citalopram", 60) is None
    assert clinical.age_adjusted_maximum("citalopram", 61) == Decimal("20")
    assert clinical.age_adjusted_maximum("sertraline", 90) is None
    assert clinical.discontinuation_risk("paroxetine") == "high"
    assert clinical.discontinuation_risk("sertraline") == "intermediate"
    assert clinical.discontinuation_risk("fluoxetine") == "low"
    assert clinical.grace_for_class("benzodiazepine").total_seconds() == 4 * 3600
    assert clinical.grace_for_class("unknown-class").total_seconds() == 6 * 3600
