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
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

HANG_S = 30
MIN_PER_FILE = 10
# Share of the mutants per source: the cheap files get more, the workbooks whose every
# mutant costs seconds (BMO, 3.5 MB) fewer; every source and file gets some.
WEIGHTS = {
    "francetravail_rome": 18,
    "etalab_decoupage_administratif": 14,
    "francetravail_bmo": 3,
    "insee_chomage_localise": 8,
    "insee_chomage_zone_emploi": 9,
    "insee_zonage_ze2020": 4,
    "dares_fap": 12,
    "dares_fap2021_rome": 10,
    "dares_tensions": 7,
    "francetravail_marche_travail": 6,
    "francetravail_offres": 9,
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
    module = next(m for m in source_modules() if m.SPEC.slug == slug)
    files = mirror_files(module)
    # At least MIN_PER_FILE mutants per file fuzzed: with a small budget, a sample of the
    # files (drawn from the seed), so that many-file sources are not one mutant per file.
    count = max(1, min(len(files), budget // MIN_PER_FILE))
    files = sorted(random.Random(seed).sample(files, count))
    done = set()
    if Path(out).exists():  # a restarted worker skips the files already done
        done = {json.loads(line)["file"] for line in Path(out).read_text().splitlines()}
    bench = SourceBench(module, gx_every=gx_every)
    warm_up()
    hang_log = open(Path(out).with_suffix(".hang"), "a")  # noqa: SIM115 - held by faulthandler
    faulthandler.enable(file=hang_log)  # a crash of the interpreter says where, too
    try:
        with open(out, "a") as sink:
            for path in files:
                if path.name in done:
                    continue
                examples = max(1, budget // len(files))
                fseed = file_seed(seed, slug, path.name)
                counts: Counter = Counter()
                failures: list = []
                started = time.time()

                def on_verdict(ops, verdict, counts=counts, failures=failures):
                    faulthandler.cancel_dump_traceback_later()
                    counts[verdict.outcome] += 1
                    if verdict.outcome == "failure":
                        failures.append(
                            {
                                "ops": " ".join(str(o) for o in ops),
                                "stage": verdict.stage,
                                "message": verdict.message[-3000:],
                            }
                        )

                def before(ops, path=path):
                    text = " ".join(str(o) for o in ops)
                    Path(progress).write_text(json.dumps({"file": path.name, "ops": text}))
                    faulthandler.dump_traceback_later(HANG_S, exit=True, file=hang_log)

                # The unmutated publication is parsed once, off the mutants' clock.
                Path(progress).write_text(json.dumps({"file": path.name, "ops": "(baseline)"}))
                faulthandler.dump_traceback_later(HANG_S * 4, exit=True, file=hang_log)
                bench.baseline(path.name)
                faulthandler.cancel_dump_traceback_later()
                fuzz_file(bench, path, examples, fseed, on_verdict, before)
                faulthandler.cancel_dump_traceback_later()
                record = {
                    "slug": slug,
                    "file": path.name,
                    "seed": fseed,
                    "counts": dict(counts),
                    "seconds": round(time.time() - started, 1),
                    "failures": failures,
                }
                sink.write(json.dumps(record) + "\n")
                sink.flush()
    finally:
        bench.close()
        hang_log.close()


def warm_up() -> None:
    """Import Great Expectations and DuckDB before the first mutant's clock starts: the
    first GX import alone takes 15 s or more on a loaded machine."""
    import pandas as pd

    from assets.ingest.validation import TableContract, validate_frame

    validate_frame(pd.DataFrame({"a": ["1"]}), TableContract(columns=("a",)), slug="w", table="w")


def _run_source(args: tuple) -> list[dict]:
    slug, budget, seed, workdir, gx_every = args
    out = Path(workdir) / f"{slug}.jsonl"
    progress = Path(workdir) / f"{slug}.current"
    for _attempt in range(50):
        proc = multiprocessing.get_context("spawn").Process(
            target=_worker, args=(slug, budget, seed, str(out), str(progress), gx_every)
        )
        proc.start()
        proc.join()
        if proc.exitcode == 0:
            break
        # The worker died (a hang past HANG_S, or a crash of the interpreter): the file it
        # was on is recorded as a failure, and a new worker goes on with the next ones.
        current = json.loads(progress.read_text()) if progress.exists() else {}
        name, ops = current.get("file", "?"), current.get("ops", "?")
        hang = out.with_suffix(".hang")
        where = hang.read_text()[-2500:] if hang.exists() else ""
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
            }
            sink.write(json.dumps(record) + "\n")
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


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
    total_weight = sum(WEIGHTS[s] for s in slugs)
    budgets = {s: max(1, round(args.mutants * WEIGHTS[s] / total_weight)) for s in slugs}
    print(f"fuzz: {sum(budgets.values())} mutants over {len(slugs)} sources, seed {seed}")
    print(f"      replay this run with: make fuzz SEED={seed} MUTANTS={args.mutants}")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tremplin-fuzz-") as workdir:
        jobs = [(s, budgets[s], seed, workdir, args.gx_every) for s in slugs]
        # The costliest sources first, so two workers end together.
        jobs.sort(key=lambda j: -WEIGHTS[j[0]])
        # Threads only wait here: each source runs in its own worker process.
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = [r for rs in pool.map(_run_source, jobs) for r in rs]
    seconds = time.time() - started
    return report(results, seconds, seed)


def report(results: list[dict], seconds: float, seed: int) -> int:
    per_source: dict[str, Counter] = {}
    for r in results:
        per_source.setdefault(r["slug"], Counter()).update(r["counts"])
    total = Counter()
    print(f"\n{'source':34} {'mutants':>8} {'accepted':>9} {'rejected':>9} {'failures':>9}")
    for slug in sorted(per_source):
        c = per_source[slug]
        total.update(c)
        n = sum(c.values())
        print(f"{slug:34} {n:>8} {c['accepted']:>9} {c['rejected']:>9} {c['failure']:>9}")
    n = sum(total.values())
    print(
        f"{'total':34} {n:>8} {total['accepted']:>9} {total['rejected']:>9} {total['failure']:>9}"
    )
    print(f"\n{n} mutants in {seconds:.0f} s ({n / max(seconds, 1e-9):.1f}/s), seed {seed}")
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
