"""`make soak N=…`: scheduled refreshes in a row, with faults arriving at random.

    python tests/soak/soak.py --runs N [--seed S] [--workdir DIR]

A private warehouse refreshes N times (`tremplin run`, as the schedule does) from a copy of
the embedded mirror that changes between runs (the geography publication revised: a
département renamed and renamed back; before each run with probability `--revision-rate`,
0.5 by default). Before each run one fault is drawn:

* `none`: a plain run;
* `corrupt_file`: the mirror serves a truncated `departements.json` for that run;
* `kill9`: the run's process group gets SIGKILL after a random delay;
* `concurrent`: two runs start at once;
* `reader`: an analyst's read-write DuckDB session holds the warehouse during the run;
* network faults: the geography publication is fetched live, for that run, from a
  loopback HTTP server (`tests/loopback.py`, the fault suite's) that misbehaves:
  `http_error` (500, 503 or 404 on every attempt), `http_error_then_ok` (503 twice, then
  the file: the client's retries must carry the run), `truncated_download` (the body
  shorter than its Content-Length), `connection_reset` (a TCP reset mid-body). The other
  sources come from the mirror (`tests/soak/live/sitecustomize.py` does the switch in
  every process of that run).

After every run the invariants are checked: `latest`
verifies against its manifest, every published vintage verifies, every landed file still
has the bytes it landed with, the warehouse opens and holds its dimensions. Once the runs
are over, a last run without faults must publish what the final clean mirror implies:
the same content digest as a fault-free build of that mirror in a fresh warehouse.

The report gives runs, faults per kind, run outcomes, violations (must be 0) and the
seed that replays the sequence of faults.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
MIRROR = PROJECT / "warehouse" / "mirror"
GEO = "etalab_decoupage_administratif"
NETWORK_FAULTS = ("http_error", "http_error_then_ok", "truncated_download", "connection_reset")
FAULTS = ("none", "corrupt_file", "kill9", "concurrent", "reader", *NETWORK_FAULTS)
# Faults after which the run must still succeed.
MUST_SUCCEED = ("none", "reader", "concurrent", "http_error_then_ok")
RUN_TIMEOUT_S = 1800
LIVE_HOOK = Path(__file__).resolve().parent / "live"
# The client's settings during a network fault: 2 retries, short backoff and timeout (the
# fault suite's), so that a persistent fault fails the fetch in seconds.
LIVE_ENV = {
    "TREMPLIN_HTTP_RETRIES": "2",
    "TREMPLIN_HTTP_BACKOFF": "0.05",
    "TREMPLIN_HTTP_TIMEOUT": "3",
}

sys.path.insert(0, str(PROJECT / "tests"))


def tremplin(
    warehouse: Path, mirror: Path, log: Path, extra_env: dict | None = None
) -> subprocess.Popen:
    env = {**os.environ, "TREMPLIN_WAREHOUSE_DIR": str(warehouse), "TREMPLIN_MIRROR": str(mirror)}
    env.pop("DAGSTER_HOME", None)
    env.update(extra_env or {})
    exe = Path(sys.executable).with_name("tremplin")
    with log.open("a") as out:
        process = subprocess.Popen(
            [str(exe), "run"], env=env, stdout=out, stderr=out, start_new_session=True
        )
    STARTED.append(process)
    return process


STARTED: list[subprocess.Popen] = []


def stop_runs() -> None:
    """SIGKILL the process group of every run still going (the soak was stopped)."""
    for process in STARTED:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def revise(mirror: Path, version: int) -> None:
    """The geography publication as revised `version` times (even: the original)."""
    records = json.loads((MIRROR / GEO / "departements.json").read_bytes())
    if version % 2:
        records[0]["nom"] = f"{records[0]['nom']} (révision {version})"
    (mirror / GEO / "departements.json").write_text(json.dumps(records, ensure_ascii=False))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Invariants:
    def __init__(self, warehouse: Path):
        self.warehouse = warehouse
        self.landed: dict[str, str] = {}
        self.violations: list[str] = []

    def check(self, label: str, killed: bool = False) -> None:
        """`killed`: a run was just SIGKILLed; the temporary file of a copy it was making
        may still be there (hidden, swept by the next run) and is not a violation yet."""
        from assets.export.vintages import verify_export

        found = []
        exports = self.warehouse / "exports"
        latest = exports / "latest"
        if latest.exists():
            try:
                verify_export(latest)
            except Exception as exc:  # noqa: BLE001 - any failure is a violation
                found.append(f"latest does not verify: {exc}")
        for vintage in sorted(exports.iterdir()) if exports.is_dir() else ():
            if vintage.name.startswith(".") or vintage.is_symlink() or not vintage.is_dir():
                continue
            try:
                verify_export(vintage)
            except Exception as exc:  # noqa: BLE001
                found.append(f"vintage {vintage.name} does not verify: {exc}")
        landing = self.warehouse / "landing"
        for path in sorted(landing.rglob("*")) if landing.is_dir() else ():
            if not path.is_file() or path.name.endswith(".json"):
                continue
            if path.name.startswith("."):
                if not killed:
                    found.append(f"partial file left in landing: {path}")
                continue
            digest = sha(path)
            if self.landed.setdefault(str(path), digest) != digest:
                found.append(f"landed file changed: {path}")
        db = self.warehouse / "warehouse.duckdb"
        if db.exists():
            import duckdb

            try:
                with duckdb.connect(str(db), read_only=True) as con:
                    rows = con.sql("select count(*) from dim_departement").fetchall()[0][0]
                if rows != 101:
                    found.append(f"warehouse holds {rows} départements")
            except Exception as exc:  # noqa: BLE001
                found.append(f"warehouse does not open: {exc}")
        self.violations += [f"after {label}: {v}" for v in found]


def network_replies(fault: str, rng: random.Random, mirror: Path, name: str) -> list:
    """The loopback server's script for one geography file under a network `fault`: the
    first reply is faulty, the last one repeats (so a persistent fault outlasts every retry
    of the client and of the landing step)."""
    from loopback import Reply

    def good(_request, name=name):
        body = (mirror / GEO / name).read_bytes()  # the mirror as revised for this run
        return Reply(body=body, headers={"Content-Type": "application/json"})

    def faulty(_request, name=name):
        body = (mirror / GEO / name).read_bytes()
        if fault == "truncated_download":
            return Reply(body=body[: len(body) // 2], content_length=len(body))
        if fault == "connection_reset":
            return Reply(body=body, reset_after=min(1000, len(body) // 2))
        status = rng.choice((500, 503, 404))
        return Reply(status=status, body=b"<html><body>error</body></html>")

    if fault == "http_error_then_ok":
        return [Reply(status=503), Reply(status=503), good]
    return [faulty]


@functools.cache
def live_hook() -> Path:
    """A copy of the live hook outside the project. The parsers' fingerprints hash every
    project module their code reaches (`code_digest`), and the hook's wrapper of
    `fetch_source` would count as one: each network-fault run would then re-parse every
    source, and so would the plain run after it. Outside the project the hook is left out
    of the digest, as a library is, and a plain run after a failed fetch finds nothing new."""
    where = Path(tempfile.mkdtemp(prefix="tremplin-soak-hook-"))
    shutil.copy2(LIVE_HOOK / "sitecustomize.py", where / "sitecustomize.py")
    atexit.register(shutil.rmtree, where, True)
    return where


def run_live(fault: str, rng: random.Random, warehouse: Path, mirror: Path, log: Path):
    """One refresh whose geography fetch goes, live, to a misbehaving loopback server.

    Returns (exit codes, requests the server received for the faulty file): no request
    means the fault never reached the run (a violation: the soak would test nothing)."""
    from loopback import serve

    with serve() as server:
        for download in sorted((mirror / GEO).glob("*.json")):
            server.route(f"/{download.name}", *network_replies(fault, rng, mirror, download.name))
        env = {
            **LIVE_ENV,
            "TREMPLIN_SOAK_GEO_URL": server.url("").rstrip("/"),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(live_hook()), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        code = tremplin(warehouse, mirror, log, env).wait(RUN_TIMEOUT_S)
        return [code], len(server.requests_to("/departements.json"))


def run_with_fault(fault: str, rng: random.Random, warehouse: Path, mirror: Path, log: Path):
    """Run one refresh under `fault`; returns the exit codes of the runs started."""
    if fault == "corrupt_file":
        target = mirror / GEO / "departements.json"
        clean = target.read_bytes()
        target.write_bytes(clean[: len(clean) // 3])
        try:
            return [tremplin(warehouse, mirror, log).wait(RUN_TIMEOUT_S)]
        finally:
            target.write_bytes(clean)
    if fault == "kill9":
        process = tremplin(warehouse, mirror, log)
        delay = rng.uniform(1.0, 60.0)
        try:
            return [process.wait(delay)]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return [-9]
    if fault == "concurrent":
        first, second = tremplin(warehouse, mirror, log), tremplin(warehouse, mirror, log)
        return [first.wait(RUN_TIMEOUT_S), second.wait(RUN_TIMEOUT_S)]
    if fault == "reader":
        code = (
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
            "con.sql('select count(*) from dim_departement').fetchall(); "
            "print('open', flush=True); time.sleep(3600)"
        )
        db = warehouse / "warehouse.duckdb"
        reader = None
        if db.exists():
            reader = subprocess.Popen(
                [sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True
            )
            reader.stdout.readline()
        try:
            return [tremplin(warehouse, mirror, log).wait(RUN_TIMEOUT_S)]
        finally:
            if reader is not None:
                reader.kill()
                reader.wait()
    return [tremplin(warehouse, mirror, log).wait(RUN_TIMEOUT_S)]


def content_digest(warehouse: Path) -> str | None:
    manifest = warehouse / "exports" / "latest" / "manifest.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text())["content_sha256"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--revision-rate",
        type=float,
        default=0.5,
        help="probability that the mirror is revised before a run (default 0.5); a revised "
        "mirror means a whole rebuild, a run on an unchanged one finds nothing new",
    )
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"the faults drawn from, comma-separated (default: all of {', '.join(FAULTS)})",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.revision_rate <= 1.0:
        parser.error(f"--revision-rate {args.revision_rate}: a probability, between 0 and 1")
    drawn = tuple(f for f in args.faults.split(",") if f)
    unknown = sorted(set(drawn) - set(FAULTS))
    if unknown or not drawn:
        parser.error(f"unknown fault(s) {unknown}; choose among {', '.join(FAULTS)}")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4))
    rng = random.Random(seed)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="tremplin-soak-"))
    warehouse, mirror, log = root / "warehouse", root / "mirror", root / "runs.log"
    shutil.copytree(MIRROR, mirror)
    print(
        f"soak: {args.runs} runs, seed {seed}, revision rate {args.revision_rate}, "
        f"work in {root} (run output: {log})"
    )
    started = time.monotonic()
    invariants = Invariants(warehouse)
    faults: Counter = Counter()
    outcomes: Counter = Counter()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        soak_runs(args, rng, drawn, warehouse, mirror, log, invariants, faults, outcomes)
    except KeyboardInterrupt:
        # Stopped (SIGTERM, Ctrl-C): the runs so far are reported; the run under way was
        # killed like a kill9 fault, so the landing check tolerates its temporary files.
        stop_runs()
        invariants.check(f"the run stopped by the soak's end (after {SOAKED[0]} runs)", killed=True)
        return report_stopped(args, seed, started, faults, outcomes, invariants, drawn)
    return finish(
        args, seed, started, root, warehouse, mirror, log, invariants, faults, outcomes, drawn
    )


def soak_runs(args, rng, drawn, warehouse, mirror, log, invariants, faults, outcomes) -> int:  # noqa: PLR0913
    version = 0
    for index in range(1, args.runs + 1):
        if rng.random() < args.revision_rate:
            version += 1
            revise(mirror, version)
        fault = rng.choice(drawn)
        faults[fault] += 1
        t0 = time.monotonic()
        if fault in NETWORK_FAULTS:
            codes, requests = run_live(fault, rng, warehouse, mirror, log)
            if not requests:
                invariants.violations.append(
                    f"run {index} ({fault}): the fault was not exercised (no request reached "
                    "the loopback server)"
                )
            if fault != "http_error_then_ok" and codes == [0]:
                invariants.violations.append(
                    f"run {index} ({fault}): the run succeeded although every fetch of the "
                    "geography failed"
                )
        else:
            codes = run_with_fault(fault, rng, warehouse, mirror, log)
        for code in codes:
            outcomes["ok" if code == 0 else ("killed" if code == -9 else "failed")] += 1
        if fault in MUST_SUCCEED and any(c != 0 for c in codes):
            invariants.violations.append(f"run {index} ({fault}) failed: exit codes {codes}")
        invariants.check(f"run {index} ({fault})", killed=-9 in codes)
        print(
            f"  run {index:>3}: fault {fault:<12} exit {codes} in {time.monotonic() - t0:.0f} s,"
            f" mirror revision {version}, violations so far {len(invariants.violations)}",
            flush=True,
        )
        SOAKED[0] = index
    return args.runs


SOAKED = [0]


def report_stopped(args, seed, started, faults, outcomes, invariants, drawn) -> int:  # noqa: PLR0913
    print(
        f"\nSTOPPED after {SOAKED[0]} complete runs of {args.runs}, in "
        f"{time.monotonic() - started:.0f} s: no final clean run nor fault-free comparison"
    )
    print("faults: " + ", ".join(f"{k} {faults[k]}" for k in FAULTS))
    print("runs:   " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"violations: {len(invariants.violations)}")
    for violation in invariants.violations:
        print(f"  - {violation}")
    print(f"seed {seed}")
    return 2


def finish(
    args, seed, started, root, warehouse, mirror, log, invariants, faults, outcomes, drawn
) -> int:  # noqa: PLR0913
    # Faults stop: the next run publishes what the clean mirror implies.
    final = tremplin(warehouse, mirror, log).wait(RUN_TIMEOUT_S)
    invariants.check("the final clean run")
    if final != 0:
        invariants.violations.append(f"the final clean run failed (exit {final})")
    fresh = root / "fault-free"
    if tremplin(fresh, mirror, log).wait(RUN_TIMEOUT_S) != 0:
        invariants.violations.append("the fault-free build failed")
    ours, reference = content_digest(warehouse), content_digest(fresh)
    if ours != reference:
        invariants.violations.append(
            f"final export content {ours} differs from the fault-free build's {reference}"
        )
    seconds = time.monotonic() - started
    print(f"\n{args.runs} runs (+ a final clean run and a fault-free build) in {seconds:.0f} s")
    print("faults: " + ", ".join(f"{k} {faults[k]}" for k in FAULTS))
    print("runs:   " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"final export content {ours} (fault-free build: {reference})")
    print(f"violations: {len(invariants.violations)}")
    for violation in invariants.violations:
        print(f"  - {violation}")
    replay = f"make soak N={args.runs} SEED={seed}"
    if args.revision_rate != 0.5:
        replay += f" RATE={args.revision_rate}"
    if drawn != FAULTS:
        replay += f" FAULTS={args.faults}"
    print(f"seed {seed}: replay with {replay}")
    if not invariants.violations and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if invariants.violations else 0


if __name__ == "__main__":
    sys.exit(main())
