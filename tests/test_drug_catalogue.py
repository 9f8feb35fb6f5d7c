"""The seeded drug catalogue matches clinical-reference §6 row by row.

The table below is copied from the reference (not from the migration), so a typo in the
seed data shows up as a difference here.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tracker.models import DoseBasis, DoseUnit, Drug, DrugClass

pytestmark = pytest.mark.django_db

# clinical-reference §6: name, class, ATC, RXCUI, usual min, usual max, max.
# Esketamine: RXCUI "not found" -> blank; limits per session.
# Ketamine: usual 0.5 mg/kg per session, "warn > 0.75 mg/kg" (the upper end of the usual
# range, where the form warns), and no label maximum.
REFERENCE = [
    ("sertraline", DrugClass.SSRI, "N06AB06", "36437", "50", "200", "200"),
    ("fluoxetine", DrugClass.SSRI, "N06AB03", "4493", "20", "60", "80"),
    ("escitalopram", DrugClass.SSRI, "N06AB10", "321988", "10", "20", "20"),
    ("citalopram", DrugClass.SSRI, "N06AB04", "2556", "20", "40", "40"),
    ("paroxetine", DrugClass.SSRI, "N06AB05", "32937", "20", "50", "50"),
    ("venlafaxine", DrugClass.SNRI, "N06AX16", "39786", "75", "225", "375"),
    ("duloxetine", DrugClass.SNRI, "N06AX21", "72625", "40", "60", "120"),
    ("bupropion", DrugClass.NDRI, "N06AX12", "42347", "300", "450", "450"),
    ("mirtazapine", DrugClass.NASSA, "N06AX11", "15996", "15", "45", "45"),
    ("phenelzine", DrugClass.MAOI, "N06AF03", "8123", "15", "90", "90"),
    ("methylphenidate", DrugClass.STIMULANT, "N06BA04", "6901", "20", "60", "60"),
    ("amphetamine", DrugClass.STIMULANT, "N06BA01", "725", "5", "40", "60"),
    ("aripiprazole", DrugClass.SGA, "N05AX12", "89013", "2", "15", "30"),
    ("quetiapine", DrugClass.SGA, "N05AH04", "51272", "150", "300", "800"),
    ("lorazepam", DrugClass.BENZODIAZEPINE, "N05BA06", "6470", "2", "6", "10"),
    ("clonazepam", DrugClass.BENZODIAZEPINE, "N03AE01", "2598", "1", "2", "4"),
    ("lithium", DrugClass.MOOD_STABILISER, "N05AN01", "42351", "900", "1200", "1800"),
    ("esketamine", DrugClass.NMDA_ANTAGONIST, "N06AX27", "", "56", "84", "84"),
    ("ketamine", DrugClass.NMDA_ANTAGONIST, "N01AX03", "6130", "0.5", "0.75", None),
]
NAMES = [row[0] for row in REFERENCE]
IN_CLINIC_ONLY = {"esketamine", "ketamine"}


def test_catalogue_has_exactly_the_reference_drugs():
    assert len(REFERENCE) == 19
    assert sorted(Drug.objects.values_list("name", flat=True)) == sorted(NAMES)


@pytest.mark.parametrize(
    ("name", "drug_class", "atc", "rxcui", "usual_min", "usual_max", "maximum"), REFERENCE, ids=NAMES
)
def test_drug_row_matches_the_reference(name, drug_class, atc, rxcui, usual_min, usual_max, maximum):
    drug = Drug.objects.get(name=name)
    assert drug.drug_class == drug_class
    assert drug.atc_code == atc
    assert drug.rxnorm_code == rxcui
    assert drug.usual_min == Decimal(usual_min)
    assert drug.usual_max == Decimal(usual_max)
    assert drug.maximum == (Decimal(maximum) if maximum is not None else None)
    drug.full_clean()  # every seeded row passes the model's own validation


@pytest.mark.parametrize("name", NAMES)
def test_only_esketamine_and_ketamine_are_in_clinic_only(name):
    assert Drug.objects.get(name=name).in_clinic_only is (name in IN_CLINIC_ONLY)


@pytest.mark.parametrize("name", sorted(set(NAMES) - {"esketamine", "ketamine"}))
def test_other_drugs_are_daily_oral_mg(name):
    drug = Drug.objects.get(name=name)
    assert (drug.dose_unit, drug.dose_basis) == (DoseUnit.MG, DoseBasis.DAY)
    assert "oral" in drug.routes


def test_esketamine_limit_is_per_session_and_nasal():
    esketamine = Drug.objects.get(name="esketamine")
    assert (esketamine.dose_unit, esketamine.dose_basis) == (DoseUnit.MG, DoseBasis.SESSION)
    assert esketamine.routes == ["nasal"]
    assert esketamine.describe_limit() == "84 mg per clinic session"


def test_ketamine_is_mg_per_kg_per_session_with_no_label_maximum():
    ketamine = Drug.objects.get(name="ketamine")
    assert (ketamine.dose_unit, ketamine.dose_basis) == (DoseUnit.MG_PER_KG, DoseBasis.SESSION)
    assert ketamine.routes == ["iv"]
    assert ketamine.maximum is None


def test_limit_message_for_a_daily_drug():
    assert Drug.objects.get(name="lithium").describe_limit() == "1800 mg per local calendar day"
