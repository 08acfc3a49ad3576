"""The publication gate: a new export vintage that looks broken waits for a human.

A vintage that silently loses départements or job groups, or whose headline indicator
jumps, is more likely a broken input than news. Such a vintage is still written (so it can
be inspected with `tremplin diff`), but `latest` stays where it was until someone runs
`tremplin accept <vintage>`. The rules compare the new vintage with the current `latest`:

- any table losing more than `max_dropped_pct` % of its keys (a table missing entirely
  loses all of them);
- any headline (table, field, mean or median) moving by more than its allowed relative
  change. A headline whose table or field is absent from either vintage, not numeric, or
  all NULL in `latest` is skipped with a note, never an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from assets.export.diff import choose_key, is_numeric, key_changes, open_pair, view_columns
from assets.export.errors import ExportError
from assets.export.sql import quote_ident
from assets.export.vintages import MANIFEST, promote_vintage

GATE_CHECK = "publication_gate"


@dataclass(frozen=True)
class GateDecision:
    held: bool
    reasons: list[str] = field(default_factory=list)  # why it is held
    notes: list[str] = field(default_factory=list)  # headlines skipped, for the log


@dataclass(frozen=True)
class GatePolicy:
    max_dropped_pct: float = 5.0
    headlines: tuple = ()  # assets.foundation.settings.HeadlineThreshold

    @classmethod
    def from_settings(cls, settings) -> GatePolicy:
        return cls(settings.gate_max_dropped_pct, tuple(settings.gate_headlines))

    def evaluate(self, old_dir: Path, new_dir: Path) -> GateDecision:
        """Compare the new vintage `new_dir` with the published one `old_dir`."""
        old_tables = _tables(old_dir)
        new_tables = _tables(new_dir)
        reasons: list[str] = []
        notes: list[str] = []
        con = duckdb.connect()
        try:
            for name in sorted(old_tables):
                if name not in new_tables:
                    reasons.append(
                        f"{name}: table missing from the new vintage (it had "
                        f"{old_tables[name]['rows']} rows)"
                    )
                    continue
                open_pair(con, old_dir, new_dir, old_tables[name], new_tables[name])
                reason = self._dropped_keys(con, name)
                if reason:
                    reasons.append(reason)
            for rule in self.headlines:
                if rule.table not in old_tables or rule.table not in new_tables:
                    notes.append(f"{rule.table}.{rule.field}: table not in both vintages, skipped")
                    continue
                open_pair(con, old_dir, new_dir, old_tables[rule.table], new_tables[rule.table])
                reason, note = _headline(con, rule)
                if reason:
                    reasons.append(reason)
                if note:
                    notes.append(note)
        finally:
            con.close()
        return GateDecision(held=bool(reasons), reasons=reasons, notes=notes)

    def _dropped_keys(self, con: duckdb.DuckDBPyConnection, name: str) -> str | None:
        key = choose_key(con, view_columns(con, "old_t"), view_columns(con, "new_t"))
        changes = key_changes(con, key)
        if not changes["rows_old"]:
            return None
        dropped_pct = 100.0 * changes["removed"] / changes["rows_old"]
        if dropped_pct <= self.max_dropped_pct:
            return None
        what = f"keys ({', '.join(key)})" if key else "rows"
        examples = ", ".join(changes["removed_examples"])
        return (
            f"{name}: {changes['removed']} of {changes['rows_old']} {what} "
            f"({dropped_pct:.1f} %) are gone, more than the {self.max_dropped_pct:g} % allowed "
            f"(TREMPLIN_GATE_MAX_DROPPED_PCT)" + (f"; e.g. {examples}" if examples else "")
        )


def _tables(directory: Path) -> dict:
    try:
        return json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))["tables"]
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{directory}: not a readable export vintage: {exc}") from None


def _headline(con: duckdb.DuckDBPyConnection, rule) -> tuple[str | None, str | None]:
    """(reason to hold, note) for one headline threshold."""
    label = f"{rule.table}.{rule.field} ({rule.stat})"
    stats = {}
    for view in ("old_t", "new_t"):
        types = view_columns(con, view)
        if rule.field not in types:
            return None, f"{label}: field not in both vintages, skipped"
        if not is_numeric(types[rule.field]):
            return None, f"{label}: not numeric ({types[rule.field]}), skipped"
        function = "avg" if rule.stat == "mean" else "median"
        column = quote_ident(rule.field)
        stats[view] = con.execute(
            f"select cast({function}({column}) as double) from {view}"
        ).fetchone()[0]
    before, after = stats["old_t"], stats["new_t"]
    if before is None:
        return None, f"{label}: no value in latest, skipped"
    if after is None:
        return (
            f"{label}: every value is now NULL (was {before:.4g}), more than the "
            f"{rule.max_change_pct:g} % move allowed (TREMPLIN_GATE_HEADLINES)",
            None,
        )
    if before == after:
        change = 0.0
    elif before == 0:
        change = math.copysign(math.inf, after)
    else:
        change = 100.0 * (after - before) / abs(before)
    if abs(change) <= rule.max_change_pct:
        return None, f"{label}: {before:.4g} -> {after:.4g} ({change:+.1f} %), within the gate"
    return (
        f"{label}: moved from {before:.4g} to {after:.4g} ({change:+.1f} %), more than the "
        f"{rule.max_change_pct:g} % allowed (TREMPLIN_GATE_HEADLINES)",
        None,
    )


def accept_vintage(exports_dir: Path, vintage: str) -> tuple[str | None, dict]:
    """`tremplin accept`: verify a (held) vintage and make it `latest`."""
    return promote_vintage(exports_dir, vintage)
