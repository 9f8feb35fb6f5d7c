"""Every clinical threshold the tracker uses, named, cited and configurable in one place.

Each value cites its row in ``shared/docs/clinical-reference.md`` as ``§section key``.
A clinic changes a value without a code change by listing it in the JSON file named by
the ``TRACKER_CLINICAL_OVERRIDES`` environment variable, e.g. ``{"ADHERENCE_MIN_SHARE": 0.9}``.
The tracker supports clinicians; these values raise flags, they never decide treatment.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # §7 grace: a planned dose is missed after due + min(class default, half the interval
    # to the next dose). Hours per drug class; PRN is never missed.
    "GRACE_HOURS_BY_CLASS": {
        "ssri": 6,
        "snri": 6,
        "ndri": 6,
        "nassa": 6,
        "maoi": 6,
        "sga": 6,
        "mood_stabiliser": 4,
        "stimulant": 4,
        "benzodiazepine": 4,
        "nmda_antagonist": 24,
    },
    "GRACE_HOURS_DEFAULT": 6,
    # §7 matching: a logged dose matches the nearest open planned dose within ±½ interval,
    # capped at 12 h; within ±2 h it is on time, later it is late.
    "MATCH_WINDOW_CAP_HOURS": 12,
    "ON_TIME_WINDOW_HOURS": 2,
    # §7 escalation: ≥3 consecutive misses (≥2 for a high discontinuation-risk drug) or a
    # 7-day taken share below 80 % makes a missed-dose flag urgent.
    "ESCALATE_CONSECUTIVE_MISSES": 3,
    "ESCALATE_CONSECUTIVE_MISSES_HIGH_RISK": 2,
    "ADHERENCE_WINDOW_DAYS": 7,
    "ADHERENCE_MIN_SHARE": 0.8,
    # Project default: the share is judged only once the window holds this many doses,
    # so one missed first dose of a new course is not "0 % adherence".
    "ADHERENCE_MIN_JUDGED_DOSES": 5,
    # [P] REPEATED_MISS_LOOKBACK_DAYS: §7 escalation counts consecutive misses but gives no
    # lookback. The sweep counts a run over at least this many days of history, and always over
    # as many of the schedule's intervals as the escalation needs (ESCALATE_CONSECUTIVE_MISSES,
    # or _HIGH_RISK if larger), so a course dosed every 14 or 28 days escalates too
    # (repeated_miss_lookback).
    "REPEATED_MISS_LOOKBACK_DAYS": 28,
    # §5 discontinuation_risk: "high" drugs (by catalogue name) warrant earlier escalation.
    "DISCONTINUATION_RISK_HIGH": ["paroxetine", "venlafaxine", "fluvoxamine", "phenelzine"],
    "DISCONTINUATION_RISK_INTERMEDIATE": ["sertraline", "duloxetine", "desvenlafaxine", "vortioxetine"],
    # §6 citalopram: maximum 20 mg/day above age 60 (label). {drug: [age_over, max_mg]}.
    "AGE_ADJUSTED_MAXIMUM": {"citalopram": [60, 20]},
    # §4 PHQ-9 item 9: any answer ≥ 1 raises an urgent flag in the save transaction.
    "SUICIDALITY_ITEM9_MIN": 1,
    # §4 mcid / worsening: a rise of ≥ 5 points from baseline or from the previous score.
    "WORSENING_POINTS": 5,
    # §4 bands: PHQ-9 20–27 is the severe band.
    "PHQ9_SEVERE_FROM": 20,
    # [P] No flag for a severe score that is not a §4 worsening (a severe first score, or a
    # rise of < 5 points into the band): §4 does not call it worsening, the clinician sees the
    # band on the timeline and caseload, and item 9 flags on its own (SUICIDALITY_ITEM9_MIN).
    # A clinic that wants one adds its own key and flag kind, never a reason of scale.worsening.
    # [P] scale.worsening_severe: a §4 worsening (≥ 5 points up) whose score lands in the severe
    # band is urgent, not a warning. The reference gives worsening no severity of its own beyond
    # §0's [P] warning; this is a project policy so that a patient getting worse into severe
    # depression is not ranked with single missed doses. Set to 20 (warning) to switch it off.
    "WORSENING_SEVERE_BAND_SEVERITY": 30,
    # §4 baseline: the last PHQ-9 in the 14 days before the course started, else the
    # first within 7 days after.
    "BASELINE_DAYS_BEFORE": 14,
    "BASELINE_DAYS_AFTER": 7,
    # §4 response: ≥ 50 % reduction from baseline; remission: PHQ-9 < 5, MADRS ≤ 10.
    "RESPONSE_REDUCTION": 0.5,
    "REMISSION_BELOW": {"phq9": 5, "madrs": 11},
    # §4 "Outcome definitions (PHQ-9 unless noted)": response is defined for PHQ-9 only, so no
    # GAD-7 or MADRS response is flagged or drawn.
    "RESPONSE_INSTRUMENTS": ["phq9"],
    # §4 Other instruments, GAD-7: "Screen positive ≥ 10" (drawn on the GAD-7 chart).
    "GAD7_SCREEN_POSITIVE_FROM": 10,
    # §4 not_improving: day ≥ 28 at an adequate dose with < 20 % reduction, or day ≥ 56
    # with < 50 %. [(day, minimum reduction), ...]
    "NOT_IMPROVING_CHECKPOINTS": [[28, 0.2], [56, 0.5]],
    # §4 time_course: "Severe MDD on second-generation antidepressants: ~50 % respond and 32 %
    # remit by week 6; 68 % and 49 % by week 12." [[week, share responded, share remitted], ...]
    # [P] How the timeline draws it (tracker.trajectory): these are rates, not a PHQ-9 curve, so
    # the band is drawn only at and between these weeks, from the remission level (< 5, drawn at
    # 4) to the response level (≤ 50 % of the course's baseline). At week 6 half of patients are
    # at or below its top and a third below its bottom; at week 12 two thirds and a half: the
    # middle patient sits at its top by week 6 and near its bottom by week 12. Nothing before
    # week 6: §4 gives no rate for weeks 0–5 (early_improvement is a predictor, not a rate).
    "TRAJECTORY_CHECKPOINTS": [[6, 0.50, 0.32], [12, 0.68, 0.49]],
    # [P] "Not on track" on the caseload: §4 not_improving (rules.symptoms.not_improving_flags,
    # NOT_IMPROVING_CHECKPOINTS, read as it is) once the course has run this many days, never
    # earlier: §4 time_course "do not switch at week 2", and its first rates are "by week 6".
    # Decision support for the clinician, not a decision.
    "TRAJECTORY_NOT_ON_TRACK_FROM_DAY": 42,
    # §5 FIBSER burden: 3–4 address the side effect (warning), 5–6 lower the dose or switch (urgent).
    "FIBSER_BURDEN_WARNING": 3,
    "FIBSER_BURDEN_URGENT": 5,
    # §5 persistent_side_effect [P]: the same effect at ≥ moderate in reports spanning ≥ 14 days.
    "PERSISTENT_SIDE_EFFECT_DAYS": 14,
    # [P] se.severe: a side effect the patient rates "severe" raises a flag of this severity
    # (urgent: contact the patient today). The reference has no such row; project policy.
    "SEVERE_SIDE_EFFECT_SEVERITY": 30,
    # [P] se.after_dose_increase: a new side effect within 14 days of a dose increase is flagged.
    "SIDE_EFFECT_AFTER_INCREASE_DAYS": 14,
    # [P] se.checkin_overdue: weekly check-ins; one more than 7 + 2 days after the last is overdue.
    "CHECKIN_INTERVAL_DAYS": 7,
    "CHECKIN_OVERDUE_AFTER_DAYS": 2,
    # §5 young_adult_cadence: under 25 at the start, PHQ-9 weekly for 4 weeks then every
    # 2 weeks to week 12, restarting at each start or dose change; > 2 days overdue flags.
    "YOUNG_ADULT_AGE_BELOW": 25,
    "YOUNG_ADULT_WEEKLY_WEEKS": 4,
    "YOUNG_ADULT_UNTIL_WEEK": 12,
    "YOUNG_ADULT_OVERDUE_DAYS": 2,
    # [P] A PHQ-9 up to 3 days before a young-adult due date counts for that date (a patient
    # who answers a little early is not overdue).
    "YOUNG_ADULT_EARLY_DAYS": 3,
    # §5 antipsychotic_metabolic (ADA/APA 2004): consider switching after ≥ 5 % weight gain
    # from baseline; §0 se.metabolic_weight raises a warning at this gain on an antipsychotic.
    "METABOLIC_WEIGHT_GAIN_PERCENT": 5,
    # §5 antipsychotic_metabolic asks for a weight at baseline. Tracker default [P]: the baseline
    # is the latest weight in the 90 days up to the course start (one quarter, the reference's
    # monitoring interval), else the first in the 7 days after it (as the PHQ-9 baseline, §4).
    "WEIGHT_BASELINE_DAYS_BEFORE": 90,
    "WEIGHT_BASELINE_DAYS_AFTER": 7,
    # --- Triage (the worklist) -------------------------------------------------------------
    # [P] TRIAGE_PRIORITY: the clinical priority of a flag within its severity; the worklist
    # ranks patients by their most severe open flag, then by this, then by how long it waited.
    # The reference gives no order: this is project policy, a clinic can change it. Higher comes
    # first; kinds not listed rank 0. Severity always wins: these only order flags of one severity.
    "TRIAGE_PRIORITY": {
        "scale.suicidality": 100,
        "esk.outside_clinic": 95,
        "esk.discharged_not_recovered": 90,
        "esk.early_discharge": 85,
        "esk.bp_no_decision": 80,
        "dose.over_daily_max": 75,
        "scale.worsening_severe": 70,
        "se.burden": 65,
        "dose.missed_repeated": 60,
        "se.severe": 55,
        "scale.worsening": 50,
        "esk.interaction": 45,
        "se.metabolic_weight": 40,
        "scale.not_improving": 35,
        "se.after_dose_increase": 30,
        "se.persistent": 28,
        "esk.session_missed": 25,
        "esk.monitoring_incomplete": 22,
        "se.young_adult_monitoring_overdue": 20,
        "monitor.overdue": 18,
        "esk.rems_form_overdue": 15,
        "esk.trd_unconfirmed": 12,
        "dose.missed": 10,
        "se.checkin_overdue": 5,
        # [P] issue 15: a positive ASEX screen is a side effect to address, ranked beside
        # "new side effect after a dose increase".
        "se.sexual_dysfunction": 29,
    },
    # [P] Good news is not a to-do: these kinds stay off the worklist's default view and show
    # on the timeline and the caseload instead (clinicians can still list them).
    "GOOD_NEWS_KINDS": ["scale.response", "scale.remission"],
    # §7 / project default: planned doses are generated this many days ahead.
    "PLANNING_HORIZON_DAYS": 14,
    # Project default: a dose may be logged up to this many minutes in the future
    # (clock skew between a phone and the server), never more.
    "FUTURE_LOG_TOLERANCE_MINUTES": 5,
    # --- Patient logging in the portal (issue 15) ------------------------------------------
    # [P] PATIENT_LOG_MAX_DAYS_BACK: a patient may log a dose taken at most this many days ago.
    # One week, the §7 escalation's adherence window: a dose recalled within it still corrects
    # the share and answers its missed flag; an older memory is told to the care team, who can
    # record it. Outside-clinic reports (§1 setting) are never refused for their age.
    "PATIENT_LOG_MAX_DAYS_BACK": 7,
    # [P] PATIENT_UNDO_MINUTES: a patient may undo their own tap for this long after saving it;
    # the record stays in history as entered in error by the patient. Later, the care team corrects it.
    "PATIENT_UNDO_MINUTES": 10,
    # --- Questionnaires offered by course: ASEX and PCL-5 (issue 15) -----------------------
    # §5 ASEX rule [W]: sexual dysfunction if total ≥ 19, or any item ≥ 5, or any three items ≥ 4.
    "ASEX_TOTAL_MIN": 19,
    "ASEX_ANY_ITEM_MIN": 5,
    "ASEX_SEVERAL_ITEMS_MIN": 4,
    "ASEX_SEVERAL_ITEMS_COUNT": 3,
    # [P] ASEX_DRUG_CLASSES: the portal offers ASEX to patients with a medicine of these classes in
    # force. §5 "Common side effects by class" lists sexual dysfunction for SSRIs, and SNRIs
    # "as SSRIs"; a clinic may add others (for example "sga" for prolactin-raising antipsychotics).
    "ASEX_DRUG_CLASSES": ["ssri", "snri"],
    # [P] ASEX_INTERVAL_DAYS: offered again this many days after the last one (every 4 weeks); the
    # reference gives no cadence. Due at once when never filled in.
    "ASEX_INTERVAL_DAYS": 28,
    # [P] se.sexual_dysfunction: a positive ASEX screen raises a flag of this severity (warning:
    # address the side effect, as §5 FIBSER burden 3–4).
    "ASEX_POSITIVE_SEVERITY": 20,
    # §4 Other instruments, PCL-5: probable PTSD at 31–33; default 33.
    "PCL5_PROBABLE_PTSD_MIN": 33,
    # [P] PCL5_INDICATION_WORDS: the portal offers PCL-5 when a prescription in force has an
    # indication containing one of these (case-insensitive); the indication is free text.
    "PCL5_INDICATION_WORDS": ["ptsd", "post-traumatic", "posttraumatic", "post traumatic"],
    # [P] PCL5_INTERVAL_DAYS: the PCL-5 asks about the past month, so it is offered every 4 weeks.
    "PCL5_INTERVAL_DAYS": 28,
    # --- Ketamine / esketamine (clinical-reference §1, §2, §3) ---------------------------
    # §1 devices: 28 mg per esketamine device; §1 "Maximum per session": 84 mg (3 devices).
    "ESK_MG_PER_DEVICE": 28,
    "ESK_MAX_DEVICES": 3,
    # §1 bp_threshold: warn, and require a withhold/proceed decision, when the pre-dose
    # systolic > 140 or diastolic > 90 mmHg (strictly greater).
    "BP_THRESHOLD_SYSTOLIC": 140,
    "BP_THRESHOLD_DIASTOLIC": 90,
    # §1 bp_schedule: BP "~40 min after" the first device (the peak of the rise).
    "BP_40MIN_TARGET_MINUTES": 40,
    # §1 bp_40min_window: the "40-minute" reading counts if taken 30–60 min after the first device.
    "BP_40MIN_WINDOW_MINUTES": [30, 60],
    # §1 min_observation / discharge_rule: ≥ 120 min from the first device to discharge,
    # with MOAA/s 5 and dissociation resolved.
    "ESK_MIN_OBSERVATION_MINUTES": 120,
    "DISCHARGE_MOAAS_REQUIRED": 5,
    # §2 tracker defaults (IV ketamine): observe ≥ 60 min after the infusion ends; warn above
    # 0.75 mg/kg or for an infusion shorter than 40 min.
    "KETAMINE_OBSERVATION_AFTER_INFUSION_MINUTES": 60,
    "KETAMINE_WARN_ABOVE_MG_PER_KG": "0.75",
    "KETAMINE_WARN_INFUSION_UNDER_MINUTES": 40,
    # --- Prescribing checks (clinical-reference §1, §6; tracker/dose_checks.py) -------------------
    # §1 indication: esketamine is "Not approved < 18" -> refused below this age. {drug: min age}.
    "MINIMUM_AGE_BY_DRUG": {"esketamine": 18},
    # §1 indication: adult TRD, or adult MDD with acute suicidal ideation/behaviour. The label
    # indications, as the prescriber would write them (offered by the forms).
    "ESK_INDICATIONS": {
        "trd": "Treatment-resistant depression",
        "mdd_si": "Major depressive disorder with acute suicidal ideation or behaviour",
    },
    # [P] ESK_INDICATION_WORDS: the indication is free text (max 200 characters), so the tracker
    # recognises a label indication by these words (lower case; any one matches; "mdd_si" is tried
    # first, so "TRD with suicidal ideation" counts as MDD with suicidal ideation). An indication
    # matching neither saves with a warning, never a refusal: the prescriber may use it off-label.
    "ESK_INDICATION_WORDS": {
        "mdd_si": ["suicid"],
        "trd": ["treatment-resistant", "treatment resistant", "trd"],
    },
    # §1 "Dosing by phase": the first session's dose per indication (TRD day 1: 56 mg; MDD with
    # acute suicidal ideation: 84 mg). A new esketamine course starting at another dose warns.
    "ESK_DAY1_DOSE_MG": {"trd": 56, "mdd_si": 84},
    # §0 esk.monitoring_incomplete: required session fields still missing 6 h after the first device.
    "SESSION_MONITORING_DUE_HOURS": 6,
    # Project default: a pre-dose BP over threshold left without a decision this long is flagged
    # (the session form itself refuses dosing without one; this catches abandoned sessions).
    "BP_DECISION_GRACE_MINUTES": 60,
    # §1 REMS Patient Monitoring Form: submit within 7 days of the session.
    "REMS_FORM_DUE_DAYS": 7,
    # §1 "Missed session" (Skyscape drug guide, the label's advice whole): what esk.session_missed
    # asks the clinic to do. Text, so a clinic can word it as its own protocol does.
    "ESK_MISSED_SESSION_ADVICE": (
        "Contact the patient to rebook and ask whether depressive symptoms have worsened. "
        "If they have not, continue the current dosing schedule; if they have, consider returning "
        "to the previous dosing schedule (e.g. from every two weeks back to weekly, or from weekly "
        "back to twice weekly), by clinical judgement."
    ),
    # §1 "Dosing by phase" (TRD): induction twice weekly weeks 1–4, maintenance weekly weeks 5–8,
    # then weekly or every 2 weeks. §2 course: IV ketamine 6 infusions over 2–3 weeks.
    "ESK_INDUCTION_WEEKS": 4,
    "ESK_MAINTENANCE_WEEKS": 4,
    "KETAMINE_SERIES_INFUSIONS": 6,
    # §1 interactions (label §7), §2 interactions: drug classes whose active prescription
    # alongside ketamine/esketamine raises esk.interaction, with what to monitor.
    # {drug_class: [what it is, what to monitor]}
    "KETAMINE_INTERACTING_CLASSES": {
        "benzodiazepine": ["a benzodiazepine (CNS depressant)", "sedation, respiration and SpO2"],
        "stimulant": ["a psychostimulant (sympathomimetic)", "blood pressure and heart rate"],
        "maoi": ["an MAOI", "blood pressure"],
    },
    # §3 adequate_trial: an antidepressant (ATC N06A, excluding esketamine N06AX27) at ≥ the
    # lower bound of its usual range for ≥ 42 consecutive days; §3 count: distinct ingredients;
    # §3 non_response: PHQ-9 fell < 50 % over the trial, or the clinician marked it failed.
    "TRD_ANTIDEPRESSANT_ATC_PREFIX": "N06A",
    "TRD_EXCLUDED_ATC": ["N06AX27"],
    "TRD_ADEQUATE_TRIAL_DAYS": 42,
    "TRD_NON_RESPONSE_BELOW": 0.5,
    "TRD_MIN_FAILED_TRIALS": 2,
    # --- REMS form export and session preparation (issue 16) -------------------------------
    # §1 "REMS Patient Monitoring Form", concomitant medicines (each Y/N): which prescriptions
    # answer each question. The catalogue's DrugClass covers benzodiazepines, psychostimulants and
    # MAOIs; it has no class for opioids or non-benzodiazepine sedative hypnotics, so a drug also
    # counts by its ATC code prefix ([W] WHO ATC: N05BA/N05CD/N03AE benzodiazepines, N05CF
    # "Z-drugs", N06BA centrally acting sympathomimetics, N06AF/N06AG MAOIs, N02A opioids,
    # N07BC drugs for opioid dependence). {form column: {"classes": [...], "atc_prefixes": [...]}}
    "REMS_CONCOMITANT_CLASSES": {
        "benzodiazepines": {"classes": ["benzodiazepine"], "atc_prefixes": ["N05BA", "N05CD", "N03AE"]},
        "non_benzodiazepine_sedative_hypnotics": {"classes": [], "atc_prefixes": ["N05CF"]},
        "psychostimulants": {"classes": ["stimulant"], "atc_prefixes": ["N06BA"]},
        "maois": {"classes": ["maoi"], "atc_prefixes": ["N06AF", "N06AG"]},
        "opioids": {"classes": [], "atc_prefixes": ["N02A", "N07BC"]},
    },
    # [P] REMS_DISSOCIATION_CADSS_ABOVE: the form's "dissociation (Y/N)" is Y when the session's
    # CADSS total is above this (or dissociation was unresolved at discharge). §4 CADSS gives "no
    # clinical cut-off", so any dissociative symptom counts; a clinic may set its own cut-off.
    "REMS_DISSOCIATION_CADSS_ABOVE": 0,
    # ESK_BEFORE_SESSION_ADVICE: what the patient reads before each planned clinic session.
    # Food and drink: [F] droracle.ai/articles/538624 (quoting the label, §2 Dosage and
    # administration: avoid food for at least 2 hours and liquids for at least 30 minutes before,
    # against nausea and vomiting); not yet a row of clinical-reference §1, so verify it against
    # the current label. Ride home and driving: §1 driving [F] label §17. Text, so a clinic can
    # word it as its own leaflet does.
    "ESK_BEFORE_SESSION_ADVICE": [
        "Do not eat for 2 hours before your session: the medicine can make you feel sick.",
        "Do not drink anything for 30 minutes before your session.",
        "Arrange for someone to take you home. Do not drive or use machinery until the next day, "
        "after a restful sleep.",
    ],
    # --- Monitoring schedules (issue 18): what is measured when, per drug class -------------
    # Each schedule: the drug classes it follows, what it measures (a ClinicalMeasurement kind,
    # "weight" or "fibser"), due weeks from the anchor, then a repeat every so many weeks, and
    # whether a dose increase restarts it (a new anchor). Read by tracker.monitoring.
    "MONITORING_SCHEDULES": {
        # §5 antipsychotic_metabolic: "Weight/BMI at baseline, 4, 8 and 12 weeks, then quarterly."
        "antipsychotic_weight": {
            "classes": ["sga"],
            "measures": ["weight"],
            "weeks": [0, 4, 8, 12],
            "then_every_weeks": 13,
            "restart_on_dose_increase": False,
        },
        # §5 antipsychotic_metabolic: "BP, fasting glucose ... at baseline and 12 weeks, then annually".
        "antipsychotic_bp_glucose": {
            "classes": ["sga"],
            "measures": ["blood_pressure", "fasting_glucose"],
            "weeks": [0, 12],
            "then_every_weeks": 52,
            "restart_on_dose_increase": False,
        },
        # §5 antipsychotic_metabolic: "... and lipids at baseline and 12 weeks, then annually (lipids
        # every 5 years)": the lipid panel repeats every 5 years.
        "antipsychotic_lipids": {
            "classes": ["sga"],
            "measures": ["total_cholesterol", "ldl", "hdl", "triglycerides"],
            "weeks": [0, 12],
            "then_every_weeks": 260,
            "restart_on_dose_increase": False,
        },
        # §5 Stimulants: "BP and pulse at baseline and at each dose increase."
        "stimulant_bp_pulse": {
            "classes": ["stimulant"],
            "measures": ["blood_pressure", "pulse"],
            "weeks": [0],
            "then_every_weeks": None,
            "restart_on_dose_increase": True,
        },
        # §5 FIBSER: "STAR*D rated it at weeks 2, 4, 6, 9, 12" (antidepressant courses; the
        # reference gives no restart, so a dose change does not restart it).
        "fibser": {
            "classes": ["ssri", "snri", "ndri", "nassa", "maoi"],
            "measures": ["fibser"],
            "weeks": [2, 4, 6, 9, 12],
            "then_every_weeks": None,
            "restart_on_dose_increase": False,
        },
    },
    # [P] A measurement taken up to this many days before a due date fulfils it (a baseline
    # taken the week before the course starts counts as the baseline).
    "MONITORING_EARLY_DAYS": 7,
    # [P] MONITORING_OVERDUE_GRACE_DAYS: a due measurement is flagged (monitor.overdue, warning)
    # once this many days have passed after its due date with nothing recorded in its window.
    # The reference gives dates, not tolerances: a week leaves room to book a blood test. Where the
    # next date comes sooner (FIBSER weeks 2, 4, 6), the grace ends the day before the next date's
    # MONITORING_EARLY_DAYS begin, and never before the due day itself (monitoring.due_windows).
    "MONITORING_OVERDUE_GRACE_DAYS": 7,
    # --- Unit conversions (KindSpec.other_units): mg/dL per mmol/L, from each molar mass ÷ 10 ----
    # [W] Glucose, C6H12O6, 180.16 g/mol -> 18.016 (the "× 18" every diabetes text uses, to 3 places).
    "GLUCOSE_MG_DL_PER_MMOL_L": Decimal("18.016"),
    # [F] Cholesterol (total, LDL and HDL alike, reported as cholesterol), 386.65 g/mol -> 38.67, and
    # triglycerides (as triolein, 885.7 g/mol) -> 88.57: Haney EM et al., Screening for Lipid
    # Disorders in Children and Adolescents, AHRQ Evidence Syntheses No. 47 (2007), Appendix 2
    # "Units of Measure Conversion Formulas" (38.66976 and 88.57396), via
    # mdapp.co/cholesterol-conversion-calculator-600.
    "CHOLESTEROL_MG_DL_PER_MMOL_L": Decimal("38.67"),
    "TRIGLYCERIDES_MG_DL_PER_MMOL_L": Decimal("88.57"),
}


def get(key: str) -> Any:
    """The value for ``key``: the clinic's override if it set one, else the default."""
    overrides = getattr(settings, "TRACKER_CLINICAL_OVERRIDES", {}) or {}
    if key in overrides:
        return overrides[key]
    return DEFAULTS[key]


def triage_priority(kind: str) -> int:
    """[P] TRIAGE_PRIORITY: how a flag of ``kind`` ranks among flags of the same severity."""
    return int(get("TRIAGE_PRIORITY").get(kind, 0))


def taken_share(taken: int, judged: int) -> float | None:
    """§7 escalation's taken share: doses taken / doses judged (taken, skipped or missed).

    Doses still due and doses cancelled by a plan change are not judged; None when nothing
    was. The missed-dose sweep compares this share over ADHERENCE_WINDOW_DAYS with
    ADHERENCE_MIN_SHARE; the clinic export shows it over the exported days.
    """
    return taken / judged if judged else None


def repeated_miss_lookback(interval_days: int) -> timedelta:
    """[P] REPEATED_MISS_LOOKBACK_DAYS: how far back a run of missed doses is counted.

    At least REPEATED_MISS_LOOKBACK_DAYS, and at least one interval per miss the §7 threshold
    needs (one more than the run spans, a margin for grace and clock changes), so a plan of
    one dose every ``interval_days`` can reach its threshold; a daily plan keeps the 28 days.
    """
    needed = max(get("ESCALATE_CONSECUTIVE_MISSES"), get("ESCALATE_CONSECUTIVE_MISSES_HIGH_RISK"))
    return timedelta(days=max(get("REPEATED_MISS_LOOKBACK_DAYS"), interval_days * needed))


def grace_for_class(drug_class: str) -> timedelta:
    """§7 grace: the class default (the half-interval cap is applied by the scheduler)."""
    hours = get("GRACE_HOURS_BY_CLASS").get(drug_class, get("GRACE_HOURS_DEFAULT"))
    return timedelta(hours=hours)


def discontinuation_risk(drug_name: str) -> str:
    """§5 discontinuation_risk: "high", "intermediate" or "low" for a catalogue drug name."""
    name = drug_name.lower()
    if name in get("DISCONTINUATION_RISK_HIGH"):
        return "high"
    if name in get("DISCONTINUATION_RISK_INTERMEDIATE"):
        return "intermediate"
    return "low"


def minimum_age(drug_name: str) -> int | None:
    """§1 indication: the youngest age a drug is approved for (esketamine 18), if any."""
    value = get("MINIMUM_AGE_BY_DRUG").get(drug_name.lower())
    return None if value is None else int(value)


def age_adjusted_rule(drug_name: str) -> tuple[int, Decimal] | None:
    """§6: (over_age, maximum) where the label lowers the maximum with age, e.g. (60, 20) for citalopram."""
    rule = get("AGE_ADJUSTED_MAXIMUM").get(drug_name.lower())
    if rule is None:
        return None
    over_age, maximum = rule
    return int(over_age), Decimal(str(maximum))


def age_adjusted_maximum(drug_name: str, age_years: int | None) -> Decimal | None:
    """§6: a lower label maximum for older patients (citalopram 20 mg above 60), if any."""
    rule = get("AGE_ADJUSTED_MAXIMUM").get(drug_name.lower())
    if rule is None or age_years is None:
        return None
    over_age, maximum = rule
    return Decimal(str(maximum)) if age_years > over_age else None
