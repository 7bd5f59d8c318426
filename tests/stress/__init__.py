"""The torture suite (tox -e stress)."""
