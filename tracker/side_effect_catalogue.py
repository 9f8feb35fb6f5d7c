"""Side effects patients can pick from, grouped by the drug classes that commonly cause them.

From clinical-reference §5 "Common side effects by class". Patients may also describe an
effect in their own words ("other").
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_noop

from tracker.models.drugs import DrugClass


@dataclass(frozen=True)
class Effect:
    code: str
    label: str  # in plain words, for patients; English here (clinicians, flags), translated by the portal as shown
    classes: frozenset[str]


def _e(code: str, label: str, *classes: str) -> Effect:
    return Effect(code, label, frozenset(classes))


A = DrugClass
EFFECTS: tuple[Effect, ...] = (
    _e("nausea", gettext_noop("Feeling sick (nausea) or being sick"), A.SSRI, A.SNRI, A.NMDA_ANTAGONIST),
    _e("diarrhoea", gettext_noop("Diarrhoea"), A.SSRI, A.SNRI),
    _e("headache", gettext_noop("Headache"), A.SSRI, A.SNRI),
    _e("insomnia", gettext_noop("Trouble sleeping"), A.SSRI, A.SNRI, A.NDRI, A.STIMULANT),
    _e("dizziness", gettext_noop("Dizziness"), A.SSRI, A.SNRI, A.NMDA_ANTAGONIST),
    _e("sexual_dysfunction", gettext_noop("Changes in sex drive or sexual function"), A.SSRI, A.SNRI),
    _e("sedation", gettext_noop("Feeling very sleepy or drowsy"), A.NASSA, A.SGA, A.BENZODIAZEPINE, A.NMDA_ANTAGONIST),
    _e("weight_gain", gettext_noop("Weight gain or bigger appetite"), A.NASSA, A.SGA),
    _e("reduced_appetite", gettext_noop("Less appetite"), A.STIMULANT),
    _e("anxiety", gettext_noop("Feeling anxious, jittery or restless"), A.NDRI, A.STIMULANT),
    _e("akathisia", gettext_noop("An inner restlessness, unable to keep still"), A.SGA),
    _e("tremor_stiffness", gettext_noop("Shaking, stiffness or slow movements"), A.SGA),
    _e("palpitations", gettext_noop("Racing or pounding heart"), A.STIMULANT, A.SNRI),
    _e("dissociation", gettext_noop("Feeling detached or unreal"), A.NMDA_ANTAGONIST),
    _e("urinary", gettext_noop("Pain or urgency when passing urine"), A.NMDA_ANTAGONIST),
    _e("unsteadiness", gettext_noop("Unsteadiness or falls"), A.BENZODIAZEPINE),
    _e("thirst_tremor", gettext_noop("Thirst, passing a lot of urine or a fine tremor"), A.MOOD_STABILISER),
)
OTHER = "other"
BY_CODE: dict[str, Effect] = {e.code: e for e in EFFECTS}


def choices_for(drug_classes: set[str] | None = None) -> list[tuple[str, str]]:
    """Form choices: effects common to the patient's drug classes first, then the rest, then other."""
    classes = drug_classes or set()
    first = [e for e in EFFECTS if e.classes & classes]
    rest = [e for e in EFFECTS if not e.classes & classes]
    return [(e.code, e.label) for e in first + rest] + [(OTHER, gettext_noop("Something else (describe it)"))]


def common_codes(drug_classes: set[str] | None = None) -> set[str]:
    """The effects common to these drug classes: the check-in asks about them first, the rest
    only behind "Something else?"."""
    classes = drug_classes or set()
    return {e.code for e in EFFECTS if e.classes & classes}


def label(code: str) -> str:
    return BY_CODE[code].label if code in BY_CODE else gettext_noop("Other side effect")
