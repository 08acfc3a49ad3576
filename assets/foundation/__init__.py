"""Settings, fingerprints and file helpers: the ground floor, importing nothing of ours."""
