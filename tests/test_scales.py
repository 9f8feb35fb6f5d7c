"""Questionnaire scoring against worked examples (clinical-reference §4 and §5)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from tests.helpers_models import make_assessment
from tracker import scales
from tracker.models import Assessment


def spread(total: int, items: int, top: int, low: int = 0) -> list[int]:
    """Answers that add up to ``total``: the first items as high as they go, the rest ``low``."""
    answers = [low] * items
    remaining = total - low * items
    for i in range(items):
        step = min(top - low, remaining)
        answers[i] += step
        remaining -= step
    assert remaining == 0 and sum(answers) == total, "total out of the scale's range"
    return answers


def refusal(excinfo) -> list[str]:
    return excinfo.value.message_dict["answers"]


# --- Worked examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "answers", "total", "band"),
    [
        ("phq9", [0, 0, 0, 0, 0, 0, 0, 0, 0], 0, "none-minimal"),
        ("phq9", [1, 2, 1, 2, 1, 1, 0, 1, 0], 9, "mild"),
        ("phq9", [3, 3, 2, 2, 2, 1, 1, 1, 1], 16, "moderately severe"),
        ("phq9", [3, 3, 3, 3, 3, 3, 3, 3, 3], 27, "severe"),
        ("gad7", [2, 2, 1, 1, 2, 1, 1], 10, "moderate"),
        ("gad7", [3, 3, 3, 3, 3, 3, 3], 21, "severe"),
        ("madrs", [4, 4, 3, 4, 2, 3, 3, 3, 2, 0], 28, "moderate"),
        ("madrs", [6, 6, 6, 6, 6, 6, 6, 6, 6, 6], 60, "severe"),
        ("cadss", [0] * 23, 0, "no cut-off"),
        ("cadss", [1, 2, 0, 0, 0, 3, 1] + [0] * 16, 7, "no cut-off"),
        ("cadss", [4] * 23, 92, "no cut-off"),
    ],
)
def test_worked_examples(code, answers, total, band):
    assert scales.score(code, answers) == scales.Score(total=total, band=band)


# --- Band edges ---------------------------------------------------------------------------------

PHQ9_EDGES = [
    (4, "none-minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately severe"),
    (19, "moderately severe"),
    (20, "severe"),
]
GAD7_EDGES = [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
              (15, "severe")]  # fmt: skip
MADRS_EDGES = [(0, "normal"), (6, "normal"), (7, "mild"), (19, "mild"), (20, "moderate"), (34, "moderate"),
               (35, "severe")]  # fmt: skip


@pytest.mark.parametrize(("total", "band"), PHQ9_EDGES)
def test_phq9_band_edges(total, band):
    assert scales.score("phq9", spread(total, 9, 3)) == scales.Score(total, band)


@pytest.mark.parametrize(("total", "band"), GAD7_EDGES)
def test_gad7_band_edges(total, band):
    assert scales.score("gad7", spread(total, 7, 3)) == scales.Score(total, band)


@pytest.mark.parametrize(("total", "band"), MADRS_EDGES)
def test_madrs_band_edges(total, band):
    assert scales.score("madrs", spread(total, 10, 6)) == scales.Score(total, band)


# --- FIBSER: the band follows the burden item (3rd) only ----------------------------------------


@pytest.mark.parametrize(
    ("burden", "band"),
    [
        (0, "burden low"),
        (2, "burden low"),
        (3, "burden moderate"),
        (4, "burden moderate"),
        (5, "burden high"),
        (6, "burden high"),
    ],
)
def test_fibser_burden_bands(burden, band):
    assert scales.score("fibser", [1, 1, burden]) == scales.Score(2 + burden, band)


def test_fibser_band_ignores_frequency_and_intensity():
    # Frequent, intolerable side effects that do not get in the way: no change needed (§5).
    assert scales.score("fibser", [6, 6, 2]) == scales.Score(14, "burden low")
    assert scales.score("fibser", [0, 0, 5]) == scales.Score(5, "burden high")


# --- ASEX: dysfunction if total >= 19, or any item >= 5, or any three items >= 4 ----------------


@pytest.mark.parametrize(
    ("answers", "band"),
    [
        ([5, 1, 1, 1, 1], "dysfunction"),  # one item at 5, total only 9
        ([1, 1, 1, 1, 6], "dysfunction"),
        ([4, 1, 1, 1, 1], "no dysfunction"),  # just under: highest item 4
        ([4, 4, 4, 1, 1], "dysfunction"),  # three items at 4, total 14
        ([1, 4, 1, 4, 4], "dysfunction"),
        ([4, 4, 3, 1, 1], "no dysfunction"),  # just under: two items at 4
        ([4, 4, 4, 4, 3], "dysfunction"),  # total 19
        # Just under the total rule: within 1-6, a total of 18 or more already needs an item
        # at 5 or three at 4, so 17 is the highest total the other rules leave alone.
        ([4, 4, 3, 3, 3], "no dysfunction"),
        ([1, 1, 1, 1, 1], "no dysfunction"),
        ([3, 3, 3, 3, 3], "no dysfunction"),  # total 15, no item above 3
    ],
)
def test_asex_dysfunction_rule(answers, band):
    assert scales.score("asex", answers) == scales.Score(sum(answers), band)


def test_asex_total_rule_alone():
    # The pure rule function, with the item rules out of reach: total 19 from items below 4
    # is not reachable with five 1-6 items, so check the threshold on longer input.
    assert scales.asex_dysfunction([3, 3, 3, 3, 3, 3, 1]) is True  # total 19
    assert scales.asex_dysfunction([3, 3, 3, 3, 3, 3]) is False  # total 18


def test_asex_rule_follows_the_clinic_override(settings):
    # The §5 thresholds live in clinical.py: a clinic that moves the total to 17 sees 17 flagged.
    settings.TRACKER_CLINICAL_OVERRIDES = {"ASEX_TOTAL_MIN": 17}
    assert scales.score("asex", [4, 4, 3, 3, 3]).band == "dysfunction"  # total 17, no item rule met


# --- PCL-5: 20 items 0-4, total 0-80, probable PTSD at 33 (§4 Other instruments) ------------


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        ([0] * 20, 0, "below the PTSD cut-off"),
        ([2] * 16 + [0] * 4, 32, "below the PTSD cut-off"),  # one under the cut-off
        ([2] * 16 + [1] + [0] * 3, 33, "probable PTSD"),  # at the cut-off
        ([4] * 20, 80, "probable PTSD"),
    ],
)
def test_pcl5_total_and_cut_off(answers, total, band):
    assert scales.score("pcl5", answers) == scales.Score(total, band)


def test_pcl5_cut_off_is_the_clinics_key(settings):
    # §4 gives 31-33; a clinic choosing 31 sees a total of 31 as probable PTSD.
    settings.TRACKER_CLINICAL_OVERRIDES = {"PCL5_PROBABLE_PTSD_MIN": 31}
    assert scales.score("pcl5", [2] * 15 + [1] + [0] * 4).band == "probable PTSD"
    assert scales.score("pcl5", [2] * 15 + [0] * 5).band == "below the PTSD cut-off"


def test_pcl5_has_twenty_items_scored_zero_to_four():
    assert (len(scales.PCL5.items), scales.PCL5.min_answer, scales.PCL5.max_answer, scales.PCL5.max_total) == (
        20,
        0,
        4,
        80,
    )
    assert [label for _, label in scales.PCL5.options] == [
        "Not at all",
        "A little bit",
        "Moderately",
        "Quite a bit",
        "Extremely",
    ]


# --- Refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "answers", "message"),
    [
        ("phq9", [0, 0, 4, 0, 0, 0, 0, 0, 0], "PHQ-9 question 3 must be between 0 and 3; 4 is out of range."),
        ("phq9", [0, 0, 0, 0, 0, 0, 0, 0, -1], "PHQ-9 question 9 must be between 0 and 3; -1 is out of range."),
        ("gad7", [0, 0, 0, 0, 0, 0, 7], "GAD-7 question 7 must be between 0 and 3; 7 is out of range."),
        ("madrs", [7] + [0] * 9, "MADRS question 1 must be between 0 and 6; 7 is out of range."),
        ("fibser", [0, 7, 0], "FIBSER question 2 must be between 0 and 6; 7 is out of range."),
        ("asex", [1, 1, 1, 0, 1], "ASEX question 4 must be between 1 and 6; 0 is out of range."),
        ("asex", [1, 1, 1, 1, 7], "ASEX question 5 must be between 1 and 6; 7 is out of range."),
        ("pcl5", [0] * 19 + [5], "PCL-5 question 20 must be between 0 and 4; 5 is out of range."),
        ("pcl5", [-1] + [0] * 19, "PCL-5 question 1 must be between 0 and 4; -1 is out of range."),
        ("cadss", [0] * 22 + [5], "CADSS question 23 must be between 0 and 4; 5 is out of range."),
    ],
)
def test_out_of_range_answer_is_refused_naming_the_question(code, answers, message):
    with pytest.raises(ValidationError) as excinfo:
        scales.score(code, answers)
    assert refusal(excinfo) == [message]


def test_first_bad_question_is_named():
    with pytest.raises(ValidationError) as excinfo:
        scales.validate_answers("phq9", [0, 9, 0, 9, 0, 0, 0, 0, 0])
    assert refusal(excinfo) == ["PHQ-9 question 2 must be between 0 and 3; 9 is out of range."]


@pytest.mark.parametrize(
    ("code", "count", "expected"),
    [("phq9", 8, 9), ("phq9", 10, 9), ("phq9", 0, 9), ("gad7", 9, 7), ("madrs", 9, 10), ("fibser", 2, 3),
     ("asex", 6, 5), ("pcl5", 19, 20), ("pcl5", 21, 20), ("cadss", 6, 23)],
)  # fmt: skip
def test_wrong_number_of_answers_is_refused(code, count, expected):
    name = scales.get_scale(code).name
    low = scales.get_scale(code).min_answer
    with pytest.raises(ValidationError) as excinfo:
        scales.score(code, [low] * count)
    if count > expected:
        assert refusal(excinfo) == [f"{name} has {expected} questions; {count} answers were given."]
    else:  # the first unanswered question, counting from 1, in the portal's words
        text = scales.get_scale(code).items[count]
        assert refusal(excinfo) == [f"Please answer question {count + 1} of {expected}: “{text}”."]


@pytest.mark.parametrize(
    "bad",
    [True, False, "2", None, 1.0, 2.5],
    ids=["true", "false", "string", "none", "float-1.0", "float-2.5"],
)
def test_non_integer_answers_are_refused(bad):
    answers = [0, bad, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValidationError) as excinfo:
        scales.score("phq9", answers)
    text = "Feeling down, depressed, or hopeless"
    if bad is None:
        assert refusal(excinfo) == [f"Please answer question 2 of 9: “{text}”."]
    else:
        assert refusal(excinfo) == [f"Please answer question 2 of 9 with a whole number from 0 to 3: “{text}”."]


@pytest.mark.parametrize("answers", ["000000000", {"q1": 0}, None, 9])
def test_answers_must_be_a_list(answers):
    with pytest.raises(ValidationError) as excinfo:
        scales.score("phq9", answers)
    assert refusal(excinfo) == ["PHQ-9 answers must be a list of item scores."]


def test_unknown_instrument_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        scales.score("bdi", [0] * 21)
    assert excinfo.value.message_dict == {"instrument": ["Unknown questionnaire 'bdi'."]}


# --- Assessment.save computes total and band -------------------------------------------------


@pytest.mark.django_db
def test_assessment_save_computes_total_and_band(patient):
    assessment = make_assessment(patient, instrument="phq9", answers=[3, 3, 3, 3, 3, 1, 1, 1, 2])
    assessment.refresh_from_db()
    assert (assessment.total, assessment.band) == (20, "severe")


@pytest.mark.django_db
def test_assessment_save_overwrites_a_typed_total_and_band(patient):
    assessment = make_assessment(patient, instrument="gad7", answers=[1, 1, 1, 1, 1, 0, 0], total=21, band="severe")
    assessment.refresh_from_db()
    assert (assessment.total, assessment.band) == (5, "mild")


@pytest.mark.django_db
def test_assessment_save_recomputes_after_answers_change(patient):
    assessment = make_assessment(patient, instrument="madrs", answers=[0] * 10)
    assert (assessment.total, assessment.band) == (0, "normal")
    assessment.answers = [4] * 10
    assessment.total = 0
    assessment.save()
    assessment.refresh_from_db()
    assert (assessment.total, assessment.band) == (40, "severe")


@pytest.mark.django_db
def test_assessment_with_bad_answers_is_not_saved(patient):
    with pytest.raises(ValidationError) as excinfo:
        make_assessment(patient, instrument="phq9", answers=[0, 0, 0, 0, 0, 0, 0, 0, 4])
    assert refusal(excinfo) == ["PHQ-9 question 9 must be between 0 and 3; 4 is out of range."]
    assert not Assessment.objects.exists()


@pytest.mark.django_db
def test_assessment_full_clean_names_the_bad_question(patient):
    assessment = Assessment(
        patient=patient,
        instrument="asex",
        answers=[1, 1, 1, 1, 0],
        completed_at=dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC),
        source=Assessment.Source.PATIENT,
    )
    with pytest.raises(ValidationError) as excinfo:
        assessment.full_clean()
    assert refusal(excinfo) == ["ASEX question 5 must be between 1 and 6; 0 is out of range."]
