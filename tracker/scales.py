"""Questionnaires: items, answer options, scoring and severity bands (pure, no database).

Scales, ranges and bands come from clinical-reference §4 and §5. Totals and bands are
always computed here from the item answers; nobody types them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError

FREQUENCY_OPTIONS = (
    (0, "Not at all"),
    (1, "Several days"),
    (2, "More than half the days"),
    (3, "Nearly every day"),
)


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    label: str


@dataclass(frozen=True)
class Scale:
    code: str
    name: str
    items: tuple[str, ...]
    options: tuple[tuple[int, str], ...]
    bands: tuple[Band, ...]
    source: str

    @property
    def min_answer(self) -> int:
        return min(value for value, _ in self.options)

    @property
    def max_answer(self) -> int:
        return max(value for value, _ in self.options)

    @property
    def max_total(self) -> int:
        return self.max_answer * len(self.items)

    def band_for(self, total: int) -> str:
        for band in self.bands:
            if band.low <= total <= band.high:
                return band.label
        raise ValueError(f"{self.name} total {total} lies in no band")


@dataclass(frozen=True)
class Score:
    total: int
    band: str


def _scale_options(low: int, high: int) -> tuple[tuple[int, str], ...]:
    return tuple((value, str(value)) for value in range(low, high + 1))


# §4 PHQ-9: 9 items 0–3, total 0–27; bands from the MII IG PRO phq-9 page.
PHQ9 = Scale(
    code="phq9",
    name="PHQ-9",
    items=(
        "Little interest or pleasure in doing things",
        "Feeling down, depressed, or hopeless",
        "Trouble falling or staying asleep, or sleeping too much",
        "Feeling tired or having little energy",
        "Poor appetite or overeating",
        "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Moving or speaking so slowly that other people could have noticed, or the opposite: "
        "being so fidgety or restless that you have been moving around a lot more than usual",
        "Thoughts that you would be better off dead, or of hurting yourself in some way",
    ),
    options=FREQUENCY_OPTIONS,
    bands=(
        Band(0, 4, "none-minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 19, "moderately severe"),
        Band(20, 27, "severe"),
    ),
    source="clinical-reference §4 PHQ-9 items, bands",
)

# §4 GAD-7: 7 items 0–3, total 0–21.
GAD7 = Scale(
    code="gad7",
    name="GAD-7",
    items=(
        "Feeling nervous, anxious, or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid, as if something awful might happen",
    ),
    options=FREQUENCY_OPTIONS,
    bands=(Band(0, 4, "minimal"), Band(5, 9, "mild"), Band(10, 14, "moderate"), Band(15, 21, "severe")),
    source="clinical-reference §4 GAD-7",
)

# §4 MADRS (clinician-rated): 10 items 0–6, total 0–60; Snaith bands.
MADRS = Scale(
    code="madrs",
    name="MADRS",
    items=(
        "Apparent sadness",
        "Reported sadness",
        "Inner tension",
        "Reduced sleep",
        "Reduced appetite",
        "Concentration difficulties",
        "Lassitude",
        "Inability to feel",
        "Pessimistic thoughts",
        "Suicidal thoughts",
    ),
    options=_scale_options(0, 6),
    bands=(Band(0, 6, "normal"), Band(7, 19, "mild"), Band(20, 34, "moderate"), Band(35, 60, "severe")),
    source="clinical-reference §4 MADRS",
)

# §5 FIBSER: 3 items each 0–6. The band follows the burden item (0–2 / 3–4 / 5–6).
FIBSER = Scale(
    code="fibser",
    name="FIBSER",
    items=(
        "How often have you had side effects from this medicine? (0 none ... 6 all of the time)",
        "How strong were the side effects? (0 none ... 6 intolerable)",
        "How much did the side effects get in the way of your day? (0 no impairment ... 6 unable to function)",
    ),
    options=_scale_options(0, 6),
    bands=(Band(0, 18, "recorded"),),
    source="clinical-reference §5 FIBSER",
)

# §5 ASEX: 5 items each 1–6; total 5–30, higher is worse.
ASEX = Scale(
    code="asex",
    name="ASEX",
    items=(
        "How strong is your sex drive?",
        "How easily are you sexually aroused?",
        "How easily do you get or keep an erection, or become lubricated?",
        "How easily can you reach an orgasm?",
        "Are your orgasms satisfying?",
    ),
    options=_scale_options(1, 6),
    bands=(Band(5, 30, "recorded"),),
    source="clinical-reference §5 ASEX",
)

# §4 CADSS: 23 items 0–4, total 0–92; no clinical cut-off, so no severity band.
CADSS = Scale(
    code="cadss",
    name="CADSS",
    items=tuple(f"CADSS item {n}" for n in range(1, 24)),
    options=_scale_options(0, 4),
    bands=(Band(0, 92, "no cut-off"),),
    source="clinical-reference §4 CADSS",
)

SCALES: dict[str, Scale] = {s.code: s for s in (PHQ9, GAD7, MADRS, FIBSER, ASEX, CADSS)}
FIBSER_BURDEN_ITEM = 2  # zero-based index of the burden item
PHQ9_SUICIDALITY_ITEM = 8  # zero-based index of item 9


def get_scale(code: str) -> Scale:
    try:
        return SCALES[code]
    except KeyError:
        raise ValidationError({"instrument": f"Unknown questionnaire {code!r}."}) from None


def answer_refusal(scale: Scale, number: int, value: object = None) -> str:
    """Why question ``number`` (counting from 1) is not answered, in the portal's words."""
    total, text = len(scale.items), scale.items[number - 1]
    if value is None:
        return f"Please answer question {number} of {total}: “{text}”."
    return (
        f"Please answer question {number} of {total} with a whole number from {scale.min_answer} "
        f"to {scale.max_answer}: “{text}”."
    )


def validate_answers(code: str, answers: Sequence[object]) -> list[int]:
    """Check every item is answered within range; the message names the first bad item.

    Questions are numbered from 1, as the patient sees them; a short list is refused at its
    first unanswered question, in the portal's words, not as a count of answers.
    """
    scale = get_scale(code)
    if not isinstance(answers, list | tuple):
        raise ValidationError({"answers": f"{scale.name} answers must be a list of item scores."})
    if len(answers) > len(scale.items):
        raise ValidationError(
            {"answers": f"{scale.name} has {len(scale.items)} questions; {len(answers)} answers were given."}
        )
    if len(answers) < len(scale.items):
        raise ValidationError({"answers": answer_refusal(scale, len(answers) + 1)})
    for number, value in enumerate(answers, start=1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError({"answers": answer_refusal(scale, number, value)})
        if not scale.min_answer <= value <= scale.max_answer:
            raise ValidationError(
                {
                    "answers": f"{scale.name} question {number} must be between "
                    f"{scale.min_answer} and {scale.max_answer}; {value} is out of range."
                }
            )
    return list(answers)  # type: ignore[arg-type]


def score(code: str, answers: Sequence[object]) -> Score:
    """Total and band of a complete, valid set of answers."""
    scale = get_scale(code)
    values = validate_answers(code, answers)
    total = sum(values)
    if code == "fibser":
        return Score(total=total, band=fibser_burden_band(values[FIBSER_BURDEN_ITEM]))
    if code == "asex":
        return Score(total=total, band="dysfunction" if asex_dysfunction(values) else "no dysfunction")
    return Score(total=total, band=scale.band_for(total))


def fibser_burden_band(burden: int) -> str:
    """§5 FIBSER: burden 0–2 no change needed, 3–4 address it, 5–6 lower the dose or switch."""
    if burden >= 5:
        return "burden high"
    if burden >= 3:
        return "burden moderate"
    return "burden low"


def asex_dysfunction(values: Sequence[int]) -> bool:
    """§5 ASEX rule: total ≥ 19, or any item ≥ 5, or any three items ≥ 4."""
    return sum(values) >= 19 or any(v >= 5 for v in values) or sum(v >= 4 for v in values) >= 3
