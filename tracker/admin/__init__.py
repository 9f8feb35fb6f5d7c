"""The clinician admin: every ModelAdmin is clinic-scoped and nothing is hard-deleted.

Importing the modules registers their ModelAdmins with the default admin site.
"""

from django.contrib import admin

from tracker.admin import catalogue, flags, measurements, patients, prescriptions, records, sessions

admin.site.site_header = "Treatment-course tracker"
admin.site.site_title = "Treatment-course tracker"
admin.site.index_title = "Treatment courses: patients, prescriptions, doses and flags"

__all__ = ["catalogue", "flags", "measurements", "patients", "prescriptions", "records", "sessions"]
