"""dorkstore's tests; a package so that spawned child processes can import its helpers."""
