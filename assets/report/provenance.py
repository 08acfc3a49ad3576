"""What the vintage says about its own inputs: the sources it was made from (freshness) and
which exported fields derive from synthetic data.

A field is synthetic in a vintage when the vintage's manifest says a synthetic source went
into it (`synthetic: true`, the embedded mirror of the two France Travail APIs) and the
field's JSON Schema description says it comes from a synthetic source. The descriptions are
per block (`market`, `salary`, ...), so a block with one such field is labelled as a whole:
its shrunk values and ranks are computed from the same synthetic counts.
"""

from __future__ import annotations

import json
from pathlib import Path

from assets.export.vintages import MANIFEST, PUBLICATION, read_publication
from assets.report.errors import ReportError


class VintageError(ReportError):
    """The directory is not a readable export vintage."""


def read_manifest(vintage_dir: Path) -> dict:
    path = Path(vintage_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VintageError(f"{path}: not a readable export manifest: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tables"), dict):
        raise VintageError(f"{path}: not an export manifest (no tables)")
    return manifest


def publication_status(vintage_dir: Path) -> dict:
    """`published`, `held` (with reasons) or `accepted`, from publication.json if any."""
    record = read_publication(Path(vintage_dir))
    if not (Path(vintage_dir) / PUBLICATION).exists():
        return {"status": "published", "reasons": []}
    return {"status": record.get("status", "held"), "reasons": list(record.get("reasons", []))}


def _leaves(schema: dict, prefix: tuple[str, ...] = ()):
    for name, sub in (schema.get("properties") or {}).items():
        path = (*prefix, name)
        if "properties" in sub:
            yield from _leaves(sub, path)
        else:
            yield path, sub.get("description") or ""


def _says_synthetic(text: str) -> bool:
    return "synthetic" in text.lower()


def _block_label(text: str) -> str | None:
    """The "Market block (...)" label a description starts with, if any."""
    head, colon, _ = text.partition(":")
    return head if colon and " block" in head else None


def synthetic_fields(vintage_dir: Path, manifest: dict) -> dict[str, set[str]]:
    """Per table, the dotted JSON paths of the fields that derive from synthetic data.

    A field is synthetic when its description says so, or when its description starts with
    the same block label ("Market block (offers per job seeker, last four quarters): ...")
    as one that does: a shrunk value or a rank computed from synthetic counts is synthetic
    too. Empty when the manifest says no synthetic source went into the vintage (live run).
    """
    if not manifest.get("synthetic"):
        return {}
    found: dict[str, set[str]] = {}
    for table, entry in manifest["tables"].items():
        path = Path(vintage_dir) / entry["files"]["schema"]["path"]
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        leaves = [(".".join(p), text) for p, text in _leaves(schema) if p != ("synthetic",)]
        tainted = {_block_label(text) for _, text in leaves if _says_synthetic(text)}
        tainted.discard(None)
        found[table] = {
            name for name, text in leaves if _says_synthetic(text) or _block_label(text) in tainted
        }
    return found


def describe_fields(fields: set[str]) -> list[str]:
    """The fields named compactly: `block (N fields)` for a block with more than three of
    them, else the fields themselves."""
    by_block: dict[str, list[str]] = {}
    for field in sorted(fields):
        by_block.setdefault(field.split(".")[0], []).append(field)
    return [
        f"{block} ({len(names)} fields)" if len(names) > 3 else ", ".join(names)
        for block, names in by_block.items()
    ]


def source_rows(manifest: dict) -> list[dict]:
    """One row per source for the freshness table: no URL, the page must stay offline."""
    rows = []
    for source in manifest.get("sources") or []:
        files = source.get("files") or []
        fetched = sorted(f.get("fetched_at") or "" for f in files if f.get("fetched_at"))
        names = [f.get("file_name") or f.get("name") or "" for f in files]
        rows.append(
            {
                "slug": source.get("slug", ""),
                "publisher": source.get("publisher") or "",
                "title": source.get("title") or "",
                "licence": source.get("licence") or "",
                "mode": source.get("mode") or source.get("vintage") or "",
                "synthetic": bool(source.get("synthetic")),
                "files": len(files),
                "file_names": names,
                "last_fetched": fetched[-1] if fetched else "",
                "sha256": [(f.get("sha256") or "")[:12] for f in files],
            }
        )
    return rows
