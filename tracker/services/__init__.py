"""Writes: every change to clinical data goes through a function here, in one transaction.

Views, admin actions, API endpoints, tasks and commands validate their input and make one
call into this package. Reads that span relations live in ``tracker.selectors``.
"""
