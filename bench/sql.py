"""The hand-written lower bound of the missed-dose sweep: one SQL statement, no Python per row.

It computes the same missed set as ``tracker.rules.missed_doses.sweep`` (pending doses whose
deadline has passed) and raises the same warning flags (same dedup key, subject and a message
built in SQL). It does not compute escalations (the urgent "repeated misses" flags), so it is
a true lower bound: the app's sweep does strictly more work.
"""

from __future__ import annotations

import datetime as dt

LOWER_BOUND_SWEEP = """
WITH missed AS (
    UPDATE tracker_planneddose SET status = 'missed', status_changed_at = %(now)s
    WHERE status = 'pending' AND deadline <= %(now)s
      -- Clinic-only drugs (esketamine, ketamine) are judged by the ketamine sweep, as in the app.
      AND prescription_id NOT IN (
          SELECT rx.id FROM tracker_prescription rx JOIN tracker_drug d ON d.id = rx.drug_id WHERE d.in_clinic_only
      )
    RETURNING id, patient_id, prescription_id, due_at, deadline
)
INSERT INTO tracker_flag (
    patient_id, kind, severity, status, dedup_key, message, action,
    subject_type_id, subject_id, raised_at, created_at, resolution_note
)
SELECT m.patient_id, 'dose.missed', 20, 'open', 'dose.missed:planned:' || m.id,
       d.display_name || ' ' || trim_scale(rx.dose)::text || ' ' || rx.dose_unit || ' due at '
           || to_char(m.due_at AT TIME ZONE p.timezone, 'HH24:MI "on" Dy DD Mon')
           || ' (patient''s local time) was not logged.',
       'Contact the patient to find out whether the dose was taken, and record it if it was.',
       %(content_type)s, m.id, m.deadline, %(now)s, ''
FROM missed m
JOIN tracker_prescription rx ON rx.id = m.prescription_id
JOIN tracker_drug d ON d.id = rx.drug_id
JOIN tracker_patient p ON p.id = m.patient_id
ON CONFLICT DO NOTHING
"""


def lower_bound_params(now: dt.datetime, content_type_id: int) -> dict[str, object]:
    return {"now": now, "content_type": content_type_id}
