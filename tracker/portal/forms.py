"""Patient forms: they turn what was typed into service arguments; the services judge it.

Times are read in the patient's own zone (the portal activates it for each request), so
"08:30" means 08:30 where the patient lives. Errors the services raise are shown beside
the field they concern, in the services' own plain words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from tracker import scales, side_effect_catalogue
from tracker.models import DoseEvent, PortalLanguage, Prescription, PrescriptionReminder, SideEffectReport
from tracker.portal import instruments
from tracker.portal.selectors import SEVERITY_LABELS
from tracker.services.assessments import EffectReport
from tracker.services.errors import ServiceError
from tracker.services.reminders import MINUTES_BEFORE_CHOICES, ReminderChoice

LOCAL_DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class LocalDateTimeInput(forms.DateTimeInput):
    """The phone's own date and time picker; the value is local wall-clock time."""

    input_type = "datetime-local"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs=attrs, format=LOCAL_DATETIME_FORMAT)


def local_datetime_field(label: str, required: bool = False) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=[LOCAL_DATETIME_FORMAT, "%Y-%m-%d %H:%M"],
        widget=LocalDateTimeInput(),
        error_messages={
            "required": gettext_lazy("Enter the date and time you took it."),
            "invalid": gettext_lazy("Enter a date and a time, for example 2026-06-01 08:30."),
        },
    )


def add_service_error(form: forms.Form, error: ServiceError, fields: Mapping[str, str]) -> None:
    """Show a service's refusal beside the form field it concerns (``fields``: service key -> form field)."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for key, messages in error.message_dict.items():
        field = fields.get(key)
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


def has_code(error: ServiceError, code: str) -> bool:
    """Whether one of the service's messages carries ``code`` (a refusal the patient may confirm)."""
    errors = (
        [e for group in error.error_dict.values() for e in group] if hasattr(error, "error_dict") else error.error_list
    )
    return any(e.code == code for e in errors)


class DoseLogForm(forms.Form):
    """One planned dose: taken now, skipped with a reason, or taken at another time."""

    TAKEN, SKIPPED, OTHER_TIME = "taken", "skipped", "other_time"
    SERVICE_FIELDS = {
        "occurred_at": "taken_at",
        "skip_reason": "skip_reason",
        "skip_choice": "skip_choice",
        NON_FIELD_ERRORS: NON_FIELD_ERRORS,
    }

    action = forms.ChoiceField(
        choices=[
            (TAKEN, gettext_lazy("Taken")),
            (SKIPPED, gettext_lazy("Skipped")),
            (OTHER_TIME, gettext_lazy("Taken at another time")),
        ],
        error_messages={
            "required": gettext_lazy("Please choose taken, skipped or taken at another time."),
            "invalid_choice": gettext_lazy("Please choose taken, skipped or taken at another time."),
        },
    )
    skip_choice = forms.ChoiceField(
        label=gettext_lazy("Why did you skip it?"),
        choices=lambda: skip_choices(),
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": gettext_lazy("Choose one of the reasons in the list.")},
    )
    skip_reason = forms.CharField(label=gettext_lazy("In your own words"), required=False, max_length=200)
    taken_at = local_datetime_field(gettext_lazy("When did you take it?"))
    # The second submit after a time outside the dose's window: "Yes, log it as an extra dose".
    extra_dose = forms.BooleanField(required=False)
    # Made by the page's script for each form it shows, so a double tap or a resend is one dose.
    client_key = forms.UUIDField(required=False, error_messages={"invalid": gettext_lazy("Please tap again.")})

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == self.OTHER_TIME and not data.get("taken_at") and "taken_at" not in self.errors:
            self.add_error("taken_at", _("Enter the date and time you took it."))
        return data

    def service_arguments(self, now: dt.datetime) -> dict:
        """record_dose's outcome, time and reason for the chosen action."""
        action = self.cleaned_data["action"]
        if action == self.SKIPPED:
            text = self.cleaned_data["skip_reason"]
            # Words without a preset (an older page, a hand-made post) are the "other" reason.
            choice = self.cleaned_data["skip_choice"] or (DoseEvent.SkipChoice.OTHER if text.strip() else "")
            return {"outcome": "skipped", "occurred_at": now, "skip_reason": text, "skip_choice": choice}
        occurred_at = self.cleaned_data["taken_at"] if action == self.OTHER_TIME else now
        return {
            "outcome": "taken",
            "occurred_at": occurred_at,
            "extra_dose": self.cleaned_data["extra_dose"],
            "client_key": self.cleaned_data["client_key"],
        }


class PhoneTimeField(forms.DateTimeField):
    """An instant from the phone's clock, as JavaScript's toISOString() writes it, with its offset."""

    default_error_messages = {
        "required": gettext_lazy("The phone did not say when the dose was tapped."),
        "invalid": gettext_lazy("The phone sent a time that could not be read, or one without its time zone."),
    }

    def to_python(self, value: object) -> dt.datetime | None:
        if value in self.empty_values:
            return None
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:
            parsed = None
        if parsed is None or parsed.utcoffset() is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class OfflineTapForm(forms.Form):
    """A "Taken" tap kept on the phone while it was offline, sent when the connection returned.

    The phone sends its key for the tap, the time of the tap and the time it sends, both
    read from its own clock. The dose is stored at the server's now minus the time the tap
    waited: the wait is measured on one clock, so a phone whose clock is off by minutes
    still stores the moment it was tapped.
    """

    SERVICE_FIELDS = {
        "occurred_at": NON_FIELD_ERRORS,
        "planned_dose": NON_FIELD_ERRORS,
        NON_FIELD_ERRORS: NON_FIELD_ERRORS,
    }

    client_key = forms.UUIDField(
        error_messages={
            "required": gettext_lazy("The tap has no key."),
            "invalid": gettext_lazy("The tap's key is not valid."),
        }
    )
    tapped_at = PhoneTimeField(label=gettext_lazy("When the dose was tapped"))
    sent_at = PhoneTimeField(label=gettext_lazy("When the phone sent it"))

    def service_arguments(self, now: dt.datetime) -> dict:
        """record_dose's outcome, time and key: taken, the wait before sending taken off ``now``."""
        waited = self.cleaned_data["sent_at"] - self.cleaned_data["tapped_at"]
        return {
            "outcome": DoseEvent.Outcome.TAKEN,
            "occurred_at": now - max(waited, dt.timedelta(0)),
            "client_key": self.cleaned_data["client_key"],
        }


class TakenNowOrAtForm(forms.Form):
    """An as-needed dose, or a clinic-only medicine taken elsewhere: when (blank means now)."""

    SERVICE_FIELDS = {"occurred_at": "taken_at", "note": "note"}

    taken_at = local_datetime_field(gettext_lazy("When did you take it? Leave empty for now."))
    note = forms.CharField(
        label=gettext_lazy("Anything you want your care team to know (optional)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def occurred_at(self, now: dt.datetime) -> dt.datetime:
        return self.cleaned_data.get("taken_at") or now


def _question(number: int, total: int, text: str, options: tuple[tuple[int, str], ...]) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=f"{number}. {text}",
        choices=[(value, label) for value, label in options],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Please answer question %(number)s of %(total)s: “%(text)s”.")
            % {"number": number, "total": total, "text": text},
            "invalid_choice": _("Please answer question %(number)s of %(total)s with one of its answers: “%(text)s”.")
            % {"number": number, "total": total, "text": text},
        },
    )


# The anchors printed on the FIBSER form at 0, 2, 4 and 6 (Wisniewski 2006, cited in clinical-reference §5).
# Instrument wording: shown in English in every language until an official translation is
# added to tracker.portal.instruments (the check-in page says so to a non-English patient).
FIBSER_ANCHORS: tuple[dict[int, str], ...] = (
    {0: "no side effects", 2: "10–25% of the time", 4: "50–75% of the time", 6: "all of the time"},
    {0: "no side effects", 2: "trivial", 4: "moderate", 6: "intolerable"},
    {0: "no impairment", 2: "minimal impairment", 4: "moderate impairment", 6: "unable to function"},
)


def _fibser_options(item: int) -> tuple[tuple[int, str], ...]:
    anchors = FIBSER_ANCHORS[item]
    return tuple(
        (value, f"{value} – {anchors[value]}" if value in anchors else str(value)) for value, _ in scales.FIBSER.options
    )


class QuestionnaireForm(forms.Form):
    """A whole questionnaire on one page: one group of radio buttons per question.

    The words are the instrument's official ones in the portal's language, or English marked
    untranslated (tracker.portal.instruments); the values, and so the score, never change.
    """

    def __init__(self, *args, scale: scales.Scale, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scale = scale
        self.wording = instruments.wording(scale)
        total = len(scale.items)
        for index, text in enumerate(self.wording.items):
            self.fields[f"q{index + 1}"] = _question(index + 1, total, text, self.wording.options_for(index))

    def answers(self) -> list[int]:
        return [self.cleaned_data[f"q{n}"] for n in range(1, len(self.scale.items) + 1)]


NO_EFFECT = ""
# One word per severity for the check-in's compact choices; the page explains each word once
# with the portal's words for it (selectors.SEVERITY_LABELS), so four choices fit a 390 px
# phone on one line.
SEVERITY_CHIPS = [
    (NO_EFFECT, gettext_lazy("No")),
    (SideEffectReport.Severity.MILD, gettext_lazy("Mild")),
    (SideEffectReport.Severity.MODERATE, gettext_lazy("Moderate")),
    (SideEffectReport.Severity.SEVERE, gettext_lazy("Severe")),
]


class CheckinForm(forms.Form):
    """The weekly check-in: FIBSER's three questions, then which side effects, and how strong.

    The effects common to the patient's medicines (``common``) are asked first; the rest wait
    behind "Something else?" with the patient's own words. The fields, values and scoring are
    the same whichever group an effect is in.
    """

    SERVICE_FIELDS = {"description": "other_description", "answers": NON_FIELD_ERRORS}

    def __init__(self, *args, effect_choices: list[tuple[str, str]], common: Collection[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.common = set(common)
        self.wording = instruments.wording(scales.FIBSER)
        for index, text in enumerate(scales.FIBSER.items):
            self.fields[f"q{index + 1}"] = _question(
                index + 1, len(scales.FIBSER.items), text.split(" (")[0], _fibser_options(index)
            )
        self.effect_codes = [code for code, _ in effect_choices if code != side_effect_catalogue.OTHER]
        for code, label in effect_choices:
            if code == side_effect_catalogue.OTHER:
                continue
            self.fields[f"effect_{code}"] = forms.ChoiceField(
                label=_(label), choices=SEVERITY_CHIPS, required=False, initial=NO_EFFECT, widget=forms.RadioSelect
            )
        self.fields["other_description"] = forms.CharField(
            label=gettext_lazy("Another side effect? Describe it in your own words (optional)"),
            required=False,
            max_length=1000,
            widget=forms.Textarea(attrs={"rows": 3}),
        )
        self.fields["other_severity"] = forms.ChoiceField(
            label=gettext_lazy("How strong is it?"), choices=SEVERITY_CHIPS, required=False, widget=forms.RadioSelect
        )

    @property
    def fibser_fields(self) -> list[forms.BoundField]:
        return [self[f"q{n}"] for n in range(1, len(scales.FIBSER.items) + 1)]

    @property
    def effect_fields(self) -> list[forms.BoundField]:
        return [self[f"effect_{code}"] for code in self.effect_codes]

    @property
    def common_fields(self) -> list[forms.BoundField]:
        return [self[f"effect_{code}"] for code in self.effect_codes if code in self.common]

    @property
    def more_fields(self) -> list[forms.BoundField]:
        return [self[f"effect_{code}"] for code in self.effect_codes if code not in self.common]

    @property
    def more_open(self) -> bool:
        """Whether "Something else?" starts open: nothing common to ask first, or an answer or
        an error inside it that the patient must see again."""
        if not self.common_fields:
            return True
        inside = [*self.more_fields, self["other_description"], self["other_severity"]]
        return any(field.errors or (self.is_bound and field.value()) for field in inside)

    @property
    def severity_key(self) -> list[str]:
        """What each severity word means, said once above the effects."""
        return [str(SEVERITY_LABELS[value]) for value, _word in SEVERITY_CHIPS if value in SEVERITY_LABELS]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("other_description", "").strip() and not data.get("other_severity"):
            self.add_error("other_severity", _("Say how strong the side effect you described is."))
        if data.get("other_severity") and not data.get("other_description", "").strip():
            self.add_error("other_description", _("Please describe the side effect in your own words."))
        return data

    def fibser_answers(self) -> list[int]:
        return [self.cleaned_data[f"q{n}"] for n in range(1, len(scales.FIBSER.items) + 1)]

    def effects(self) -> list[EffectReport]:
        chosen = [
            EffectReport(effect=code, severity=self.cleaned_data[f"effect_{code}"])
            for code in self.effect_codes
            if self.cleaned_data.get(f"effect_{code}")
        ]
        if self.cleaned_data.get("other_severity"):
            chosen.append(
                EffectReport(
                    effect=side_effect_catalogue.OTHER,
                    severity=self.cleaned_data["other_severity"],
                    description=self.cleaned_data["other_description"],
                )
            )
        return chosen


def _minutes_label(minutes: int) -> str:
    if minutes == 0:
        return _("At the time it is due")
    if minutes % 60 == 0:
        hours = minutes // 60
        return ngettext("%(count)s hour before", "%(count)s hours before", hours) % {"count": hours}
    return ngettext("%(count)s minute before", "%(count)s minutes before", minutes) % {"count": minutes}


def _local_time_field(label: str) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=False,
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": gettext_lazy("Enter a time like 22:00.")},
    )


class ReminderSettingsForm(forms.Form):
    """Dose reminders: per medicine on or off and how early, and quiet hours on the patient's clock.

    One switch per medicine governs every channel (email, and Web Push on devices that turned
    notifications on: rules.reminders sends both for an enabled reminder), so its label says
    "Remind me", not "Email me".
    """

    DEFAULT_MINUTES = 15
    SERVICE_FIELDS = {"quiet_from": "quiet_from", "quiet_until": "quiet_until", NON_FIELD_ERRORS: NON_FIELD_ERRORS}

    quiet_from = _local_time_field(gettext_lazy("Quiet from"))
    quiet_until = _local_time_field(gettext_lazy("Quiet until"))

    def __init__(self, *args, medicines: list[tuple[Prescription, PrescriptionReminder | None]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.medicines = medicines
        minutes = [(m, _minutes_label(m)) for m in MINUTES_BEFORE_CHOICES]
        for rx, current in medicines:
            name = rx.drug.display_name
            self.fields[f"on_{rx.pk}"] = forms.BooleanField(
                label=_("Remind me before each dose of %(medicine)s") % {"medicine": name},
                required=False,
                initial=bool(current and current.enabled),
            )
            self.fields[f"minutes_{rx.pk}"] = forms.TypedChoiceField(
                label=_("When, for %(medicine)s") % {"medicine": name},
                choices=minutes,
                coerce=int,
                initial=current.minutes_before if current else self.DEFAULT_MINUTES,
                error_messages={"invalid_choice": _("Choose one of the times in the list.")},
            )
            self.SERVICE_FIELDS = {**self.SERVICE_FIELDS, f"minutes_{rx.pk}": f"minutes_{rx.pk}"}

    @property
    def rows(self) -> list[tuple[Prescription, forms.BoundField, forms.BoundField]]:
        return [(rx, self[f"on_{rx.pk}"], self[f"minutes_{rx.pk}"]) for rx, _ in self.medicines]

    def choices(self) -> dict[int, ReminderChoice]:
        return {
            rx.pk: ReminderChoice(
                enabled=self.cleaned_data[f"on_{rx.pk}"], minutes_before=self.cleaned_data[f"minutes_{rx.pk}"]
            )
            for rx, _ in self.medicines
        }


# The preset skip reasons' labels, in the portal's words (DoseEvent.SkipChoice stays English for clinicians).
SKIP_LABELS = {
    DoseEvent.SkipChoice.FORGOT: gettext_lazy("Forgot"),
    DoseEvent.SkipChoice.SIDE_EFFECTS: gettext_lazy("Side effects"),
    DoseEvent.SkipChoice.RAN_OUT: gettext_lazy("Ran out"),
    DoseEvent.SkipChoice.FELT_BETTER: gettext_lazy("Felt better"),
    DoseEvent.SkipChoice.OTHER: gettext_lazy("Other reason"),
}


def skip_choices() -> list[tuple[str, str]]:
    """DoseEvent.SkipChoice for the patient, each label in the active language."""
    return [(value, str(SKIP_LABELS.get(value, label))) for value, label in DoseEvent.SkipChoice.choices]


class LanguageForm(forms.Form):
    """The portal's language switcher: one of PortalLanguage, and the page to go back to."""

    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        choices=PortalLanguage.choices,
        error_messages={
            "required": gettext_lazy("Choose one of the languages in the list."),
            "invalid_choice": gettext_lazy("Choose one of the languages in the list."),
        },
    )
    # No max_length: a long address must not cost the patient the language (next_url checks it).
    next = forms.CharField(required=False)

    def next_url(self, request: HttpRequest) -> str:
        """Back to the page the switcher was on, if it is on this site; else Today."""
        target = self.cleaned_data.get("next") or ""
        if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return "/"
