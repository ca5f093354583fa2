"""ipr/WebShop-v0 (issue #5)."""
