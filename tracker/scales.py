"""Questionnaires: items, answer options, scoring and severity bands (pure, no database).

Scales, ranges and bands come from clinical-reference §4 and §5. Totals and bands are
always computed here from the item answers; nobody types them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from tracker import clinical

FREQUENCY_OPTIONS = (
    (0, "Not at all"),
    (1, "Several days"),
    (2, "More than half the days"),
    (3, "Nearly every day"),
)
FREQUENCY_INSTRUCTIONS = (
    "Over the last 2 weeks, how often have you been bothered by the following problems? "
    "Choose one answer for each question."
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
    # What the patient reads above the questions (the instrument's own instructions).
    instructions: str = ""
    # Per-question answer labels where an instrument words its anchors differently for each
    # question (ASEX); ``options`` still holds the values every question shares.
    item_options: tuple[tuple[tuple[int, str], ...], ...] = ()

    def options_for(self, index: int) -> tuple[tuple[int, str], ...]:
        """The answers offered for question ``index`` (zero-based), with their labels."""
        return self.item_options[index] if self.item_options else self.options

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
    instructions=FREQUENCY_INSTRUCTIONS,
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
    instructions=FREQUENCY_INSTRUCTIONS,
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


def _anchored(*labels: str) -> tuple[tuple[int, str], ...]:
    """Answers 1–6, each with the instrument's words for it."""
    return tuple((value, f"{value}: {label}") for value, label in enumerate(labels, start=1))


# Questions 2-4 share their answers: how easily.
ASEX_EASE = _anchored(
    "Extremely easily", "Very easily", "Somewhat easily", "Somewhat difficult", "Very difficult", "Never"
)

# §5 ASEX: 5 items each 1–6; total 5–30, higher is worse. Question 3 has a male and a female
# form (erection / lubrication); the portal asks both in one question, as the reference's item
# list does. [W] Question and anchor wording from the published ASEX (McGahuey et al. 2000,
# "over the past week, including today"); the stored material gave the range, not the wording.
ASEX = Scale(
    code="asex",
    name="ASEX",
    items=(
        "How strong is your sex drive?",
        "How easily are you sexually aroused (turned on)?",
        "How easily can you get and keep an erection, or how easily does your vagina become moist or wet during sex?",
        "How easily can you reach an orgasm?",
        "Are your orgasms satisfying?",
    ),
    options=_scale_options(1, 6),
    item_options=(
        _anchored("Extremely strong", "Very strong", "Somewhat strong", "Somewhat weak", "Very weak", "No sex drive"),
        ASEX_EASE,
        ASEX_EASE,
        ASEX_EASE,
        _anchored(
            "Extremely satisfying",
            "Very satisfying",
            "Somewhat satisfying",
            "Somewhat unsatisfying",
            "Very unsatisfying",
            "Can't reach orgasm",
        ),
    ),
    instructions=(
        "For each question, choose the answer that describes your overall level over the past week, "
        "including today. Your answers go only to your care team: some medicines affect sex life, "
        "and there is often something that can be done about it."
    ),
    bands=(Band(5, 30, "recorded"),),
    source="clinical-reference §5 ASEX",
)

# §4 Other instruments, PCL-5: 20 items 0–4, total 0–80; probable PTSD at the cut-off
# clinical.PCL5_PROBABLE_PTSD_MIN (31–33, default 33). Public domain (Weathers, Litz, Keane,
# Palmieri, Marx & Schnurr, National Center for PTSD, 2013). [F] Item wording and the answers as
# printed in the stored copies at datadriventherapy.net/pcl5 and epavt.org (guia_eng page 17).
PCL5 = Scale(
    code="pcl5",
    name="PCL-5",
    items=(
        "Repeated, disturbing, and unwanted memories of the stressful experience?",
        "Repeated, disturbing dreams of the stressful experience?",
        "Suddenly feeling or acting as if the stressful experience were actually happening again "
        "(as if you were actually back there reliving it)?",
        "Feeling very upset when something reminded you of the stressful experience?",
        "Having strong physical reactions when something reminded you of the stressful experience "
        "(for example, heart pounding, trouble breathing, sweating)?",
        "Avoiding memories, thoughts, or feelings related to the stressful experience?",
        "Avoiding external reminders of the stressful experience (for example, people, places, "
        "conversations, activities, objects, or situations)?",
        "Trouble remembering important parts of the stressful experience?",
        "Having strong negative beliefs about yourself, other people, or the world (for example, having "
        "thoughts such as: I am bad, there is something seriously wrong with me, no one can be trusted, "
        "the world is completely dangerous)?",
        "Blaming yourself or someone else for the stressful experience or what happened after it?",
        "Having strong negative feelings such as fear, horror, anger, guilt, or shame?",
        "Loss of interest in activities that you used to enjoy?",
        "Feeling distant or cut off from other people?",
        "Trouble experiencing positive feelings (for example, being unable to feel happiness or have "
        "loving feelings for people close to you)?",
        "Irritable behavior, angry outbursts, or acting aggressively?",
        "Taking too many risks or doing things that could cause you harm?",
        "Being “superalert” or watchful or on guard?",
        "Feeling jumpy or easily startled?",
        "Having difficulty concentrating?",
        "Trouble falling or staying asleep?",
    ),
    options=((0, "Not at all"), (1, "A little bit"), (2, "Moderately"), (3, "Quite a bit"), (4, "Extremely")),
    instructions=(
        "Below is a list of problems that people sometimes have in response to a very stressful experience. "
        "Keeping your worst event in mind, please read each problem carefully and then choose one of the "
        "answers to indicate how much you have been bothered by that problem in the past month."
    ),
    bands=(Band(0, 80, "recorded"),),
    source="clinical-reference §4 Other instruments PCL-5",
)
# §5 ASEX's items, named as the reference names them (for the clinician's flag message).
ASEX_DOMAINS = ("drive", "arousal", "erection/lubrication", "orgasm", "satisfaction")
PCL5_PROBABLE = "probable PTSD"
PCL5_BELOW = "below the PTSD cut-off"

# §4 CADSS: 23 items 0–4, total 0–92; no clinical cut-off, so no severity band.
CADSS = Scale(
    code="cadss",
    name="CADSS",
    items=tuple(f"CADSS item {n}" for n in range(1, 24)),
    options=_scale_options(0, 4),
    bands=(Band(0, 92, "no cut-off"),),
    source="clinical-reference §4 CADSS",
)

SCALES: dict[str, Scale] = {s.code: s for s in (PHQ9, GAD7, MADRS, FIBSER, ASEX, PCL5, CADSS)}
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
    if code == "pcl5":
        return Score(total=total, band=pcl5_band(total))
    return Score(total=total, band=scale.band_for(total))


def fibser_burden_band(burden: int) -> str:
    """§5 FIBSER: burden 0–2 no change needed, 3–4 address it, 5–6 lower the dose or switch."""
    if burden >= 5:
        return "burden high"
    if burden >= 3:
        return "burden moderate"
    return "burden low"


def asex_dysfunction(values: Sequence[int]) -> bool:
    """§5 ASEX rule: total ≥ 19, or any item ≥ 5, or any three items ≥ 4 (clinical.ASEX_* keys)."""
    return (
        sum(values) >= clinical.get("ASEX_TOTAL_MIN")
        or any(v >= clinical.get("ASEX_ANY_ITEM_MIN") for v in values)
        or sum(v >= clinical.get("ASEX_SEVERAL_ITEMS_MIN") for v in values) >= clinical.get("ASEX_SEVERAL_ITEMS_COUNT")
    )


def pcl5_band(total: int) -> str:
    """§4 PCL-5: probable PTSD at or above the cut-off (clinical.PCL5_PROBABLE_PTSD_MIN, default 33)."""
    return PCL5_PROBABLE if total >= clinical.get("PCL5_PROBABLE_PTSD_MIN") else PCL5_BELOW
