"""The repositories, one per module, named after what each keeps.

Repositories never open, pass or hold a connection: they run statements
(`dorkstore.statements`) over the models, which are bound to the proxy, and
ask the backend (`dorkstore.backends`) for locks and engine-specific SQL.
"""
