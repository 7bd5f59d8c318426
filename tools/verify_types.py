"""Check that dorkstore's public interface is typed: ``pyright --verifytypes`` scores >= 95%.

Prints the score and every public symbol whose type a checker cannot know
for sure (missing or partly unknown annotations), then exits 1 if the score
is under the threshold, 2 if pyright could not check the package at all.

Run it with the Python of an environment where dorkstore is installed from a
wheel, as ``tox -e typing`` does: pyright's ``--verifytypes`` finds packages
through the environment's site-packages, and an editable install (``pip
install -e``) hooks imports in a way it cannot follow. pyright comes from PyPI
(``pyright[nodejs]``, which brings its own Node.js).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

THRESHOLD = 0.95
PACKAGE = "dorkstore"


def main() -> int:
    """Run pyright, print its findings; return the exit status."""
    # pyright asks the `python` on PATH for its import paths: make that this one.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, VIRTUAL_ENV=sys.prefix)
    command = [sys.executable, "-m", "pyright", "--verifytypes", PACKAGE, "--ignoreexternal"]
    result = subprocess.run(
        [*command, "--outputjson"], capture_output=True, text=True, env=env, check=False
    )
    try:
        completeness: dict[str, Any] = json.loads(result.stdout)["typeCompleteness"]
    except (ValueError, KeyError):
        print(result.stdout + result.stderr, file=sys.stderr)
        print(f"{' '.join(command)} gave no report", file=sys.stderr)
        return 2
    if not completeness.get("pyTypedPath"):
        print(
            f"pyright found no installed {PACKAGE} with a py.typed under {sys.prefix}: "
            "install it from a wheel (an editable install is invisible to --verifytypes)",
            file=sys.stderr,
        )
        return 2
    unsure = [
        symbol
        for symbol in completeness["symbols"]
        if symbol["isExported"] and not symbol["isTypeKnown"]
    ]
    for symbol in unsure:
        kind = "ambiguous" if symbol["isTypeAmbiguous"] else "unknown"
        print(f"{symbol['name']} ({symbol['category']}, {kind})")
        for diagnostic in symbol["diagnostics"]:
            # The message's second line (the inferred type) is indented with NBSPs.
            text = " ".join(diagnostic["message"].replace("\xa0", " ").split())
            print(f"    {text}")
    score = completeness["completenessScore"]
    verdict = "ok" if score >= THRESHOLD else "FAILED"
    print(
        f"{PACKAGE} type completeness: {score:.1%} (at least {THRESHOLD:.0%} needed): {verdict};"
        f" {len(unsure)} public symbols not fully known"
    )
    return 0 if score >= THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main())
