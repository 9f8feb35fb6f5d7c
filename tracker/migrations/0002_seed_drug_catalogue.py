"""Seed the drug catalogue from clinical-reference §6 (adult daily limits, ATC and RxNorm codes).

RxNorm codes are marked [W] in the reference: check them against RxNav before relying on
them. The esketamine ingredient code was not found, so it is left blank.
"""

from decimal import Decimal

from django.db import migrations

# name, display, class, routes, ATC, RxCUI, unit, basis, usual_min, usual_max, maximum, in_clinic, notes
CATALOGUE = [
    ("sertraline", "Sertraline", "ssri", ["oral"], "N06AB06", "36437", "mg", "day", "50", "200", "200", False,
     "Start 25–50 mg. Intermediate discontinuation risk."),
    ("fluoxetine", "Fluoxetine", "ssri", ["oral"], "N06AB03", "4493", "mg", "day", "20", "60", "80", False,
     "Long half-life; low discontinuation risk."),
    ("escitalopram", "Escitalopram", "ssri", ["oral"], "N06AB10", "321988", "mg", "day", "10", "20", "20", False, ""),
    ("citalopram", "Citalopram", "ssri", ["oral"], "N06AB04", "2556", "mg", "day", "20", "40", "40", False,
     "Maximum 20 mg/day above age 60, with hepatic impairment, CYP2C19 poor metabolisers or cimetidine; QT."),
    ("paroxetine", "Paroxetine (IR)", "ssri", ["oral"], "N06AB05", "32937", "mg", "day", "20", "50", "50", False,
     "High discontinuation risk: taper slowly."),
    ("venlafaxine", "Venlafaxine", "snri", ["oral"], "N06AX16", "39786", "mg", "day", "75", "225", "375", False,
     "Doses above 225 mg mostly inpatient/IR; dose-related BP rise. High discontinuation risk."),
    ("duloxetine", "Duloxetine", "snri", ["oral"], "N06AX21", "72625", "mg", "day", "40", "60", "120", False,
     "Above 60 mg: no added benefit in MDD."),
    ("bupropion", "Bupropion", "ndri", ["oral"], "N06AX12", "42347", "mg", "day", "300", "450", "450", False,
     "Start 150 mg; SR maximum 400 mg; IR single dose ≤ 150 mg. Seizure risk."),
    ("mirtazapine", "Mirtazapine", "nassa", ["oral"], "N06AX11", "15996", "mg", "day", "15", "45", "45", False,
     "Sedation, appetite and weight gain."),
    ("phenelzine", "Phenelzine", "maoi", ["oral"], "N06AF03", "8123", "mg", "day", "15", "90", "90", False,
     "MAOI: interacts with ketamine/esketamine (monitor BP)."),
    ("methylphenidate", "Methylphenidate (IR)", "stimulant", ["oral"], "N06BA04", "6901", "mg", "day",
     "20", "60", "60", False, "OROS ER maximum 72 mg. Psychostimulant: monitor BP with esketamine."),
    ("amphetamine", "Amphetamine mixed salts", "stimulant", ["oral"], "N06BA01", "725", "mg", "day",
     "5", "40", "60", False, "ADHD maximum 40 mg, narcolepsy 60 mg. Dextroamphetamine RxCUI 3288."),
    ("aripiprazole", "Aripiprazole", "sga", ["oral"], "N05AX12", "89013", "mg", "day", "2", "15", "30", False,
     "Adjunct in MDD 2–15 mg; schizophrenia 10–30 mg. Metabolic monitoring."),
    ("quetiapine", "Quetiapine", "sga", ["oral"], "N05AH04", "51272", "mg", "day", "150", "300", "800", False,
     "XR adjunct in MDD 150–300 mg; bipolar depression 300 mg. Sedation; metabolic monitoring."),
    ("lorazepam", "Lorazepam", "benzodiazepine", ["oral", "sublingual"], "N05BA06", "6470", "mg", "day",
     "2", "6", "10", False, "PRN allowed. CNS depressant: monitor sedation with ketamine/esketamine."),
    ("clonazepam", "Clonazepam", "benzodiazepine", ["oral"], "N03AE01", "2598", "mg", "day", "1", "2", "4", False,
     "Panic 1–2 mg. CNS depressant: monitor sedation with ketamine/esketamine."),
    ("lithium", "Lithium carbonate", "mood_stabiliser", ["oral"], "N05AN01", "42351", "mg", "day",
     "900", "1200", "1800", False, "Guided by serum level: 0.6–1.2 mEq/L maintenance; > 1.5 toxic."),
    ("esketamine", "Esketamine (nasal)", "nmda_antagonist", ["nasal"], "N06AX27", "", "mg", "session",
     "56", "84", "84", True, "Given only in a REMS-certified clinic; 28 mg per device; ≥ 2 h observation."),
    ("ketamine", "Ketamine (IV)", "nmda_antagonist", ["iv"], "N01AX03", "6130", "mg/kg", "session",
     "0.5", "0.75", None, True, "Off-label for depression; 0.5 mg/kg over 40 min is most common. "
     "No label maximum for this use: the tracker warns above 0.75 mg/kg."),
]


def seed(apps, schema_editor):
    Drug = apps.get_model("tracker", "Drug")
    for (name, display, klass, routes, atc, rxcui, unit, basis, lo, hi, mx, clinic_only, notes) in CATALOGUE:
        Drug.objects.update_or_create(
            name=name,
            defaults=dict(
                display_name=display, drug_class=klass, routes=routes, atc_code=atc, rxnorm_code=rxcui,
                dose_unit=unit, dose_basis=basis, usual_min=Decimal(lo), usual_max=Decimal(hi),
                maximum=Decimal(mx) if mx is not None else None, in_clinic_only=clinic_only, notes=notes,
            ),
        )


def unseed(apps, schema_editor):
    Drug = apps.get_model("tracker", "Drug")
    Drug.objects.filter(name__in=[row[0] for row in CATALOGUE], prescriptions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("tracker", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
