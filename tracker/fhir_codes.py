"""The drug catalogue's RxNorm codes and the profiles the FHIR export claims, each in one place.

RxNorm (issue 19): one row per catalogue drug (``Drug.name``, clinical-reference §6), with the
source the code was checked against cited beside it. ``verified`` is True only where a public
source read for this table names that RxCUI for that concept; the codes §6 gives that no such
source confirmed stay here, marked unverified, and are **not exported** (a wrong RxNorm code
is worse for a consumer than none: the medication still carries its ATC code and its text).
Ingredient concepts (TTY ``IN``) are the right level for a catalogue of ingredients; esketamine's
row is the nasal-spray clinical drug form (TTY ``SCDF``), which is exactly what the catalogue row
is ("Esketamine (nasal)"), because its ingredient RxCUI was not found in any source read.
Each row records its term type because US Core's medication binding admits only some of them
(``US_CORE_MEDICATION_TTYS``): an ingredient code is exported but claims no US Core profile.

The seeded ``Drug.rxnorm_code`` column (migration 0002, from §6) is left as it is; for a drug of
this table the table wins. A drug a clinic adds itself (not in this table) is exported with the
``rxnorm_code`` its admin entered, which the admin form says to leave blank unless confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# CPIC's drug table (Clinical Pharmacogenetics Implementation Consortium, with PharmGKB ids):
# RxNorm ingredient RxCUIs, one per line ("RxNorm:<rxcui>\t<ingredient>\t<PharmGKB id>").
CPIC = "https://github.com/cpicpgx/cpic-schema/blob/05f9b09c5fcdf674efe3289411994b54f979aedb/drug.sql"
# NDCList's mirror of the NLM RxNorm release (RxNorm source version 20AA_260601F): the concept
# page names the RxCUI, its term type (SCDF) and its RxNorm string.
NDCLIST_ESKETAMINE = "https://ndclist.com/rxnorm/rxcui/2201623"
# Clinical-reference §6 itself marks its RxCUIs [W] ("check them against RxNav before seeding").
REFERENCE_ONLY = "clinical-reference §6 [W]; not found in the public material searched (2026-12-07)"


@dataclass(frozen=True)
class RxNormCode:
    code: str  # RxCUI
    tty: str  # RxNorm term type: IN (ingredient) or SCDF (clinical drug form)
    name: str  # RxNorm's own string for the concept (the coding's display)
    source: str  # where the code was checked
    verified: bool


def _cpic(code: str, name: str) -> RxNormCode:
    return RxNormCode(code, "IN", name, CPIC, verified=True)


def _unverified(code: str, name: str) -> RxNormCode:
    return RxNormCode(code, "IN", name, REFERENCE_ONLY, verified=False)


RXNORM: dict[str, RxNormCode] = {
    "sertraline": _cpic("36437", "sertraline"),
    "fluoxetine": _cpic("4493", "fluoxetine"),
    "escitalopram": _cpic("321988", "escitalopram"),
    "citalopram": _cpic("2556", "citalopram"),
    "paroxetine": _cpic("32937", "paroxetine"),
    "venlafaxine": _cpic("39786", "venlafaxine"),
    "duloxetine": _cpic("72625", "duloxetine"),
    "bupropion": _cpic("42347", "bupropion"),
    "mirtazapine": _cpic("15996", "mirtazapine"),
    "methylphenidate": _cpic("6901", "methylphenidate"),
    "aripiprazole": _cpic("89013", "aripiprazole"),
    "esketamine": RxNormCode("2201623", "SCDF", "esketamine Nasal Spray", NDCLIST_ESKETAMINE, verified=True),
    # §6's codes that no public source read for this table confirmed: kept, marked, not exported.
    "phenelzine": _unverified("8123", "phenelzine"),
    "amphetamine": _unverified("725", "amphetamine"),
    "quetiapine": _unverified("51272", "quetiapine"),
    "lorazepam": _unverified("6470", "lorazepam"),
    "clonazepam": _unverified("2598", "clonazepam"),
    "lithium": _unverified("42351", "lithium carbonate"),
    "ketamine": _unverified("6130", "ketamine"),
}


def rxnorm_coding(name: str, entered_code: str = "") -> dict[str, Any] | None:
    """The RxNorm Coding to export for a drug, or None (unverified, or no code at all)."""
    row = RXNORM.get(name.casefold())  # case-insensitive, like Drug.is_esketamine
    if row is None:
        return {"system": RXNORM_SYSTEM, "code": entered_code, "display": name} if entered_code else None
    if not row.verified:
        return None
    return {"system": RXNORM_SYSTEM, "code": row.code, "display": row.name}


def exported_rxnorm_code(name: str, entered_code: str = "") -> str:
    """The RxCUI the FHIR export sends for a drug ("" when it sends none): one answer for the API too."""
    coding = rxnorm_coding(name, entered_code)
    return coding["code"] if coding else ""


# US Core Medication Codes (VSAC 2.16.840.1.113762.1.4.1010.4, "Medication Clinical Drug", the
# extensible binding of us-core-medicationrequest's medication[x] in 6.1.0): RxNorm concepts whose
# term type is one of these (hl7.org/fhir/us/core ValueSet-us-core-medication-codes: "TTY in
# SCD,SBD,GPCK,BPCK,SCDG,SBDG,SCDF,SBDF"). Ingredients (IN) are not in it.
US_CORE_MEDICATION_TTYS = frozenset({"SCD", "SBD", "GPCK", "BPCK", "SCDG", "SBDG", "SCDF", "SBDF"})
_TTY_BY_CODE = {row.code: row.tty for row in RXNORM.values() if row.verified}


def in_us_core_medication_codes(code: str) -> bool:
    """Whether a verified RxCUI is of a term type US Core's medication value set takes.

    A code the table does not know (one a clinic's admin entered) has no known term type, so
    it does not qualify: the profile is claimed only where the code is known to meet it.
    """
    return _TTY_BY_CODE.get(code) in US_CORE_MEDICATION_TTYS


# --- Profiles (meta.profile), claimed only where the resource meets them (docs/fhir.md) --------

US_CORE_VERSION = "6.1.0"


def us_core(name: str) -> str:
    """A US Core 6.1.0 profile as a versioned canonical (``url|version``)."""
    return f"http://hl7.org/fhir/us/core/StructureDefinition/{name}|{US_CORE_VERSION}"


def base_vitals(name: str) -> str:
    """A FHIR R4 core vital-signs profile (http://hl7.org/fhir/R4/observation-vitalsigns.html)."""
    return f"http://hl7.org/fhir/StructureDefinition/{name}"


US_CORE_PATIENT = us_core("us-core-patient")
US_CORE_MEDICATION_REQUEST = us_core("us-core-medicationrequest")
US_CORE_SCREENING_ASSESSMENT = us_core("us-core-observation-screening-assessment")

# Vital signs by their LOINC code: the R4 core profile, the US Core 6.1.0 one (both fix that code)
# and the UCUM codes both allow for the value (SpO2: US Core pulse oximetry needs both 59408-5 and
# 2708-6 in the code; the export's SpO2 code carries both).
VITAL_SIGN_PROFILES: dict[str, tuple[str, str, frozenset[str]]] = {
    "85354-9": (base_vitals("bp"), us_core("us-core-blood-pressure"), frozenset({"mm[Hg]"})),
    "29463-7": (base_vitals("bodyweight"), us_core("us-core-body-weight"), frozenset({"kg", "g", "[lb_av]"})),
    "8302-2": (base_vitals("bodyheight"), us_core("us-core-body-height"), frozenset({"cm", "[in_i]"})),
    "39156-5": (base_vitals("bmi"), us_core("us-core-bmi"), frozenset({"kg/m2"})),
    "8867-4": (base_vitals("heartrate"), us_core("us-core-heart-rate"), frozenset({"/min"})),
    "2708-6": (base_vitals("oxygensat"), us_core("us-core-pulse-oximetry"), frozenset({"%"})),
}
# Blood pressure's two components (both required by the bp and us-core-blood-pressure profiles).
BP_COMPONENTS = ("8480-6", "8462-4")
