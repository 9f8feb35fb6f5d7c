"""The weekly side-effect check-in, shorter (issue 15): the effects common to the patient's medicines
first, the rest behind "Something else?" (a <details>, so no script is needed), compact choices,
and the question names the medicines. Stored data and scoring are those of
tests/test_portal_questionnaires.py, which keeps passing unchanged."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.test_portal_support import course, give_login, signed_in
from tracker.models import Assessment, SideEffectReport
from tracker.side_effect_catalogue import EFFECTS, common_codes

pytestmark = pytest.mark.django_db
URL = reverse("portal:checkin")


@pytest.fixture
def portal(client, patient):
    return signed_in(client, give_login(patient, "pat"))


def main_of(html: str) -> str:
    return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def split_at_more(html: str) -> tuple[str, str]:
    """The page before "Something else?" and the <details> itself."""
    before, more = main_of(html).split('<details class="more checkin-more"', 1)
    return before, more.split("</details>", 1)[0]


def test_common_effects_come_first_and_the_rest_wait_behind_something_else(portal, patient, clinician):
    course(patient, clinician, name="sertraline", times=("08:00",))
    course(patient, clinician, name="quetiapine", dose="150", times=("21:00",))
    html = portal.get(URL).content.decode()
    before, more = split_at_more(html)
    common = common_codes({"ssri", "sga"})
    assert common and len(common) < len(EFFECTS)
    for effect in EFFECTS:
        where = before if effect.code in common else more
        assert f'name="effect_{effect.code}"' in where, effect.code
    assert 'name="other_description"' in more and 'name="other_severity"' in more
    assert "<summary>Something else?</summary>" in more
    assert not more.startswith(" open")  # closed: the common effects are asked first
    assert "<script" not in main_of(html) and "style=" not in main_of(html)


def test_the_question_names_the_patients_medicines(portal, patient, clinician):
    course(patient, clinician, name="sertraline", times=("08:00",))
    rx = course(patient, clinician, name="quetiapine", dose="150", times=("21:00",))
    html = portal.get(URL).content.decode()
    assert "Since last week, while taking quetiapine and sertraline, have you had…" in html
    assert "“This medicine” means all the medicines you take: quetiapine and sertraline." in html
    assert "this medicine" not in html.split("<h2", 2)[2]  # the effects' own question never says it
    rx.status = "stopped"
    rx.save(update_fields=["status"])
    assert "while taking sertraline, have you had…" in portal.get(URL).content.decode()


def test_without_medicines_every_effect_is_shown_and_the_question_names_none(portal):
    html = portal.get(URL).content.decode()
    before, more = split_at_more(html)
    assert "Since last week, have you had…" in html
    assert more.startswith(" open")  # nothing common to ask first: the whole list, open
    assert 'name="effect_' not in before and more.count('name="effect_') == len(EFFECTS) * 4


def test_each_effect_is_four_one_word_chips_and_the_words_are_explained_once(portal, patient, clinician):
    course(patient, clinician, name="sertraline", times=("08:00",))
    html = main_of(portal.get(URL).content.decode())
    fieldset = html.split('<fieldset class="question question-chips" id="id_effect_nausea">', 1)[1]
    fieldset = fieldset.split("</fieldset>", 1)[0]
    assert fieldset.count('type="radio"') == 4
    for word in ("No", "Mild", "Moderate", "Severe"):
        assert f"<span>{word}</span>" in fieldset
    assert 'value="" id="id_effect_nausea_0" checked' in fieldset  # "No" until the patient says otherwise
    assert html.count("Moderate: gets in the way of daily life") == 1


def test_fibser_is_a_row_of_numbered_chips_whose_names_carry_the_anchors(portal):
    html = main_of(portal.get(URL).content.decode())
    q1 = html.split('<fieldset class="question question-chips" id="id_q1">', 1)[1].split("</fieldset>", 1)[0]
    assert '<div class="chips chips-scale">' in q1 and q1.count('type="radio"') == 7
    assert '<span aria-hidden="true">2</span><span class="visually-hidden">2 – 10–25% of the time</span>' in q1
    assert '<span aria-hidden="true">3</span><span class="visually-hidden">3</span>' in q1
    assert '<ul class="scale-anchors" aria-hidden="true">' in q1 and q1.count("<li>") == 4


def test_an_answer_or_error_inside_something_else_opens_it_again(portal, patient, clinician):
    course(patient, clinician, name="sertraline", times=("08:00",))
    rest = next(e.code for e in EFFECTS if e.code not in common_codes({"ssri"}))
    # FIBSER unanswered: the page comes back, with the answer given inside "Something else?" shown.
    response = portal.post(URL, {f"effect_{rest}": "mild"})
    assert response.status_code == 400
    _, more = split_at_more(response.content.decode())
    assert more.startswith(" open")
    response = portal.post(URL, {"q1": 1, "q2": 1, "q3": 1, "other_description": "Itchy skin"})
    _, more = split_at_more(response.content.decode())
    assert more.startswith(" open") and "Say how strong the side effect you described is." in more
    assert not Assessment.objects.exists()


def test_an_effect_from_something_else_is_stored_as_before(portal, patient, clinician):
    course(patient, clinician, name="sertraline", times=("08:00",))
    data = {"q1": 2, "q2": 2, "q3": 0, "effect_nausea": "mild", "effect_urinary": "severe"}
    assert portal.post(URL, data).status_code == 302
    fibser = Assessment.objects.get(instrument="fibser")
    assert (fibser.answers, fibser.total) == ([2, 2, 0], 4)
    assert {(r.effect, r.severity) for r in SideEffectReport.objects.filter(checkin=fibser)} == {
        ("nausea", "mild"),
        ("urinary", "severe"),
    }
