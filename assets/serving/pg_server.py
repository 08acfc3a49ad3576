"""A throw-away PostgreSQL server for the tests and the API bench: Debian's server binaries,
a cluster in a temp dir, 127.0.0.1 on a free port, durability off, stopped by its pid.

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user
(created by Debian's package) and the commands run through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

APT_PACKAGE = "postgresql"


class ServerUnavailableError(RuntimeError):
    """The server binaries are missing and cannot be installed here."""


def server_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def ensure_server_binaries() -> Path:
    """The binaries' directory, installing Debian's package first when they are missing."""
    bin_dir = server_bin_dir()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServerUnavailableError(
            "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin/initdb) and "
            "cannot be installed here (needs root and apt-get): apt-get install postgresql"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", APT_PACKAGE]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerUnavailableError(f"apt-get install {APT_PACKAGE} failed: {result.stderr}")
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise ServerUnavailableError(f"{APT_PACKAGE} installed but no initdb found")
    return bin_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    base: Path
    port: int
    bin_dir: Path
    as_user: list[str]

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def stop(self) -> None:
        pid_file = self.base / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None:
            try:
                os.kill(pid, 2)  # SIGINT: fast shutdown
                for _ in range(200):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


def start_server() -> PgServer:
    """initdb + pg_ctl start in a new temp dir (about a second)."""
    bin_dir = ensure_server_binaries()
    base = Path(tempfile.mkdtemp(prefix="tremplin-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
    )
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(base / "data"), "-A", "trust"]
            + ["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l"]
            + [str(base / "log"), "-w", "-o", options, "start"],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text(errors="replace") if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise ServerUnavailableError(
            f"cannot start PostgreSQL: {exc.stderr.decode(errors='replace')}{log}"
        ) from None
    return PgServer(base=base, port=port, bin_dir=bin_dir, as_user=as_user)


if __name__ == "__main__":  # `make test`: install the server binaries when missing
    try:
        print(f"PostgreSQL server binaries: {ensure_server_binaries()}")
    except ServerUnavailableError as exc:
        print(f"PostgreSQL tests will be skipped: {exc}")
