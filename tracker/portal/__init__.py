"""The patient portal: a patient's own doses, questionnaires and progress, on a phone."""
