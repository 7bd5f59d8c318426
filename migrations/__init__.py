"""dorkstore's migrations, shipped in the wheel as ``dorkstore.migrations``.

Files are named ``NNN_name.py`` and made with ``pw_migrate create --auto``; see the
README's "Changing the schema".
"""
