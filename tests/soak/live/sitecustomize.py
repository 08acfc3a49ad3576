"""Imported at start-up by every Python process of a soak run with a network fault.

`tests/soak/soak.py` puts this directory on PYTHONPATH and sets TREMPLIN_SOAK_GEO_URL to
its loopback server for that run only: the geography publication is then fetched live
from that server (the real HTTP client, retries and landing checks, as in the fault
suite), every other source from the mirror. A process started without the variable is
left alone. Patching at start-up rather than in one process keeps the fault in whatever
process the run executes its steps in.
"""

import os

_BASE = os.environ.get("TREMPLIN_SOAK_GEO_URL")
if _BASE:
    import dataclasses

    from assets.ingest import fetch as _fetch

    _GEO = "etalab_decoupage_administratif"
    _real_fetch_source = _fetch.fetch_source

    def _fetch_source(spec, settings, *args, **kwargs):
        if spec.slug == _GEO:
            downloads = tuple(
                dataclasses.replace(d, url=f"{_BASE}/{d.file_name}") for d in spec.downloads
            )
            spec = dataclasses.replace(spec, downloads=downloads)
            settings = dataclasses.replace(settings, mode="live")
        return _real_fetch_source(spec, settings, *args, **kwargs)

    _fetch.fetch_source = _fetch_source
