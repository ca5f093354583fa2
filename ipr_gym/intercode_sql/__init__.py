"""ipr/InterCodeSQL-v0 (issue #4)."""
