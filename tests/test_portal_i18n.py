"""The portal in Spanish (issue 15): chosen per patient, the browser's language before sign-in,
a complete catalogue, and questionnaires only in their official wording."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polib
import pytest
from django.core import mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone, translation

from tests.test_portal_support import as_needed, clinic_only, course, give_login, signed_in
from tracker import clinical, scales
from tracker.models import Assessment, Patient, PortalLanguage
from tracker.portal import forms, instruments, language
from tracker.portal import selectors as portal_selectors

pytestmark = pytest.mark.django_db

CATALOGUE = Path(__file__).resolve().parents[1] / "locale" / "es" / "LC_MESSAGES" / "django.po"
SPANISH_DAY = r"l j \d\e F"  # the catalogue's msgstr for "l j F"


@pytest.fixture
def spanish(patient):
    Patient.objects.filter(pk=patient.pk).update(language=PortalLanguage.SPANISH)
    patient.refresh_from_db()
    return patient


@pytest.fixture
def portal(client, spanish):
    return signed_in(client, give_login(spanish, "paciente"))


def answers(values: list[int]) -> dict[str, int]:
    return {f"q{n}": value for n, value in enumerate(values, start=1)}


def _spanish_page(response, *, portal_frame: bool = True) -> str:
    """The page, after checking it says it is Spanish in its header and its <html lang>."""
    assert response.status_code == 200, response.status_code
    assert response["Content-Language"] == "es"
    html = response.content.decode()
    assert '<html lang="es">' in html
    for words in ("Cerrar sesión", "Esta herramienta ayuda a su equipo de atención"):
        assert words in html, words
    if portal_frame:  # the patient's pages: navigation, and the switcher with Spanish selected
        assert "Mi progreso" in html and "Cuestionarios" in html
        assert '<option value="es" lang="es" selected>Español</option>' in html
    return html


def test_every_portal_page_answers_in_spanish_for_a_spanish_patient(portal, spanish, clinician):
    rx = course(spanish, clinician, name="sertraline", days_ago=3)
    prn = as_needed(spanish, clinician)
    esk = clinic_only(spanish, clinician)
    pages = {
        reverse("portal:today"): ("Dosis de hoy", "Tomado", "Lo tomé a otra hora", "¿Por qué no lo tomó?"),
        reverse("portal:questionnaires"): ("Cuestionario sobre el estado de ánimo (PHQ-9)", "Le toca ahora."),
        reverse("portal:questionnaire", args=["phq9"]): ("Poco interés o placer en hacer cosas", "Ningún día"),
        reverse("portal:progress"): ("Dosis de las últimas 4 semanas", "Mis medicamentos actuales", "por vía oral"),
        reverse("portal:checkin"): ("Revisión semanal", "Dolor de cabeza", 'data-untranslated="fibser"'),
        reverse("portal:reminders"): ("Silencio desde", f"Recordarme antes de cada dosis de {rx.drug}"),
        reverse("portal:log_as_needed", args=[prn.pk]): ("Registrar", "Déjelo en blanco si lo acaba de tomar."),
        reverse("portal:outside_clinic", args=[esk.pk]): ("fuera de la clínica", "Avisar a mi clínica"),
        reverse("portal:outside_clinic_reported", args=[esk.pk]): ("Ya avisamos a su clínica",),
        reverse("password_change"): ("Cambiar mi contraseña", "Al menos 12 caracteres."),
    }
    for url, words in pages.items():
        # The password pages are Django's own views: no patient, so no portal navigation.
        html = _spanish_page(portal.get(url), portal_frame=url != reverse("password_change"))
        for word in words:
            assert word in html, (url, word)
        assert "Back to today" not in html and "Today's doses" not in html, url
    # Dates use Spanish names and word order ("lunes 7 de diciembre").
    today = timezone.localtime(timezone.now(), spanish.zone)
    with translation.override("es"):
        expected = "Hoy, " + dateformat.format(today, SPANISH_DAY)
    assert " de " in expected and expected in portal.get(reverse("portal:today")).content.decode()


def test_the_result_page_and_the_saved_message_are_in_spanish(portal, spanish, clinician):
    response = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers([1] * 8 + [0]), follow=True)
    html = _spanish_page(response)
    assert "Su puntaje es 8 de 27. Un puntaje más bajo significa menos síntomas." in html
    rx = course(spanish, clinician, name="sertraline", days_ago=1)
    dose = rx.planned_doses.order_by("due_at").first()
    logged = portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "skipped", "skip_choice": "forgot"})
    assert logged.status_code == 302
    assert (
        "Guardado: no tomó Sertraline. Gracias por avisarnos." in portal.get(reverse("portal:today")).content.decode()
    )


def test_a_refusal_is_in_spanish_and_names_the_question(portal):
    response = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers([1] * 8))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Conteste la pregunta 9 de 9: «Pensamientos de que estaría mejor muerto(a)" in html
    assert "Revise sus respuestas" in html


def test_english_stays_the_default_and_the_admin_stays_english(client, patient, admin_client):
    english = signed_in(client, give_login(patient, "pat"))
    response = english.get(reverse("portal:today"), HTTP_ACCEPT_LANGUAGE="es")
    assert response["Content-Language"] == "en-gb"
    html = response.content.decode()
    assert '<html lang="en-gb">' in html and "Today's doses" in html and "Dosis de hoy" not in html
    admin = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="es", follow=True).content.decode()
    assert "Iniciar sesión" not in admin and "Sitio de administración" not in admin


def test_before_sign_in_the_login_page_follows_the_browser(client):
    spanish = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9,en;q=0.5")
    assert spanish["Content-Language"] == "es" and "Accept-Language" in spanish["Vary"]
    html = spanish.content.decode()
    assert '<html lang="es">' in html and "Inicie sesión para registrar sus medicamentos" in html
    assert "Nombre de usuario" in html and "Olvidé mi contraseña" in html
    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert english["Content-Language"] == "en-gb" and "Sign in to log your medicines" in english.content.decode()
    unknown = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="de-DE")
    assert unknown["Content-Language"] == "en-gb"


def test_the_password_reset_email_goes_out_in_the_browsers_language(client, patient):
    give_login(patient, "pat")
    patient.user.email = "pat@example.org"
    patient.user.save()
    client.post(reverse("password_reset"), {"email": "pat@example.org"}, HTTP_ACCEPT_LANGUAGE="es")
    (message,) = mail.outbox
    assert message.subject == "Elija una contraseña nueva para su herramienta de seguimiento del tratamiento"
    assert "Si fue usted, abra este enlace para elegir una contraseña nueva:" in message.body


def test_switching_language_is_stored_with_who_and_when(client, patient):
    user = give_login(patient, "pat")
    portal = signed_in(client, user)
    before = patient.history.count()
    response = portal.post(
        reverse("portal:language"), {"language": "es", "next": reverse("portal:questionnaires")}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("portal:questionnaires")
    html = _spanish_page(response)
    assert "Guardado: el portal ahora se muestra en español." in html
    patient.refresh_from_db()
    assert patient.language == "es"
    change = patient.history.order_by("-history_id").first()
    assert patient.history.count() == before + 1
    assert (change.language, change.history_user_id) == ("es", user.pk)
    # The choice is remembered for the next sign-in page, before the patient is known.
    portal.post(reverse("logout"))
    assert client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en")["Content-Language"] == "es"
    # And back to English.
    portal.force_login(user)
    back = portal.post(reverse("portal:language"), {"language": "en"}, follow=True)
    assert back["Content-Language"] == "en-gb" and "Saved: the portal now shows in English." in back.content.decode()


def test_a_language_not_offered_is_refused_with_the_reason_and_nothing_changes(portal, spanish):
    before = spanish.history.count()
    response = portal.post(reverse("portal:language"), {"language": "fr"}, follow=True)
    assert "Elija uno de los idiomas de la lista." in response.content.decode()
    spanish.refresh_from_db()
    assert spanish.language == "es" and spanish.history.count() == before


def test_the_switcher_does_not_send_the_patient_off_the_site(portal):
    response = portal.post(reverse("portal:language"), {"language": "es", "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.parametrize("next_url", ["/questionnaires/?" + "x" * 3000, "/questionnaires/\x00"])
def test_a_long_or_unusable_next_still_saves_the_language_and_shows_no_empty_banner(client, patient, next_url):
    """A 3000-character address used to fail max_length: the language was lost and an empty error shown."""
    portal = signed_in(client, give_login(patient, "pat"))
    response = portal.post(reverse("portal:language"), {"language": "es", "next": next_url}, follow=True)
    assert response.redirect_chain[-1][0] == "/"  # too long (or unusable) to trust: Today
    html = _spanish_page(response)
    assert "Guardado: el portal ahora se muestra en español." in html
    assert "message-error" not in html  # no error banner, empty or not
    patient.refresh_from_db()
    assert patient.language == "es"


@pytest.mark.parametrize("code", ["gad7", "asex", "pcl5"])
def test_instruments_without_an_official_translation_are_shown_in_english_and_marked(portal, spanish, clinician, code):
    rx = course(spanish, clinician, name="sertraline", days_ago=10)
    type(rx).objects.filter(pk=rx.pk).update(indication="PTSD")
    html = _spanish_page(portal.get(reverse("portal:questionnaire", args=[code])))
    assert f'data-untranslated="{code}"' in html
    assert "Este cuestionario todavía no está disponible en su idioma." in html
    assert f"<legend>1. {scales.SCALES[code].items[0]}</legend>" in html  # the authors' English words
    assert '<div lang="en">' in html  # read out in English by a screen reader
    listing = portal.get(reverse("portal:questionnaires")).content.decode()
    assert listing.count("En inglés: todavía no está disponible en su idioma.") == 4  # GAD-7, check-in, ASEX, PCL-5


def test_phq9_in_spanish_is_the_official_text_with_its_source(portal):
    html = _spanish_page(portal.get(reverse("portal:questionnaire", args=["phq9"])))
    assert "data-untranslated" not in html
    for number, item in enumerate(instruments.PHQ9_ES.items, start=1):
        assert f"<legend>{number}. {item}</legend>" in html
    assert instruments.PHQ9_ES.instructions in html
    # The source line is in Spanish too, and says what the form says: free to use, © Pfizer (not "public domain").
    assert "Traducción oficial: PHQ-9 en español para EE. UU., © Pfizer Inc. (uso libre)" in html
    assert "public domain" not in html and "Spanish for USA" not in html


def test_the_english_patient_sees_no_untranslated_notice(client, patient):
    english = signed_in(client, give_login(patient, "pat"))
    assert "data-untranslated" not in english.get(reverse("portal:questionnaire", args=["gad7"])).content.decode()


@pytest.mark.parametrize("code", ["phq9", "gad7"])
def test_the_score_does_not_change_with_the_language(client, patient, other_patient, code):
    values = [3, 2, 1, 0, 1, 2, 3, 0, 1][: len(scales.SCALES[code].items)]
    Patient.objects.filter(pk=other_patient.pk).update(language="es")
    for who, name in ((patient, "pat"), (other_patient, "paciente")):
        portal = signed_in(client, give_login(who, name))
        assert portal.post(reverse("portal:questionnaire", args=[code]), answers(values)).status_code == 302
    english, spanish = (Assessment.objects.get(patient=p, instrument=code) for p in (patient, other_patient))
    assert english.answers == spanish.answers == values
    assert (english.total, english.band) == (spanish.total, spanish.band) == (sum(values), english.band)


def test_every_official_translation_keeps_the_instruments_shape():
    for (code, _language), text in instruments.OFFICIAL.items():
        scale = scales.SCALES[code]
        assert len(text.items) == len(scale.items) and len(text.options) == len(scale.options)
        assert text.source


def test_the_catalogue_has_no_untranslated_or_fuzzy_portal_strings():
    catalogue = polib.pofile(str(CATALOGUE))
    # `make messages` reads the portal only (the admin, the API and tests are left out), so every entry counts.
    portal = [entry for entry in catalogue if not entry.obsolete]
    assert len(portal) > 250  # the whole portal, not a sample
    sources = {place for entry in portal for place, _ in entry.occurrences}
    assert {"templates/portal/today.html", "templates/registration/login.html", "tracker/portal/forms.py"} <= sources
    assert not {place for place in sources if place.startswith(("tracker/admin/", "tracker/api/", "templates/admin/"))}
    assert [e.msgid for e in portal if "fuzzy" in e.flags] == []
    assert [e.msgid for e in portal if not e.translated()] == []
    assert not catalogue.metadata_is_fuzzy


def test_every_translation_keeps_its_placeholders_and_markup():
    """A lost %(medicine)s or <strong> would break the page or the sentence; msgfmt checks only some."""
    fields = re.compile(r"%\(\w+\)s|</?\w+")
    for entry in polib.pofile(str(CATALOGUE)).translated_entries():
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert sorted(set(fields.findall(text))) == sorted(set(fields.findall(entry.msgid))), entry.msgid


def test_the_before_session_advice_msgids_are_clinicals_default_words_so_none_falls_back_to_english():
    """The page translates each line of clinical.ESK_BEFORE_SESSION_ADVICE through these msgids: an edit
    to the clinical text that the copy does not follow would show that line in English to a Spanish patient."""
    defaults = clinical.DEFAULTS["ESK_BEFORE_SESSION_ADVICE"]
    assert list(portal_selectors.BEFORE_SESSION_ADVICE_MESSAGES) == list(defaults)
    with translation.override("es"):
        assert all(translation.gettext(line) != line for line in defaults)


def test_the_reminder_switch_says_remind_and_the_push_panel_says_it_follows_it(portal, spanish, clinician):
    """One switch per medicine governs email and Web Push alike, so it must not say "email"."""
    rx = course(spanish, clinician, name="sertraline", days_ago=3)
    with translation.override("en"):
        assert forms.ReminderSettingsForm(medicines=[(rx, None)])[f"on_{rx.pk}"].label == (
            f"Remind me before each dose of {rx.drug.display_name}"
        )
    with translation.override("es"):
        panel = render_to_string("portal/_push.html", {"push_on": True, "count": 0})
    assert "Las notificaciones se envían solo para los medicamentos marcados arriba" in panel


def test_the_default_crisis_guidance_keeps_every_number_tap_to_call_in_spanish(clinic):
    from tracker.portal import selectors

    def numbers() -> set[str]:
        return {tel for paragraph in selectors.crisis_guidance(clinic) for _text, tel in paragraph if tel}

    english = numbers()
    with translation.override("es"):
        assert numbers() == english == {"999", "112", "911", "116123", "988"}


def test_charts_keep_svg_coordinates_unlocalized_in_spanish(portal, spanish):
    for values in ([1] * 9, [2] * 9):
        portal.post(reverse("portal:questionnaire", args=["phq9"]), answers(values))
    html = portal.get(reverse("portal:progress")).content.decode()
    assert re.search(r'cx="\d+\.\d"', html) and not re.search(r'c[xy]="\d+,\d"', html)


def test_the_reminder_email_reads_in_spanish(spanish):
    due = timezone.now()
    context = {"patient": spanish, "due": due, "zone": spanish.timezone, "url": "u", "settings_url": "s"}
    with translation.override("es"), timezone.override(spanish.zone):
        subject = render_to_string("portal/email/dose_reminder_subject.txt", context)
        body = render_to_string("portal/email/dose_reminder.txt", context)
    assert subject.startswith("Recordatorio: le toca una dosis a las")
    assert f"Hola, {spanish.given_name}:" in body and "El nombre del medicamento no aparece" in body


def test_the_offline_scripts_words_are_embedded_in_the_pages_language(portal):
    """offline.js speaks when there is no connection, so its words come with the page, not from a request."""
    html = portal.get(reverse("portal:today")).content.decode()
    data = html.split('<script id="offline-strings" type="application/json">', 1)[1].split("</script>", 1)[0]
    words = json.loads(data)
    assert words["waiting_one"] == "%(count)s dosis por enviar: se enviará cuando vuelva a tener conexión."
    assert words["taken_waiting"] == "Tomado a las %(time)s: pendiente de enviar."
    assert set(words) == set(language.OFFLINE_STRINGS)


def test_the_not_found_page_and_the_app_manifest_follow_the_language(portal):
    portal.get(reverse("portal:today"))  # any portal page keeps the patient's language in the cookie
    missing = portal.get("/no-such-page/")
    assert missing.status_code == 404 and "No encontramos esa página" in missing.content.decode()
    manifest = portal.get(reverse("manifest")).json()
    assert (manifest["name"], manifest["lang"]) == ("Mi tratamiento", "es")


def test_the_language_costs_no_query(client, patient, other_patient, clinician, other_clinician):
    """Patient.language comes with the patient row patient_required already reads: Spanish pages
    make exactly the queries the English ones do."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Patient.objects.filter(pk=other_patient.pk).update(language="es")
    counts = {}
    for who, name, doctor in ((patient, "pat", clinician), (other_patient, "paciente", other_clinician)):
        course(who, doctor, name="sertraline", days_ago=3)
        portal = signed_in(client, give_login(who, name))
        portal.get(reverse("portal:today"))  # the session and the language cookie settle first
        for url in (reverse("portal:today"), reverse("portal:questionnaires"), reverse("portal:progress")):
            with CaptureQueriesContext(connection) as queries:
                assert portal.get(url).status_code == 200
            counts.setdefault(url, []).append(len(queries))
    assert all(english == spanish for english, spanish in counts.values()), counts
