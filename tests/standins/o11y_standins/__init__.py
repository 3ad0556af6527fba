"""Stand-in services used by the o11y.stack tests (no network access needed)."""
