"""The deploy targets, reproduced without Docker or GCP: what each vendor image preinstalls, and
the lock of that image with the target's install file on top.

For each target, ``deploy/targets/<name>/``:

- ``preinstalled.in``: the image's packages as the vendor publishes them (verbatim pins, with
  source and date in its header) plus the requirements that stand for the rest of the image
  (resolved as PyPI stood on the image's release date);
- ``preinstalled.txt``: that resolution (``make target-locks``);
- ``lock.txt``: ``preinstalled.txt`` and the install file resolved together, every preinstalled
  pin held exactly except the few a target lets the install file upgrade (never downgrade),
  new packages as PyPI stood on ``LOCKED_ON``. ``make target-venv TARGET=<name>`` installs it.

``python -m sfpd_dev.targets lock [name...]`` rewrites the files (``make target-locks``);
``check`` resolves them again and fails on any difference (tests/targets does the same)."""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TARGETS_DIR = PROJECT_ROOT / "deploy" / "targets"
UV = Path(sys.executable).with_name("uv")
# Packages the install files add: as PyPI stood that day. A date some days back: the registry
# this resolves against can show a package late (babel 2.19.0, uploaded 2026-11-24, appeared
# here on 2026-11-26 and moved the lock of 2026-11-25), so a recent date is not yet settled.
LOCKED_ON = "2026-11-20"
AIRFLOW = ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk")
# Composer's dbt: the virtualenv Cosmos builds on a worker from include/dbt/requirements.txt
# (Python 3.11), resolved as PyPI stood on LOCKED_ON; `make target-venvs` builds it from this
# file for tests/targets, so no test installs from the index.
DBT_VIRTUALENV_LOCK = TARGETS_DIR / "dbt-virtualenv.txt"


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    python: str  # the image's Python (major.minor)
    released: str  # the image's release date: its unpinned packages as PyPI stood then
    install_file: str  # relative to the project root
    # preinstalled packages (fnmatch patterns) the install file may upgrade (pip does at image
    # build, where needed); any other preinstalled pin, and Airflow itself always, is held exactly
    upgrades: tuple[str, ...] = ()

    def may_upgrade(self, name: str) -> bool:
        return name not in AIRFLOW and any(fnmatch.fnmatch(name, p) for p in self.upgrades)

    @property
    def folder(self) -> Path:
        return TARGETS_DIR / self.name


TARGETS = {
    t.name: t
    for t in (
        # An Astro image build pip-installs requirements.txt over the image: it upgrades what a
        # pin needs (3.1-1: the common providers for the Google provider, sqlparse for dbt).
        Target("astro-3.1", "Astro Runtime 3.1-1 (Airflow 3.1.0)", "3.12", "2025-10-15",
               "requirements.txt", upgrades=("*",)),
        Target("composer-3.1", "Composer 3 composer-3-airflow-3.1.7-build.0", "3.11",
               "2026-03-03", "requirements-composer.txt"),
        Target("composer-3.3", "Composer 3 composer-3-airflow-3.3.1-build.0", "3.11",
               "2026-08-26", "requirements-composer.txt"),
    )
}  # fmt: skip


def pins(text: str) -> dict[str, str]:
    """{normalised name: version} of the ``name==version`` lines of a requirements text."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\[\],-]+)==([^\s;#]+)", line.strip())
        if match:
            name = re.sub(r"\[.*\]", "", match[1])
            found[re.sub(r"[-_.]+", "-", name).lower()] = match[2]
    return found


def compile_(inputs: list[Path], python: str, exclude_newer: str, constraints: Path | None = None,
             ) -> str:  # fmt: skip
    """``uv pip compile``; with ``constraints``, the lowest version of each input (the image's
    own, or the install file's pin) and the newest of what they pull in: pip's behaviour when it
    installs a pinned file into an image (it upgrades an installed package only if needed)."""
    command = [str(UV), "pip", "compile", "--quiet", "--no-header", "--no-annotate",
               "--python-version", python, "--python-platform", "x86_64-manylinux_2_28",
               "--exclude-newer", exclude_newer, *map(str, inputs)]  # fmt: skip
    if constraints:
        command += ["--constraints", str(constraints), "--resolution", "lowest-direct"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}\n{done.stderr}")
    return done.stdout


def resolve(target: Target) -> tuple[str, str]:
    """(preinstalled.txt, lock.txt) of ``target``, resolved now."""
    preinstalled = compile_([target.folder / "preinstalled.in"], target.python, target.released)
    image = pins(preinstalled)
    with tempfile.TemporaryDirectory() as tmp:
        requirements, held = Path(tmp) / "preinstalled.txt", Path(tmp) / "held.txt"
        requirements.write_text("".join(f"{name}\n" for name in image))  # versions: held
        held.write_text("".join(
            f"{name}{'>=' if target.may_upgrade(name) else '=='}{version}\n"
            for name, version in image.items()
        ))  # fmt: skip
        lock = compile_(
            [requirements, PROJECT_ROOT / target.install_file], target.python, LOCKED_ON,
            constraints=held,
        )  # fmt: skip
    return preinstalled, lock


def moved(target: Target, preinstalled: str, lock: str) -> dict[str, tuple[str, str]]:
    """Preinstalled packages the lock moves against the target's rules: any downgrade or
    removal, and any upgrade the target does not allow. {name: (image, lock)}."""
    image, locked = pins(preinstalled), pins(lock)
    return {
        name: (version, locked.get(name, "absent"))
        for name, version in image.items()
        if locked.get(name) != version
        and not (target.may_upgrade(name) and name in locked
                 and Version(locked[name]) > Version(version))
    }  # fmt: skip


def upgraded(preinstalled: str, lock: str) -> dict[str, tuple[str, str]]:
    image, locked = pins(preinstalled), pins(lock)
    return {n: (v, locked[n]) for n, v in image.items() if n in locked and locked[n] != v}


def docker_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule for ``path`` (relative to the context root): patterns are
    Go's filepath.Match from the root (``**`` for any number of directories); each pattern that
    matches the path or one of its parent directories decides, the last one wins, and ``!``
    re-includes (moby/patternmatcher's MatchesOrParentMatches)."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        return re.fullmatch(regex.replace(r"\?", "[^/]"), candidate) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        if any(matches(pattern.lstrip("!"), prefix) for prefix in prefixes):
            excluded = not pattern.startswith("!")
    return excluded


def dockerignore(root: Path = PROJECT_ROOT) -> list[str]:
    """The patterns of ``root``'s .dockerignore, in order."""
    lines = (root / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def image_files(root: Path = PROJECT_ROOT) -> list[str]:
    """The files (and symlinks) of ``root`` that a ``docker build`` (``astro deploy``) sends into
    the image."""
    patterns = dockerignore(root)
    reincluded = [p[1:].strip("/") for p in patterns if p.startswith("!")]
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        here = "" if here == "." else here
        links = [d for d in dirs if (Path(folder) / d).is_symlink()]  # sent as links
        dirs[:] = [
            d for d in dirs
            if d not in links and (not docker_excludes(f"{here}/{d}".lstrip("/"), patterns)
                                   or any(p.startswith(f"{here}/{d}/".lstrip("/"))
                                          for p in reincluded))
        ]  # fmt: skip
        found += [
            path for path in (f"{here}/{name}".lstrip("/") for name in files + links)
            if not docker_excludes(path, patterns)
        ]  # fmt: skip
    return sorted(found)


def copy_image_files(destination: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """:func:`image_files` copied under ``destination`` (symlinks as symlinks); their names."""
    names = image_files(root)
    for name in names:
        source, target = root / name, destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return names


def dockerfile_runs(root: Path = PROJECT_ROOT) -> list[str]:
    """The shell commands of the Dockerfile's RUN lines, in order (one line each)."""
    lines = (root / "Dockerfile").read_text().splitlines()
    return [line.removeprefix("RUN ").strip() for line in lines if line.startswith("RUN ")]


def interpreter(version: str) -> str:
    """A CPython ``version`` (major.minor) on this machine: pyenv's (these machines have 3.10 to
    3.13), else whatever uv finds."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    if found:
        return str(found[-1])
    done = subprocess.run([str(UV), "python", "find", version], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"no Python {version} here (pyenv install {version}): {done.stderr}")
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["lock", "check", "python"])
    parser.add_argument("targets", nargs="*", default=sorted(TARGETS))
    args = parser.parse_args(argv)
    if args.action == "python":  # the interpreter of one target's venv (make target-venv)
        print(interpreter(TARGETS[args.targets[0]].python))
        return 0
    failed = False
    for name in args.targets:
        target = TARGETS[name]
        preinstalled, lock = resolve(target)
        changed = moved(target, preinstalled, lock)
        if changed:
            print(f"{name}: the install file moves preinstalled packages: {changed}")
            failed = True
        files = {"preinstalled.txt": preinstalled, "lock.txt": lock}
        for filename, text in files.items():
            path = target.folder / filename
            if args.action == "lock":
                path.write_text(text)
            elif not path.exists() or path.read_text() != text:
                print(f"{name}: {path.relative_to(PROJECT_ROOT)} differs from a fresh resolution")
                failed = True
        added = len(pins(lock)) - len(pins(preinstalled))
        print(f"{name} ({target.title}): {len(pins(lock))} packages, {added} added by "
              f"{target.install_file}, upgraded {upgraded(preinstalled, lock)}")  # fmt: skip
    dbt = compile_([PROJECT_ROOT / "include" / "dbt" / "requirements.txt"], "3.11", LOCKED_ON)
    if args.action == "lock":
        DBT_VIRTUALENV_LOCK.write_text(dbt)
    elif DBT_VIRTUALENV_LOCK.read_text() != dbt:
        print(f"{DBT_VIRTUALENV_LOCK.relative_to(PROJECT_ROOT)} differs from a fresh resolution")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
