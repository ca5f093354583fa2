"""ipr/ALFWorld-v0: ALFWorld's text games (official and ETO wording), with a native engine
that reproduces textworld exactly and textworld itself as the reference.

Layout: ``games`` (files, splits, wordings, experts), ``pddl`` + ``logic`` (rules),
``textgen`` (text), ``native`` (the engine), ``reference`` (textworld), ``env``.
"""
