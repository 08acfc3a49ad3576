"""One mutant through landing -> parse -> contract, and the verdict on what came out.

For a source, its mirror files are landed once (`SourceBench`). A mutant of one of them is
landed beside them the way a mirror fetch lands a file (same format check), then the
source's parser reads that file with the other landed files of its publication (of its
period, for a periodic source) and every table is checked against its contract by the
factory's own validation. The verdict:

* accepted: every table meets its contract. Each table is staged the way the factory
  stages it (the Parquet bytes it renames into place) and that file is checked by the
  SQL validator (`validate_parquet`), on every row; one mutant in `gx_every` is checked
  by Great Expectations too (the factory's check of a frame), an implementation
  independent of the SQL one, and the two must agree. The staged files are then
  published (renamed into place) as the factory does, so the bytes checked are the
  bytes published;
* rejected: the landing check, the parser (`ParseError`) or the contract refused it, and
  the message names the source, the file and what was expected;
* failure: anything else (another exception, a message that does not say where, a
  published table that breaks its contract).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from assets.foundation.settings import get_settings
from assets.ingest.factory import _move_into_place, _parse, _stage, _validate
from assets.ingest.fetch import _mirror_check, fetch_source
from assets.ingest.http import FetchError
from assets.ingest.landing import LandedFile, SlugIndex, land
from assets.ingest.raw import PROVENANCE_COLUMNS, ParseError, raw_path
from assets.ingest.validation import StagedTable, validate_parquet

MIRROR = Path(__file__).resolve().parents[2] / "warehouse" / "mirror"
SCRATCH_MIN_FREE = 2 << 30


def scratch_dir() -> str | None:
    """Where the benches keep their scratch warehouses: a memory filesystem when there is
    one with room (each mutant lands, publishes and removes files, and the `fsync`s of
    landing and publication cost milliseconds on a disk shared with other builds), else
    the system's temporary directory."""
    shm = Path("/dev/shm")
    try:
        stat = os.statvfs(shm)
    except OSError:
        return None
    if os.access(shm, os.W_OK) and stat.f_bavail * stat.f_frsize > SCRATCH_MIN_FREE:
        return str(shm)
    return None


FUZZED_SUFFIXES = (".xlsx", ".xls", ".csv", ".json", ".json.gz", ".zip", ".geojson")


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "accepted" | "rejected" | "failure"
    stage: str  # "landing" | "parse" | "contract" | "published"
    message: str


def source_modules() -> tuple[ModuleType, ...]:
    from pipelines.sources import source_modules as modules

    return modules()


def mirror_files(module: ModuleType) -> list[Path]:
    """The files of the source's mirror folder that its spec picks up."""
    folder = MIRROR / module.SPEC.slug
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file()
        and f.name.lower().endswith(FUZZED_SUFFIXES)
        and any(fnmatch.fnmatch(f.name, p) for p in module.SPEC.mirror_patterns)
    )


class SourceBench:
    """A scratch warehouse holding one source's landed mirror files."""

    def __init__(self, module: ModuleType, root: Path | None = None, gx_every: int = 1):
        self.module = module
        # Great Expectations costs about a second per table; `gx_every` > 1 checks the
        # other mutants with the SQL validator alone (same contract, every row).
        self.gx_every = gx_every
        self.checked = 0
        self.spec = module.SPEC
        self.slug = self.spec.slug
        self.root = Path(root or tempfile.mkdtemp(prefix=f"fuzz-{self.slug}-", dir=scratch_dir()))
        self.settings = dataclasses.replace(
            get_settings(),
            warehouse_dir=self.root / "base",
            mirror_dir=MIRROR,
            mode="mirror",
        )
        logging.getLogger("assets").setLevel(logging.ERROR)
        self.files = fetch_source(self.spec, self.settings).files
        self._baseline: dict[str, dict] = {}

    def baseline(self, file_name: str) -> dict:
        """The tables parsed from the unmutated publication of `file_name` (its period's)."""
        target = next(f for f in self.files if f.file_name == file_name)
        files = self.publication_for(target)
        key = "|".join(f.file_name for f in files)
        if key not in self._baseline:
            settings = dataclasses.replace(self.settings, warehouse_dir=self.root / "baseline")
            parsed = _parse(self.module, files, settings)
            self._baseline[key] = {
                t: _content(item) for t, item in parsed.items() if not isinstance(item, StagedTable)
            }
        return self._baseline[key]

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def publication_for(self, target: LandedFile) -> tuple[LandedFile, ...]:
        """The landed files the parser reads with `target` (its period's, when periodic)."""
        p = self.spec.partitioning
        others = [f for f in self.files if f.file_name != target.file_name]
        if p is not None and p.file_period:
            key = p.key_for_file(target.file_name)
            others = [f for f in others if p.key_for_file(f.file_name) == key]
        return tuple(sorted([*others, target], key=lambda f: f.file_name))

    def run(self, file_name: str, data: bytes) -> Verdict:
        scratch = Path(tempfile.mkdtemp(prefix="mutant-", dir=self.root))
        try:
            return self._run(scratch, file_name, data)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - whatever escaped the stages is a failure
            return Verdict("failure", "unexpected", traceback.format_exc(limit=12))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(self, scratch: Path, file_name: str, data: bytes) -> Verdict:
        slug = self.slug
        src = scratch / "mirror" / slug / file_name
        src.parent.mkdir(parents=True)
        src.write_bytes(data)
        slug_dir = scratch / "landing" / slug
        slug_dir.mkdir(parents=True)
        download = next((d for d in self.spec.downloads if d.file_name == file_name), None)
        try:
            landed = land(
                SlugIndex(slug_dir, slug),
                file_name,
                src,
                url=src.as_uri(),
                upstream_url=None,
                mode="mirror",
                check_head=_mirror_check(slug, src, download),
            )
        except FetchError as exc:
            return _named(Verdict("rejected", "landing", str(exc)), slug, file_name)
        files = self.publication_for(landed)
        settings = dataclasses.replace(self.settings, warehouse_dir=scratch)
        baseline = self.baseline(file_name)
        try:
            parsed = _parse(self.module, files, settings)
        except (ParseError, FetchError) as exc:
            return _named(Verdict("rejected", "parse", str(exc)), slug, file_name)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - a Rust panic (PyO3) is a BaseException
            return Verdict("failure", "parse", traceback.format_exc(limit=12))
        # A table whose content is the unmutated one's met its contract there: the check
        # is deterministic, so only the tables the mutant changed are checked.
        changed = [t for t in self.module.TABLES if not _same(parsed[t], baseline.get(t))]
        self.checked += 1
        staged: dict[str, Path] = {}
        try:
            reports = {t: self._contract(parsed[t], t, settings, staged) for t in changed}
        except Exception:
            return Verdict("failure", "contract", traceback.format_exc(limit=12))
        if any(isinstance(r, str) for r in reports.values()):
            return Verdict(
                "failure", "contract", "\n".join(r for r in reports.values() if isinstance(r, str))
            )
        failed = [r for r in reports.values() if not r.success]
        if failed:
            text = "\n".join(r.describe() for r in failed)
            if not any(file_name in r.source_files for r in failed):
                return Verdict(
                    "failure", "contract", f"contract failure does not name {file_name}:\n{text}"
                )
            return _named(Verdict("rejected", "contract", text), slug, file_name)
        return self._published(parsed, settings, staged)

    def _contract(self, item, table: str, settings, staged: dict[str, Path]):
        """The factory's contract check of `item`, on the bytes the factory would publish.

        A frame is staged by the factory's own writer (`_stage`: the file it renames into
        place) and that file is checked by the SQL validator, every row; one mutant in
        `gx_every` is checked by Great Expectations as well (the factory's check of a
        frame), and the two must agree (else a message). A parser-staged table is checked
        by SQL, as the factory does. `staged[table]` is the file to publish."""
        contract = self.module.CONTRACTS[table]
        if isinstance(item, StagedTable):
            staged[table] = Path(item.path)
            return _validate(item, contract, self.slug)
        names = tuple(f.file_name for f in item.source_files)
        target = raw_path(settings.raw_dir, self.slug, table, item.partition)
        staged[table] = _stage(item, target)
        sql = validate_parquet(
            staged[table], contract, slug=self.slug, table=table, source_files=names
        )
        if self.checked % self.gx_every:
            return sql
        gx = _validate(item, contract, self.slug)
        if gx.success != sql.success:
            return (
                f"{table}: the GX and SQL contract checks disagree on the same rows:\n"
                f"GX: {gx.describe()}\nSQL: {sql.describe()}"
            )
        return gx

    def _published(self, parsed: dict, settings, staged: dict[str, Path]) -> Verdict:
        """Publish as the factory does (the staged files renamed into place) the tables the
        mutant changed (the others are the unmutated publication's). The SQL check above
        read these very bytes; the provenance columns must be there."""
        for table, path in staged.items():
            item = parsed[table]
            target = raw_path(settings.raw_dir, self.slug, table, item.partition)
            try:
                published = _move_into_place(path, target)
            except Exception:
                return Verdict("failure", "published", traceback.format_exc(limit=12))
            if not published.is_file():
                return Verdict("failure", "published", f"{table}: {target} was not published")
            if not isinstance(item, StagedTable):
                missing = [c for c in PROVENANCE_COLUMNS if c not in item.frame.columns]
                if missing:
                    return Verdict(
                        "failure", "published", f"{table}: provenance column(s) {missing} lost"
                    )
        return Verdict("accepted", "published", "")


def _content(item):
    """A parsed frame without the provenance columns that name the landed bytes."""
    frame = item.frame
    return frame.drop(columns=[c for c in PROVENANCE_COLUMNS if c in frame.columns])


def _same(item, baseline) -> bool:
    if baseline is None or isinstance(item, StagedTable):
        return False
    try:
        return _content(item).equals(baseline)
    except Exception:
        return False


def _named(verdict: Verdict, slug: str, file_name: str) -> Verdict:
    """A refusal must say where: the source and the file."""
    missing = [what for what in (slug, file_name) if what not in verdict.message]
    if missing:
        return Verdict(
            "failure",
            verdict.stage,
            f"refusal does not name {missing}: {verdict.message}",
        )
    return verdict
