"""`make fuzz`: publisher mutants of every mirror file through landing -> parse -> contract.

    python tests/fuzz/run.py [--mutants 10000] [--seed S] [--jobs 2] [--source SLUG ...]
    python tests/fuzz/run.py --replay SLUG FILE "op(a,b,c) op(a,b,c)"

Mutants are drawn by hypothesis (`fuzz_mutants.Op` lists), with one seed per file derived
from `--seed`, printed so that a run replays. Each source runs in a worker process; a
mutant taking longer than `HANG_S` kills its worker (faulthandler dumps where it hung),
which counts as a failure and the worker goes on with the next file. A failure prints the
source, the file, the stage, the message and the operations to replay it with
`--replay`. The exit code is 1 when any failure was found.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

HANG_S = 30
MIN_PER_FILE = 10
CHUNK_S = 60
# Share of the mutants per source: the cheap files get more, the workbooks and the large
# publications whose every mutant costs seconds (BMO, 3.5 MB; the 28 answers "Marché du
# travail" parses together; the 2 MB tensions CSV) fewer; every file gets MIN_PER_FILE.
WEIGHTS = {
    "francetravail_rome": 18,
    "etalab_decoupage_administratif": 16,
    "francetravail_bmo": 2,
    "insee_chomage_localise": 10,
    "insee_chomage_zone_emploi": 9,
    "insee_zonage_ze2020": 3,
    "dares_fap": 14,
    "dares_fap2021_rome": 12,
    "dares_tensions": 5,
    "francetravail_marche_travail": 4,
    "francetravail_offres": 10,
}
# Seconds per mutant measured on the shared test machine (load 10-12), for the order of
# the jobs only: the longest first, so that the workers end together.
COST = {
    "francetravail_rome": 0.9,
    "etalab_decoupage_administratif": 0.2,
    "francetravail_bmo": 7,
    "insee_chomage_localise": 0.3,
    "insee_chomage_zone_emploi": 0.8,
    "insee_zonage_ze2020": 3.5,
    "dares_fap": 0.5,
    "dares_fap2021_rome": 0.4,
    "dares_tensions": 2.5,
    "francetravail_marche_travail": 4,
    "francetravail_offres": 0.5,
}


def file_seed(seed: int, slug: str, file_name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{slug}:{file_name}".encode()).digest()[:4])


def ops_strategy(model):
    from fuzz_mutants import Op
    from hypothesis import strategies as st

    number = st.integers(min_value=0, max_value=1_000_000)
    op = st.builds(Op, st.sampled_from(model.ops), number, number, number)
    return st.lists(op, min_size=1, max_size=3)


def fuzz_file(bench, path: Path, examples: int, seed: int, on_verdict, before=None) -> None:
    """`examples` hypothesis-drawn mutants of `path`; `on_verdict(ops, verdict)` each
    (and `before(ops)` ahead of each)."""
    from fuzz_mutants import load_model, mutate
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    model = load_model(path)

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(ops_strategy(model))
    def one(ops):
        if before is not None:
            before(ops)
        on_verdict(ops, bench.run(path.name, mutate(model, ops)))

    one()


def _worker(slug: str, budget: int, seed: int, out: str, progress: str, gx_every: int) -> None:
    import faulthandler
    import logging
    import warnings

    from fuzz_harness import SourceBench, mirror_files, source_modules

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    # The worker's own output (DuckDB's progress bars, a Rust panic's message) goes to its
    # log, quoted when the worker dies; the run's output is the parent's progress lines.
    log_fd = os.open(Path(out).with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    module = next(m for m in source_modules() if m.SPEC.slug == slug)
    files = mirror_files(module)
    # At least MIN_PER_FILE mutants per file fuzzed: with a small budget, a sample of the
    # files (drawn from the seed), so that many-file sources are not one mutant per file.
    count = max(1, min(len(files), budget // MIN_PER_FILE))
    files = sorted(random.Random(seed).sample(files, count))
    # The budget spread over the files exactly (the first ones get one more).
    share = {p.name: budget // len(files) + (i < budget % len(files)) for i, p in enumerate(files)}
    done = set()
    if Path(out).exists():  # a restarted worker skips the files already done
        done = {r["file"] for r in map(json.loads, Path(out).read_text().splitlines()) if r["done"]}
    bench = SourceBench(module, root=Path(out).with_suffix(".bench"), gx_every=gx_every)
    warm_up()
    hang_log = open(Path(out).with_suffix(".hang"), "a")  # noqa: SIM115 - held by faulthandler
    faulthandler.enable(file=hang_log)  # a crash of the interpreter says where, too
    try:
        with open(out, "a") as sink:
            for path in files:
                if path.name in done or share[path.name] == 0:
                    continue
                fseed = file_seed(seed, slug, path.name)
                run = FileRun(sink, slug, path.name, fseed)

                def before(ops, path=path):
                    text = " ".join(str(o) for o in ops)
                    Path(progress).write_text(json.dumps({"file": path.name, "ops": text}))
                    faulthandler.dump_traceback_later(HANG_S, exit=True, file=hang_log)

                def on_verdict(ops, verdict, run=run):
                    faulthandler.cancel_dump_traceback_later()
                    run.verdict(ops, verdict)

                # The unmutated publication is parsed once, off the mutants' clock.
                Path(progress).write_text(json.dumps({"file": path.name, "ops": "(baseline)"}))
                faulthandler.dump_traceback_later(HANG_S * 4, exit=True, file=hang_log)
                bench.baseline(path.name)
                faulthandler.cancel_dump_traceback_later()
                run.since = time.time()
                fuzz_file(bench, path, share[path.name], fseed, on_verdict, before)
                faulthandler.cancel_dump_traceback_later()
                run.flush(done=True)
    finally:
        bench.close()
        hang_log.close()


class FileRun:
    """The verdicts on one file's mutants, written as records to the worker's output: one
    every CHUNK_S (a long file shows progress, a stopped run keeps its figures) and the
    last one `done`."""

    def __init__(self, sink, slug: str, file_name: str, seed: int):
        self.sink, self.slug, self.file_name, self.seed = sink, slug, file_name, seed
        self.counts: Counter = Counter()
        self.failures: list[dict] = []
        self.since = time.time()

    def verdict(self, ops, verdict) -> None:
        self.counts[verdict.outcome] += 1
        if verdict.outcome == "failure":
            self.failures.append(
                {
                    "ops": " ".join(str(o) for o in ops),
                    "stage": verdict.stage,
                    "message": verdict.message[-3000:],
                }
            )
        if time.time() - self.since > CHUNK_S:
            self.flush(done=False)

    def flush(self, *, done: bool) -> None:
        record = {
            "slug": self.slug,
            "file": self.file_name,
            "seed": self.seed,
            "counts": dict(self.counts),
            "seconds": round(time.time() - self.since, 1),
            "failures": self.failures,
            "done": done,
        }
        self.sink.write(json.dumps(record) + "\n")
        self.sink.flush()
        self.counts, self.failures, self.since = Counter(), [], time.time()


def warm_up() -> None:
    """Import Great Expectations and DuckDB before the first mutant's clock starts: the
    first GX import alone takes 15 s or more on a loaded machine."""
    import pandas as pd

    from assets.ingest.validation import TableContract, validate_frame

    validate_frame(pd.DataFrame({"a": ["1"]}), TableContract(columns=("a",)), slug="w", table="w")


class Progress:
    """Per-file lines as the workers record them, with running totals per source: a run
    stopped before its end still says what it did."""

    def __init__(self, budgets: dict[str, int]):
        self.budgets = budgets
        self.started = time.time()
        self.lock = threading.Lock()
        self.per_source: dict[str, Counter] = {s: Counter() for s in budgets}

    def record(self, r: dict) -> None:
        with self.lock:
            c = self.per_source[r["slug"]]
            c.update(r["counts"])
            total = Counter()
            for counts in self.per_source.values():
                total.update(counts)
            n, done = sum(c.values()), sum(total.values())
            what = "done" if r["done"] else "..."
            print(
                f"[{time.time() - self.started:6.0f} s] {r['slug']} {r['file']} {what} "
                f"{r['counts']} | {r['slug']} {n}/{self.budgets[r['slug']]} "
                f"(a {c['accepted']} r {c['rejected']} f {c['failure']}) | all {done} "
                f"(f {total['failure']})",
                flush=True,
            )


STOP = threading.Event()
LIVE: set = set()


def _run_source(args: tuple) -> list[dict]:
    slug, budget, seed, workdir, gx_every, progress_out = args
    out = Path(workdir) / f"{slug}.jsonl"
    progress = Path(workdir) / f"{slug}.current"
    seen = 0

    def collect() -> None:
        nonlocal seen
        if not out.exists():
            return
        lines = out.read_text().splitlines()
        for line in lines[seen:]:
            progress_out.record(json.loads(line))
        seen = len(lines)

    for _attempt in range(50):
        if STOP.is_set():
            break
        proc = multiprocessing.get_context("forkserver").Process(
            target=_worker, args=(slug, budget, seed, str(out), str(progress), gx_every)
        )
        proc.start()
        LIVE.add(proc)
        while proc.is_alive():
            proc.join(timeout=5)
            collect()
        LIVE.discard(proc)
        collect()
        if proc.exitcode == 0 or STOP.is_set():
            break
        # The worker died (a hang past HANG_S, or a crash of the interpreter): the file it
        # was on is recorded as a failure, and a new worker goes on with the next ones.
        current = json.loads(progress.read_text()) if progress.exists() else {}
        name, ops = current.get("file", "?"), current.get("ops", "?")
        where = "".join(
            f"\n{f.suffix}: ...{f.read_text(errors='replace')[-1500:]}"
            for f in (out.with_suffix(".hang"), out.with_suffix(".log"))
            if f.exists()
        )
        with out.open("a") as sink:
            record = {
                "slug": slug,
                "file": name,
                "seed": file_seed(seed, slug, name),
                "counts": {"failure": 1},
                "seconds": 0,
                "failures": [
                    {
                        "ops": ops,
                        "stage": "hang",
                        "message": f"worker exit code {proc.exitcode} (> {HANG_S} s or crash)\n"
                        + where,
                    }
                ],
                "done": True,
            }
            sink.write(json.dumps(record) + "\n")
        collect()
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def _budgets(mutants: int, slugs: list[str]) -> dict[str, int]:
    """`mutants` shared by WEIGHTS exactly (largest remainders), at least one per source."""
    total_weight = sum(WEIGHTS[s] for s in slugs)
    exact = {s: mutants * WEIGHTS[s] / total_weight for s in slugs}
    budgets = {s: max(1, int(exact[s])) for s in slugs}
    for s in sorted(slugs, key=lambda s: int(exact[s]) - exact[s]):
        if sum(budgets.values()) >= mutants:
            break
        budgets[s] += 1
    return budgets


def _preload() -> None:
    """Workers are forked from a server that imported the harness, pandas, DuckDB and
    Great Expectations once (not 11 interpreters importing them each, 10-20 s apiece on a
    loaded machine); nothing else runs there, so no thread is forked."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # the server's imports warn (pyspark)
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["fuzz_harness", "fuzz_mutants", "great_expectations", "duckdb", "hypothesis"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--source", action="append", default=[])
    parser.add_argument(
        "--gx-every",
        type=int,
        default=10,
        help="check every Nth mutant with Great Expectations too (all: with the SQL validator)",
    )
    parser.add_argument("--replay", nargs=3, metavar=("SLUG", "FILE", "OPS"))
    args = parser.parse_args(argv)
    if args.replay:
        return replay(*args.replay)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4))
    slugs = [s for s in WEIGHTS if not args.source or s in args.source]
    budgets = _budgets(args.mutants, slugs)
    print(f"fuzz: {sum(budgets.values())} mutants over {len(slugs)} sources, seed {seed}")
    print(f"      replay this run with: make fuzz SEED={seed} MUTANTS={args.mutants}")
    print("      " + ", ".join(f"{s} {b}" for s, b in budgets.items()), flush=True)
    _preload()
    progress = Progress(budgets)
    started = time.time()
    stopped = False

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    from fuzz_harness import scratch_dir

    with tempfile.TemporaryDirectory(prefix="tremplin-fuzz-", dir=scratch_dir()) as workdir:
        jobs = [(s, budgets[s], seed, workdir, args.gx_every, progress) for s in slugs]
        # The longest sources first, so that the workers end together.
        jobs.sort(key=lambda j: -budgets[j[0]] * COST[j[0]])
        # Threads only wait here: each source runs in its own worker process.
        pool = ThreadPoolExecutor(max(1, args.jobs))
        try:
            results = [r for rs in pool.map(_run_source, jobs) for r in rs]
        except KeyboardInterrupt:
            stopped = True
            STOP.set()
            for proc in list(LIVE):
                proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            results = [
                json.loads(line)
                for f in sorted(Path(workdir).glob("*.jsonl"))
                for line in f.read_text().splitlines()
            ]
        finally:
            pool.shutdown(wait=True)
    seconds = time.time() - started
    code = report(results, seconds, seed)
    if stopped:
        print(f"\nSTOPPED before the end: {sum(budgets.values())} mutants were planned")
        return 2
    return code


def report(results: list[dict], seconds: float, seed: int) -> int:
    per_source: dict[str, Counter] = {}
    busy: Counter = Counter()
    for r in results:
        per_source.setdefault(r["slug"], Counter()).update(r["counts"])
        busy[r["slug"]] += r["seconds"]
    total = Counter()
    print(
        f"\n{'source':34} {'mutants':>8} {'accepted':>9} {'rejected':>9} {'failures':>9}"
        f" {'seconds':>8} {'s/mutant':>9}"
    )
    for slug in sorted(per_source):
        c = per_source[slug]
        total.update(c)
        n = sum(c.values())
        print(
            f"{slug:34} {n:>8} {c['accepted']:>9} {c['rejected']:>9} {c['failure']:>9}"
            f" {busy[slug]:>8.0f} {busy[slug] / max(n, 1):>9.2f}"
        )
    n = sum(total.values())
    print(
        f"{'total':34} {n:>8} {total['accepted']:>9} {total['rejected']:>9} {total['failure']:>9}"
        f" {sum(busy.values()):>8.0f}"
    )
    print(f"\n{n} mutants in {seconds:.0f} s ({n / max(seconds, 1e-9):.1f}/s), seed {seed}")
    print("(seconds: the worker's time on the mutants of the source, baselines excluded)")
    failures = [(r, f) for r in results for f in r["failures"]]
    for r, f in failures[:40]:
        print(f"\nFAILURE {r['slug']} {r['file']} (file seed {r['seed']}) at {f['stage']}:")
        print(f"  replay: python tests/fuzz/run.py --replay {r['slug']} '{r['file']}' '{f['ops']}'")
        print("  " + f["message"].replace("\n", "\n  "))
    if len(failures) > 40:
        print(f"\n... and {len(failures) - 40} more failures")
    return 1 if failures else 0


def replay(slug: str, file_name: str, ops_text: str) -> int:
    import logging

    from fuzz_harness import MIRROR, SourceBench, source_modules
    from fuzz_mutants import load_model, mutate, parse_ops

    logging.disable(logging.WARNING)
    module = next(m for m in source_modules() if m.SPEC.slug == slug)
    bench = SourceBench(module)
    try:
        model = load_model(MIRROR / slug / file_name)
        verdict = bench.run(file_name, mutate(model, parse_ops(ops_text)))
    finally:
        bench.close()
    print(f"{verdict.outcome} at {verdict.stage}\n{verdict.message}")
    return 1 if verdict.outcome == "failure" else 0


if __name__ == "__main__":
    sys.exit(main())
