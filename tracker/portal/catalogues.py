"""Compile the portal's translation catalogues (locale/*/LC_MESSAGES/django.po -> .mo).

The .mo files are generated, not committed (.gitignore). They are built at install, at
``make run`` and before the tests, by ``python -m tracker.portal.catalogues``. It uses polib
(pure Python) rather than GNU gettext's msgfmt, so a fresh machine without gettext still gets
a Spanish portal. A catalogue whose .mo is newer than its .po is left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"


def compile_catalogues(locale_dir: Path = LOCALE_DIR, *, force: bool = False) -> list[Path]:
    """Write each django.mo that is missing or older than its .po; return the ones written.

    Fuzzy entries are left out of the .mo, as msgfmt does, so a guess is never shown.
    """
    written = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/django.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        written.append(mo_path)
    return written


if __name__ == "__main__":
    for path in compile_catalogues(force="--force" in sys.argv):
        print(f"compiled {path.relative_to(LOCALE_DIR.parent)}")
