"""Settings `pw_migrate` reads from this directory."""

# The abstract base model has no table; without this, --auto would create one.
IGNORE = ["basemodel"]
