"""ipr/ALFWorld-v0 (issue #3)."""
