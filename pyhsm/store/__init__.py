"""Token storage: one SQLite database per token, secrets sealed before they get here."""
