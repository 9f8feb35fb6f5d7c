# Data: fold the open flags of before 0016 into problems, as the sweeps now raise them.
#
# 1. Every unresolved flag gets its one fact (what it said, when it arose) and its priority.
# 2. Open per-dose "dose.missed" flags and the "dose.missed_repeated" flag of the same patient and
#    drug become one problem per (patient, drug); per-session "esk.session_missed" flags one per
#    (patient, drug); per-score "scale.worsening" flags one per (patient, PHQ-9).
#    The oldest flag of a group carries the problem; each other flag's fact moves to it and the
#    flag itself is resolved by the tracker with a note naming the problem. Nothing is deleted.
# The reverse keeps the folded rows as they are (facts and resolved flags are history).

from django.db import migrations
from django.db.models import Q
from django.utils import timezone

# A snapshot of clinical.TRIAGE_PRIORITY when this migration was written (migrations never
# import app code); later changes reach flags as the sweeps touch them.
PRIORITY = {
    "scale.suicidality": 100, "esk.outside_clinic": 95, "esk.discharged_not_recovered": 90,
    "esk.early_discharge": 85, "esk.bp_no_decision": 80, "dose.over_daily_max": 75,
    "scale.worsening_severe": 70, "se.burden": 65, "dose.missed_repeated": 60, "se.severe": 55,
    "scale.worsening": 50, "esk.interaction": 45, "se.metabolic_weight": 40, "scale.not_improving": 35,
    "se.after_dose_increase": 30, "se.persistent": 28, "esk.session_missed": 25,
    "esk.monitoring_incomplete": 22, "se.young_adult_monitoring_overdue": 20, "esk.rems_form_overdue": 15,
    "esk.trd_unconfirmed": 12, "dose.missed": 10, "se.checkin_overdue": 5,
}
UNRESOLVED = ~Q(status="resolved")


def _fact_key(flag):
    return f"{flag.subject_type_id}:{flag.subject_id}" if flag.subject_id else flag.dedup_key


def add_facts(apps, schema_editor):
    Flag = apps.get_model("tracker", "Flag")
    FlagFact = apps.get_model("tracker", "FlagFact")
    ContentType = apps.get_model("contenttypes", "ContentType")
    planned_type = ContentType.objects.filter(app_label="tracker", model="planneddose").first()
    for flag in Flag.objects.filter(UNRESOLVED).iterator():
        flag.priority = PRIORITY.get(flag.kind, 0)
        flag.last_occurred_at = flag.raised_at
        flag.save(update_fields=["priority", "last_occurred_at"])
        if flag.kind == "dose.missed_repeated":
            continue  # an escalation, not a fact: its doses are the facts of the problem it joins
        key = f"planned:{flag.subject_id}" if planned_type and flag.subject_type_id == planned_type.pk else _fact_key(flag)
        FlagFact.objects.create(
            flag=flag, key=key, subject_type_id=flag.subject_type_id, subject_id=flag.subject_id,
            message=flag.message, occurred_at=flag.raised_at,
        )


def _fold(group, new_key, Flag, FlagFact, now):
    """Make the oldest flag of ``group`` the problem under ``new_key``; resolve the rest into it."""
    group = sorted(group, key=lambda f: (f.raised_at, f.pk))
    problem = max(group, key=lambda f: (f.severity, -group.index(f)))  # the most severe, oldest first
    problem.dedup_key = new_key
    for other in group:
        if other.pk == problem.pk:
            continue
        FlagFact.objects.filter(flag=other).update(flag=problem)
        other.status = "resolved"
        other.resolved_at = now
        other.resolution_note = f"Folded into flag #{problem.pk}: one problem per patient and medicine."
        other.save(update_fields=["status", "resolved_at", "resolution_note"])
    facts = FlagFact.objects.filter(flag=problem, answered_at__isnull=True)
    problem.occurrences = max(facts.count(), 1)
    problem.raised_at = group[0].raised_at
    problem.last_occurred_at = max(f.raised_at for f in group)
    problem.priority = PRIORITY.get(problem.kind, 0)
    if any(f.status == "open" for f in group):
        problem.status = "open"
    problem.save()


def fold(apps, schema_editor):
    Flag = apps.get_model("tracker", "Flag")
    FlagFact = apps.get_model("tracker", "FlagFact")
    PlannedDose = apps.get_model("tracker", "PlannedDose")
    Assessment = apps.get_model("tracker", "Assessment")
    now = timezone.now()
    groups = {}
    per_dose = Flag.objects.filter(UNRESOLVED, kind__in=["dose.missed", "esk.session_missed"], subject_id__isnull=False)
    drug_of = dict(
        PlannedDose.objects.filter(id__in=per_dose.values("subject_id")).values_list("id", "prescription__drug_id")
    )
    for flag in per_dose:
        drug = drug_of.get(flag.subject_id)
        if drug is not None:
            groups.setdefault(f"{flag.kind}:patient:{flag.patient_id}:drug:{drug}", []).append(flag)
    for flag in Flag.objects.filter(UNRESOLVED, kind="dose.missed_repeated"):
        # Its key was dose.missed_repeated:patient:P:drug:D; the problem's is dose.missed:patient:P:drug:D.
        groups.setdefault("dose.missed" + flag.dedup_key.removeprefix("dose.missed_repeated"), []).append(flag)
    worsening = Flag.objects.filter(UNRESOLVED, kind="scale.worsening", subject_id__isnull=False)
    instrument_of = dict(Assessment.objects.filter(id__in=worsening.values("subject_id")).values_list("id", "instrument"))
    for flag in worsening:
        instrument = instrument_of.get(flag.subject_id, "phq9")
        groups.setdefault(f"scale.worsening:patient:{flag.patient_id}:{instrument}", []).append(flag)
    for key, group in groups.items():
        _fold(group, key, Flag, FlagFact, now)


class Migration(migrations.Migration):

    dependencies = [
        ("tracker", "0016_flag_problems_and_facts"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(add_facts, migrations.RunPython.noop),
        migrations.RunPython(fold, migrations.RunPython.noop),
    ]
