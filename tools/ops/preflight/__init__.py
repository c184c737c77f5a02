"""`make preflight`: read-only questions to the live APIs about what only they know, asked before anything
is created; what to ask is derived from the offline plan `build/plan-<stack>.json`, never a hand list."""
