"""`make bench-api`: the API under load on loopback, both back ends, with a switch mid-load.

What it does, on a copy of the latest export (hard links, so nothing under `exports/` is
touched):

1. starts a throw-away PostgreSQL server and times `publish` of the vintage;
2. for each back end (files, PostgreSQL) starts `tremplin serve` in its own process and
   drives it with wrk (Debian's package; installed when missing) from one thread and 16
   connections: the framework's trivial endpoint `/ping` (the floor), key lookups
   (random local diagnosis keys) and list pages (random département, 20 records);
3. re-runs the key lookups while a second vintage is published mid-load (files: `latest`
   moves; PostgreSQL: `tremplin publish` loads and switches) and counts failed requests.

wrk is C and takes one core; the server gets the other: on 2 cores that keeps the load
generator from stealing the server's CPU, which a Python client would (an httpx client
needs about as much CPU per request as the server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from assets.export.vintages import LATEST, MANIFEST, switch_latest
from assets.foundation.settings import get_settings
from assets.serving.pg_server import free_port, start_server
from assets.serving.postgres import publish_vintage

CONNECTIONS = 16
DURATION_S = 10
PAGE_LIMIT = 20
TARGET_SHARE_OF_FLOOR = 0.5
TARGET_P99_MS = 50.0

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(%d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("bench-api needs wrk (apt-get install wrk)")
    return path


def _copy_vintage(source: Path, exports: Path, name: str) -> None:
    """Hard links of a vintage's files under a new vintage name."""
    target = exports / name
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and path.name != MANIFEST:
            os.link(path, target / path.name)
    manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    manifest["vintage"] = name
    manifest["created_at"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _paths(source: Path, workdir: Path) -> dict[str, Path]:
    """Files of request paths: random local diagnosis keys, random département pages."""
    import duckdb

    con = duckdb.connect()
    keys = [
        row[0]
        for row in con.execute(
            "select diagnosis_key from read_parquet(?)", [str(source / "local_diagnosis.parquet")]
        ).fetchall()
    ]
    departements = [
        row[0]
        for row in con.execute(
            "select departement_code, count(*) from read_parquet(?) group by 1",
            [str(source / "local_diagnosis.parquet")],
        ).fetchall()
    ]
    pages = max(1, len(keys) // max(1, len(departements)) // PAGE_LIMIT)
    rng = random.Random(16)
    files = {
        "key lookups": [f"/v1/local-diagnosis/{rng.choice(keys)}" for _ in range(20000)],
        "list pages": [
            f"/v1/local-diagnosis?departementCode={rng.choice(departements)}"
            f"&limit={PAGE_LIMIT}&offset={PAGE_LIMIT * rng.randrange(pages)}"
            for _ in range(5000)
        ],
        "floor (/ping)": ["/ping"],
    }
    written = {}
    for name, lines in files.items():
        path = workdir / (re.sub(r"\W+", "_", name) + ".txt")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written[name] = path
    return written


def _wrk(wrk: str, port: int, paths: Path, duration: int, workdir: Path) -> dict:
    script = workdir / f"{paths.stem}.lua"
    script.write_text(LUA % (paths, 7), encoding="utf-8")
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", str(script)]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True
    ).stdout

    def latency_ms(label: str) -> float | None:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            return None
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = re.search(r"(\d+) requests in", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests": int(requests.group(1)) if requests else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency_ms("50"),
        "p99_ms": latency_ms("99"),
        "failed": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(g) for g in socket.groups()) if socket else 0),
    }


class _Server:
    """`tremplin serve` in a process of its own."""

    def __init__(self, backend: str, warehouse: Path, dsn: str | None) -> None:
        self.port = free_port()
        env = {**os.environ, "TREMPLIN_WAREHOUSE_DIR": str(warehouse)}
        env.pop("TREMPLIN_API_DSN", None)
        if dsn:
            env["TREMPLIN_API_DSN"] = dsn
        command = [sys.executable, "-m", "pipelines.cli", "serve", "--backend", backend]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise SystemExit(f"tremplin serve --backend {backend} exited")
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"tremplin serve --backend {backend} did not answer in 120 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vintage(self) -> str:
        return httpx.get(f"{self.url}/health", timeout=5).json()["vintage"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _cpu_seconds(pg) -> tuple[float, float]:
    """(this process, the PostgreSQL server with its exited backends) CPU seconds so far:
    on a shared machine the wall time of a publication says little, its CPU time does."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    ours = usage.ru_utime + usage.ru_stime
    try:
        pid = int((pg.base / "data" / "postmaster.pid").read_text().splitlines()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        server = float("nan")
    return ours, server


def run_bench(duration: int = DURATION_S, exports_dir: Path | None = None) -> dict:
    wrk = ensure_wrk()
    exports_dir = Path(exports_dir or get_settings().exports_dir)
    source = (exports_dir / LATEST).resolve()
    if not (source / MANIFEST).is_file():
        raise SystemExit(f"no export at {exports_dir / LATEST}: run `make run` first")
    workdir = Path(tempfile.mkdtemp(prefix="tremplin-bench-api-"))
    warehouse = workdir / "warehouse"
    exports = warehouse / "exports"
    first, second = "20000101T000000Z", "20000101T000001Z"
    _copy_vintage(source, exports, first)
    _copy_vintage(source, exports, second)
    switch_latest(exports, first)
    paths = _paths(source, workdir)
    manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    report: dict = {
        "vintage": manifest["vintage"],
        "rows": {k: v["rows"] for k, v in manifest["tables"].items()},
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "connections": CONNECTIONS,
        "duration_s": duration,
        "backends": {},
    }
    pg = start_server()
    try:
        started, cpu_before = time.monotonic(), _cpu_seconds(pg)
        published = publish_vintage(pg.dsn, exports, first)
        report["publish_s"] = round(time.monotonic() - started, 1)
        time.sleep(0.5)  # the backends exit and are counted in the server's children
        cpu_after = _cpu_seconds(pg)
        report["publish_cpu_s"] = {
            "tremplin (Python, DuckDB)": round(cpu_after[0] - cpu_before[0], 1),
            "postgresql": round(cpu_after[1] - cpu_before[1], 1),
        }
        report["publish_local_diagnosis_s"] = published.load_seconds.get("local_diagnosis")
        for backend, dsn in (("files", None), ("postgres", pg.dsn)):
            switch_latest(exports, first)
            if backend == "postgres":
                publish_vintage(pg.dsn, exports, first)
            server = _Server(backend, warehouse, dsn)
            try:
                results = {}
                for name, file in paths.items():
                    if duration >= 2:
                        _wrk(wrk, server.port, file, 2, workdir)  # warm-up
                    results[name] = _wrk(wrk, server.port, file, duration, workdir)
                results["key lookups, new vintage mid-load"] = _switch_under_load(
                    wrk, server, backend, exports, second, pg.dsn, paths, duration, workdir
                )
                report["backends"][backend] = results
            finally:
                server.stop()
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _switch_under_load(wrk, server, backend, exports, second, dsn, paths, duration, workdir):
    """Key lookups for three times `duration` while the second vintage is published 2 s
    in (files: `latest` moves, and the server verifies and indexes the new vintage beside
    the old one; PostgreSQL: a whole publication, load then switch), so the switch falls
    inside the run."""
    outcome: dict = {}
    length, delay = duration * 3, 2

    def publish_later() -> None:
        time.sleep(delay)
        started = time.monotonic()
        if backend == "files":
            switch_latest(exports, second)
        else:
            publish_vintage(dsn, exports, second)
        outcome["publish_s"] = round(time.monotonic() - started, 1)

    thread = threading.Thread(target=publish_later)
    thread.start()
    result = _wrk(wrk, server.port, paths["key lookups"], length, workdir)
    thread.join()
    result["published_s"] = outcome.get("publish_s")
    # The server follows within a second (PostgreSQL: the cached manifest's lifetime;
    # files: the new vintage is verified and indexed in the background).
    deadline = time.monotonic() + 60
    while server.vintage() != second and time.monotonic() < deadline:
        time.sleep(0.2)
    result["vintage_after"] = server.vintage()
    result["switched"] = result["vintage_after"] == second
    return result


def format_report(report: dict) -> str:
    lines = [
        f"API bench: vintage {report['vintage']} "
        f"(local_diagnosis {report['rows'].get('local_diagnosis')} rows), {report['cores']} cores, "
        f"load average {report['load_average']:.1f} at start; wrk 1 thread, "
        f"{report['connections']} connections, {report['duration_s']} s per run",
        f"PostgreSQL publish of the vintage: {report['publish_s']} s "
        f"(local_diagnosis {report['publish_local_diagnosis_s']} s); CPU time: "
        + ", ".join(f"{k} {v} s" for k, v in report["publish_cpu_s"].items()),
        "",
        f"{'back end':<10} {'run':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}",
    ]
    verdicts = []
    for backend, results in report["backends"].items():
        for name, r in results.items():
            lines.append(
                f"{backend:<10} {name:<36} {r['rps']:>8.0f} {r['p50_ms'] or 0:>8.2f} "
                f"{r['p99_ms'] or 0:>8.2f} {r['failed']:>7}"
            )
        floor = results["floor (/ping)"]["rps"]
        keys = results["key lookups"]
        share = keys["rps"] / floor if floor else 0
        mid = results["key lookups, new vintage mid-load"]
        verdicts.append(
            f"{backend}: key lookups at {share:.0%} of the floor (target >= "
            f"{TARGET_SHARE_OF_FLOOR:.0%}), p99 {keys['p99_ms']:.1f} ms (target <= "
            f"{TARGET_P99_MS:.0f} ms); mid-load publication: {mid['failed']} failed, "
            f"switched to the new vintage: {mid['switched']} (publish {mid['published_s']} s)"
        )
    return "\n".join(lines + [""] + verdicts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.api.bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=DURATION_S, help="seconds per run")
    parser.add_argument("--exports", type=Path, help="exports directory (default: the settings')")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = run_bench(args.duration, args.exports)
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
