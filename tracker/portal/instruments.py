"""What a questionnaire says to the patient, in the portal's language, from official translations only.

A validated questionnaire's wording is part of the instrument: a home-made translation
would be a different, unvalidated test. So each language gets an instrument only from its
official, public translation, copied word for word with its source beside it. Any other
instrument is shown in English with a translated notice that it is not yet available in
the patient's language ("untranslated"). The values behind the answers never change, so
the score is the same whatever the language (tests/test_portal_i18n.py checks it).

To add a translation: put the official text in OFFICIAL below with its source, then check
it against the printed form once more.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from tracker import scales

Options = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class OfficialText:
    """One instrument's official translation: its words, never ours."""

    instructions: str
    items: tuple[str, ...]
    options: tuple[str, ...]  # the labels of the answers, in the order of scale.options
    # The visible source line, translated (it is shown to the patient reading this translation).
    source: str | Promise


# PHQ-9, Spanish for the USA: the official translation distributed by Pfizer on the PHQ screeners
# site (phqscreeners.com, "PHQ-9 Spanish for USA"), "Elaborado por los doctores Robert L. Spitzer,
# Janet B.W. Williams, Kurt Kroenke y colegas, mediante una subvención educativa otorgada por
# Pfizer Inc. No se requiere permiso para reproducir, traducir, presentar o distribuir."
# Checked against the stored copy of the form at es.studenta.com/content/129686767
# ("PatientHealthQuestionnaire9_Spanish"). Printed form only: "(Marque con un ✓ ...)" is left out,
# as the English page leaves out its "Use ✔ to indicate your answer".
PHQ9_ES = OfficialText(
    instructions=(
        "Durante las últimas 2 semanas, ¿qué tan seguido ha tenido molestias debido a los siguientes problemas?"
    ),
    items=(
        "Poco interés o placer en hacer cosas",
        "Se ha sentido decaído(a), deprimido(a) o sin esperanzas",
        "Ha tenido dificultad para quedarse o permanecer dormido(a), o ha dormido demasiado",
        "Se ha sentido cansado(a) o con poca energía",
        "Sin apetito o ha comido en exceso",
        "Se ha sentido mal con usted mismo(a) – o que es un fracaso o que ha quedado mal con usted mismo(a) "
        "o con su familia",
        "Ha tenido dificultad para concentrarse en ciertas actividades, tales como leer el periódico o ver "
        "la televisión",
        "¿Se ha movido o hablado tan lento que otras personas podrían haberlo notado? o lo contrario – muy "
        "inquieto(a) o agitado(a) que ha estado moviéndose mucho más de lo normal",
        "Pensamientos de que estaría mejor muerto(a) o de lastimarse de alguna manera",
    ),
    options=("Ningún día", "Varios días", "Más de la mitad de los días", "Casi todos los días"),
    # Free to use (the form's own words above: no permission required), but © Pfizer Inc.; not public domain.
    source=gettext_lazy("PHQ-9 Spanish for USA, © Pfizer Inc. (free to use)"),
)

# (instrument code, language) -> official text. Not here, so shown in English and marked:
# GAD-7 (the Spanish-for-USA form exists, but no copy of it could be checked word for word:
# the copies found disagree on item 7 and the answers), ASEX, PCL-5 and FIBSER.
OFFICIAL: dict[tuple[str, str], OfficialText] = {
    ("phq9", "es"): PHQ9_ES,
}


@dataclass(frozen=True)
class Wording:
    """The instrument as this patient reads it."""

    scale: scales.Scale
    instructions: str
    items: tuple[str, ...]
    item_options: tuple[Options, ...]
    translated: bool  # False: English text for a patient whose language it is not
    source: str | Promise = ""

    def options_for(self, index: int) -> Options:
        return self.item_options[index]


def language_base(language: str | None = None) -> str:
    """ "es" for "es", "es-mx"...; the portal's PortalLanguage codes are base languages."""
    return (language or translation.get_language() or "en").split("-")[0].lower()


def wording(scale: scales.Scale, language: str | None = None) -> Wording:
    """The scale in ``language`` (default: the active one), official words or English marked untranslated."""
    base = language_base(language)
    english = tuple(scale.options_for(i) for i in range(len(scale.items)))
    official = OFFICIAL.get((scale.code, base))
    if official is not None:
        labels = dict(zip((value for value, _ in scale.options), official.options, strict=True))
        return Wording(
            scale=scale,
            instructions=official.instructions,
            items=official.items,
            item_options=tuple(tuple((value, labels[value]) for value, _ in options) for options in english),
            translated=True,
            source=official.source,
        )
    return Wording(
        scale=scale,
        instructions=scale.instructions,
        items=scale.items,
        item_options=english,
        translated=base == "en",
    )
