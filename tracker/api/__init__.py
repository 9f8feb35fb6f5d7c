"""The REST API: integrations (token auth) and the portal and admin (session auth)."""
