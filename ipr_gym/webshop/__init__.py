"""ipr/WebShop-v0: WebShop's text shopping task on an engine with no HTML round trip.

``catalog`` (products in WebShop's format), ``goals`` (instructions, seeded prices),
``search`` (BM25), ``reward`` (WebShop's reward, IPR's page scores), ``state``/``pages``/
``engine`` (a session's state, what its page shows, what actions do), ``synthetic`` (the
embedded catalog), ``oracle`` (an expert), ``env`` (the gymnasium env).
"""
