"""Server-side automation of the Launch Ready ops stack (deployed as 2nd-gen Cloud Functions)."""
