"""Staff accounts: the second sign-in factor (TOTP with recovery codes) for the clinicians' workspace."""
