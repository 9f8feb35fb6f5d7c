"""The hand-written lower bound of the missed-dose sweep: one SQL statement, no Python per row.

It computes the same missed set as ``tracker.rules.missed_doses.sweep`` (pending doses whose
deadline has passed, clinic-only drugs left to the ketamine sweep) and stores the same shape:
one problem per (patient, drug) with the same deduplication key, title and words, folded into
the open one when there is one (``ON CONFLICT … DO UPDATE``), and one fact per missed dose
(same key, subject and message, built in SQL; ``ON CONFLICT DO NOTHING``). It does not compute
escalations (the urgent "repeated misses" problems, the run length, the 7-day share) and
writes no history rows, so it is a true lower bound: the app's sweep does strictly more work.

The statement's row count is the facts it inserted; the problems it inserted or folded into
are counted from the tables.
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
),
facts AS (
    SELECT m.id, m.patient_id, m.due_at, m.deadline,
           'dose.missed:patient:' || m.patient_id || ':drug:' || rx.drug_id AS problem,
           d.display_name || ' ' || trim_scale(rx.dose)::text || ' ' || rx.dose_unit AS label,
           d.display_name || ' ' || trim_scale(rx.dose)::text || ' ' || rx.dose_unit || ' due at '
               || to_char(m.due_at AT TIME ZONE p.timezone, 'HH24:MI "on" Dy DD Mon')
               || ' (patient''s local time) was not logged.' AS message
    FROM missed m
    JOIN tracker_prescription rx ON rx.id = m.prescription_id
    JOIN tracker_drug d ON d.id = rx.drug_id
    JOIN tracker_patient p ON p.id = m.patient_id
),
problems AS (
    INSERT INTO tracker_flag (
        patient_id, kind, severity, status, dedup_key, message, action,
        subject_type_id, subject_id, raised_at, created_at, resolution_note,
        title, occurrences, streak, last_occurred_at, priority
    )
    SELECT min(patient_id), 'dose.missed', 20, 'open', problem,
           (array_agg(message ORDER BY due_at DESC, id DESC))[1],
           'Contact the patient to find out whether the doses were taken, and record those that were.',
           NULL, NULL, min(deadline), %(now)s, '',
           (array_agg(label ORDER BY due_at DESC, id DESC))[1], count(*), NULL, max(deadline), %(priority)s
    FROM facts GROUP BY problem
    ON CONFLICT (dedup_key) WHERE NOT (status = 'resolved') DO UPDATE SET
        message = EXCLUDED.message, title = EXCLUDED.title,
        occurrences = tracker_flag.occurrences + EXCLUDED.occurrences,
        last_occurred_at = GREATEST(tracker_flag.last_occurred_at, EXCLUDED.last_occurred_at)
    RETURNING id, dedup_key
)
INSERT INTO tracker_flagfact (flag_id, key, subject_type_id, subject_id, message, occurred_at, created_at, answer_note)
SELECT pr.id, 'planned:' || f.id, %(content_type)s, f.id, f.message, f.deadline, %(now)s, ''
FROM facts f JOIN problems pr ON pr.dedup_key = f.problem
ON CONFLICT DO NOTHING
"""


def lower_bound_params(now: dt.datetime, content_type_id: int) -> dict[str, object]:
    from tracker import clinical

    return {"now": now, "content_type": content_type_id, "priority": clinical.triage_priority("dose.missed")}
