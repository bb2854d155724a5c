"""``python -m venv`` and ``python -m pip install .[extra]`` as the local workflow runner answers them.

The release workflow's "Install the mlops command" step makes a venv and pip-installs this project into it.
The rehearsal installs nothing (it must work offline and in seconds), so the ``python`` the local
setup-python puts on PATH sends those two commands here, and runs every other command with this interpreter:

- ``venv DIR`` makes ``DIR/bin/python`` (the same shim) and ``DIR/pyvenv.cfg``; no new environment.
- ``pip install [-q] [--disable-pip-version-check] [-U] [-e] .[extras]`` checks what pip would need instead of
  fetching it: the requirements of the project and of the named extras must already be installed in this
  interpreter at versions that satisfy them (else the step fails naming each), and this interpreter's
  ``mlops`` must be this checkout's; then it writes the project's console scripts (``[project.scripts]``)
  into the venv's ``bin``, pointing at this interpreter (through mlops.local.command_server's warm
  interpreter when the rehearsal started one). Anything else fails, naming what is not served.

    python -m mlops.local.pyshim SHIM venv DIR
    python -m mlops.local.pyshim SHIM pip install ...
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import sys
import tomllib
from pathlib import Path

PIP_FLAGS = {
    "-q",
    "--quiet",
    "--disable-pip-version-check",
    "-U",
    "--upgrade",
    "--no-input",
    "-e",
    "--editable",
}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*(.*?)\s*(?:;.*)?$")


class NotServed(Exception):
    pass


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def make_venv(shim: Path, args: list[str]) -> None:
    folders = [a for a in args if not a.startswith("-")]
    if len(folders) != 1 or any(a.startswith("-") for a in args):
        raise NotServed(f"venv {' '.join(args)}: the local runner serves `python -m venv DIR` only")
    folder = Path(folders[0])
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shutil.copy2(shim, folder / "bin" / name)
    (folder / "pyvenv.cfg").write_text(
        f"home = {Path(sys.executable).parent}\n"
        "# made by the rehearsal's local runner (mlops.local.pyshim): the interpreter is the rehearsal's own\n"
    )


def _satisfied(name: str, specifier: str) -> str | None:
    """None when the installed distribution satisfies the specifier, else what is wrong."""
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return f"{name}{specifier} is not installed"
    if not specifier:
        return None
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # without packaging only exact pins can be checked, and they are what pyproject uses
        pinned = specifier.removeprefix("==")
        ok = specifier.startswith("==") and installed == pinned
    else:
        ok = SpecifierSet(specifier).contains(installed, prereleases=True)
    return None if ok else f"{name}{specifier} is wanted, {installed} is installed"


def missing_requirements(project: dict, extras: set[str]) -> list[str]:
    """What ``pip install .[extras]`` would have to fetch, given this interpreter's packages."""
    name = _canonical(project["name"])
    optional = project.get("optional-dependencies") or {}
    problems, seen, wanted = [], set(), [set(extras)]
    while wanted:
        needed = wanted.pop()
        requirements = list(project.get("dependencies") or [])
        for extra in sorted(needed - seen):
            seen.add(extra)
            if extra not in optional:
                print(f"WARNING: {project['name']} does not provide the extra '{extra}'", file=sys.stderr)
                continue
            requirements += optional[extra]
        for requirement in requirements:
            match = _REQUIREMENT.match(requirement)
            if not match:
                problems.append(f"cannot read the requirement {requirement!r}")
                continue
            required, its_extras, specifier = match.groups()
            if _canonical(required) == name:
                wanted.append({e.strip() for e in (its_extras or "").split(",") if e.strip()})
                continue
            problem = _satisfied(required, specifier.replace(" ", ""))
            if problem:
                problems.append(problem)
    return sorted(set(problems))


def pip_install(shim: Path, args: list[str]) -> None:
    if not args or args[0] != "install":
        raise NotServed(f"pip {' '.join(args)}: the local runner serves `pip install` of this project only")
    specs = [a for a in args[1:] if a not in PIP_FLAGS]
    project_root = Path.cwd()
    extras: set[str] = set()
    for spec in specs:
        match = re.fullmatch(r"(.+?)(?:\[([^\]]*)\])?", spec)
        if not match or Path(match.group(1)).resolve() != project_root.resolve():
            raise NotServed(
                f"pip install {spec}: the local runner installs nothing; it serves this project's own "
                f"directory ({project_root}) only"
            )
        extras |= {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    if not specs:
        raise NotServed("pip install without a requirement")
    project = tomllib.loads((project_root / "pyproject.toml").read_text())["project"]
    problems = missing_requirements(project, extras)
    if problems:
        raise NotServed(
            f"pip install {' '.join(specs)} would need what this interpreter ({sys.executable}) lacks, and the "
            "rehearsal downloads nothing:\n  " + "\n  ".join(problems)
        )
    spec = importlib.util.find_spec("mlops")
    origin = Path(spec.origin).resolve().parent.parent if spec and spec.origin else None
    if origin != project_root.resolve():
        raise NotServed(f"this interpreter's mlops package is from {origin}, not from {project_root}")
    from .command_server import client_script

    bin_dir = shim.parent
    for script, target in (project.get("scripts") or {}).items():
        path = bin_dir / script
        path.write_text(client_script(script, target))
        path.chmod(0o755)
    if not ({"-q", "--quiet"} & set(args)):
        print(f"Successfully installed {project['name']}-{project.get('version', '0')} (served locally)")


def main(argv: list[str]) -> int:
    shim, command, *rest = argv
    try:
        if command == "venv":
            make_venv(Path(shim), rest)
        elif command == "pip":
            pip_install(Path(shim), rest)
        else:
            raise NotServed(f"-m {command}")
    except NotServed as error:
        print(
            f"ERROR: {error} (mlops.local.pyshim: the rehearsal's stand-in for venv and pip)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
