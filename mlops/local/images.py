"""Build and run the model image with the container engine this machine has: Docker, or podman.

Which engine, and which base image, is decided here and nowhere else (`choose_engine`):
- Docker when its daemon answers (GitHub's runners, most laptops): the Dockerfile's own BASE_IMAGE default.
- podman otherwise: the Dockerfile's default base when its registry answers, else a local Debian base made
  with debootstrap (`ensure_base_image`), for machines that reach package registries only.
`MLOPS_IMAGE_ENGINE=docker|podman` overrides the choice. Everything that spells an engine command line lives
in this module, so the tests, the benchmarks and the local runtime run the image the same way.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlmodel.contract import DEFAULT_BASE_DIR, PORT_ENV

from mlops import pipconfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER_DIR = REPO_ROOT / "container"
LOCAL_BASE_IMAGE = "localhost/debian-python:bookworm"
MODEL_IMAGE = "localhost/sagemaker-sfn-mlops-model"
ENGINE_ENV = "MLOPS_IMAGE_ENGINE"
DEBIAN_SUITE = "bookworm"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# podman here: cgroup v1 and no systemd session, so crun and the systemd cgroup manager do not work.
PODMAN_GLOBAL_ARGS = ("--runtime", "runc", "--cgroup-manager=cgroupfs")
# The engines' default limits are the host's, which are huge; gunicorn and numpy need few.
RUN_LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
# pip settings that also make sense inside the build; file:// indexes do not exist there.
PIP_SETTINGS = ("index-url", "extra-index-url", "trusted-host", "cert")
# A registry that answers at all answers a pull within this; an unreachable one fails in milliseconds.
PULL_TIMEOUT_SECONDS = 300

Log = Callable[[str], None]


class ImageError(RuntimeError):
    pass


def dockerfile_base_image(dockerfile: Path = CONTAINER_DIR / "Dockerfile") -> str:
    """The BASE_IMAGE the Dockerfile defaults to: what the release workflow builds on."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise ImageError(f"{dockerfile} declares no ARG BASE_IMAGE default")


@dataclass(frozen=True)
class Engine:
    name: str  # "docker" or "podman"
    executable: str
    base_image: str
    reason: str  # why this engine and base were taken, for the person reading the output

    def argv(self, *args: str) -> list[str]:
        """The argv of an engine command, with the global options this machine needs."""
        return [self.executable, *(PODMAN_GLOBAL_ARGS if self.name == "podman" else ()), *args]

    def describe(self) -> str:
        return f"{self.name}, base {self.base_image} ({self.reason})"


def _docker_daemon_answers(docker: str) -> bool:
    try:
        return (
            subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=20,
                check=False,
            ).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        return False


def _podman_pulls(podman: str, image: str) -> bool:
    argv = [podman, *PODMAN_GLOBAL_ARGS, "pull", "--quiet", image]
    try:
        return (
            subprocess.run(argv, capture_output=True, timeout=PULL_TIMEOUT_SECONDS, check=False).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        return False


def choose_engine(
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    docker_answers: Callable[[str], bool] = _docker_daemon_answers,
    podman_pulls: Callable[[str, str], bool] = _podman_pulls,
) -> Engine:
    """The engine and base image to build and run the model image with, given what this machine has."""
    environ = os.environ if environ is None else environ
    wanted = environ.get(ENGINE_ENV, "")
    if wanted not in ("", "docker", "podman"):
        raise ImageError(f"{ENGINE_ENV}={wanted!r}: must be docker or podman")
    default_base = dockerfile_base_image()
    docker, podman = which("docker"), which("podman")
    if wanted != "podman" and docker and docker_answers(docker):
        why = f"{ENGINE_ENV}=docker" if wanted else "its daemon answers"
        return Engine("docker", docker, default_base, f"{why}; the Dockerfile's default base")
    if wanted == "docker":
        raise ImageError(
            f"{ENGINE_ENV}=docker but "
            + ("the Docker daemon does not answer" if docker else "docker is not installed")
        )
    if podman is None:
        raise ImageError(
            "neither a running Docker nor podman is available: start Docker, or run scripts/test, which installs "
            "podman where apt exists"
        )
    why = f"{ENGINE_ENV}=podman" if wanted else ("no Docker daemon" if docker else "no Docker")
    if podman_pulls(podman, default_base):
        return Engine("podman", podman, default_base, f"{why}; the Dockerfile's default base was pulled")
    return Engine(
        "podman", podman, LOCAL_BASE_IMAGE, f"{why}; {default_base} cannot be pulled, so a local Debian base"
    )


@functools.cache
def engine() -> Engine:
    """This machine's engine, chosen once per process."""
    return choose_engine()


def _run(what: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, check=True, **kwargs)
    except subprocess.CalledProcessError as error:
        raise ImageError(f"{what} failed with exit code {error.returncode} (its output is above)") from error


def image_exists(tag: str) -> bool:
    argv = engine().argv("image", "inspect", "--format", "{{.Id}}", tag)
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def image_size_bytes(tag: str) -> int:
    out = _run(
        f"{engine().name} image inspect",
        engine().argv("image", "inspect", "--format", "{{.Size}}", tag),
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive this host's apt uses (deb822 `.sources` or one-line `.list` files)."""
    files = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in files:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            suites = fields.get("Suites", "").split()
            if DEBIAN_SUITE in suites:
                return fields["URIs"].split()[0].strip()
    lists = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == DEBIAN_SUITE:
                return words[1]
    return DEFAULT_DEBIAN_MIRROR


@contextlib.contextmanager
def _exclusive(name: str) -> Iterator[None]:
    # Two test sessions (or a test and a rehearsal) must not debootstrap the same base at once.
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_base_image(tag: str = LOCAL_BASE_IMAGE, *, log: Log = print) -> bool:
    """Create the local Debian + Python 3.11 base image (podman) unless it exists. True if it was built."""
    if engine().name != "podman":
        raise ImageError(
            f"the local Debian base is made for podman; this machine builds with {engine().name}"
        )
    if image_exists(tag):
        return False
    with _exclusive("debian-python-base"):
        if image_exists(tag):
            return False
        if shutil.which("debootstrap") is None:
            raise ImageError("debootstrap is not installed: run scripts/test, which installs it")
        mirror = debian_mirror()
        log(f"building base image {tag} with debootstrap from {mirror}")
        # /var/tmp, not /tmp: debootstrap needs a filesystem without noexec/nodev.
        with tempfile.TemporaryDirectory(prefix="debian-rootfs-", dir="/var/tmp") as rootfs:
            try:
                _debootstrap(rootfs, mirror, log)
            except ImageError as error:
                # Mirrors drop connections now and then; a second run reuses the packages already fetched.
                log(f"{str(error).splitlines()[0].rstrip(':')}; trying once more")
                _debootstrap(rootfs, mirror, log)
            root = Path(rootfs)
            # The temporary folder is 0700, and its mode becomes the image's "/": with podman's vfs storage
            # (podman inside a container) no user but root could then read anything in the image.
            root.chmod(0o755)
            # TLS to the package index may be re-signed by this host's CA: the build must trust it.
            shutil.copyfile(HOST_CA_BUNDLE, root / HOST_CA_BUNDLE.relative_to("/"))
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (root / cache).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
            try:
                _run(
                    "podman import",
                    engine().argv(
                        "import", "--quiet", *(f"--change={change}" for change in BASE_ENV), "-", tag
                    ),
                    stdin=tar.stdout,
                    stdout=subprocess.DEVNULL,
                )
            finally:
                assert tar.stdout is not None
                tar.stdout.close()
                if tar.wait() != 0:
                    raise ImageError(f"tar of the {tag} root filesystem failed")
        log(f"base image {tag} ready")
        return True


# An imported root filesystem has no environment: without PATH, a Dockerfile's `ENV PATH=...:${PATH}` would
# drop /usr/bin.
BASE_ENV = ("ENV LANG=C.UTF-8", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
# A stalled download fails and is retried instead of hanging for wget's default 15 minutes.
WGET_LIMITS = "connect_timeout = 30\nread_timeout = 60\ntries = 3\n"
# One line per package is too much to show; these lines say which stage debootstrap is in.
_PER_PACKAGE = re.compile(
    r"I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (?!required |the )[a-z0-9]"
)


def _debootstrap(rootfs: str, mirror: str, log: Log) -> None:
    """A minimal Debian with Python 3.11 in `rootfs`, logging its stages and how many packages it fetched."""
    with tempfile.NamedTemporaryFile("w", prefix="wgetrc-", suffix=".conf") as wgetrc:
        wgetrc.write(WGET_LIMITS)
        wgetrc.flush()
        argv = [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv",
            f"--keyring={DEBIAN_KEYRING}",  # fail, not warn, if the archive's signature cannot be checked
            DEBIAN_SUITE,
            rootfs,
            mirror,
        ]
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "WGETRC": wgetrc.name},
        )
        assert process.stdout is not None
        fetched, tail = 0, collections.deque(maxlen=20)
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            if line.startswith("I: Retrieving ") and _PER_PACKAGE.match(line):
                fetched += 1
                if fetched % 25 == 0:
                    log(f"debootstrap: {fetched} packages fetched")
            elif line.startswith(("I: ", "W: ", "E: ")) and not _PER_PACKAGE.match(line):
                log(f"debootstrap: {line[3:]}")
        if process.wait() != 0:
            detail = "\n".join(tail)
            raise ImageError(
                f"debootstrap from {mirror} failed with exit code {process.returncode}:\n{detail}"
            )


def pip_build_args(settings: Mapping[str, str] | None = None) -> list[str]:
    """`--build-arg PIP_...` for the host's pip index settings (pip.conf and PIP_*, or `settings`) that
    also work inside the build.

    Every setting the Dockerfile declares is passed, empty when the host has none that works there: pip
    ignores empty settings, and the engines warn about a declared build argument that is not given."""
    if settings is None:
        settings = pipconfig.effective_settings(pipconfig.read_pip_config())
    args: list[str] = []
    for name in PIP_SETTINGS:
        value = settings.get(name, "")
        if name.endswith("index-url"):
            value = " ".join(url for url in value.split() if url.startswith(("http://", "https://")))
        if name == "cert" and value and Path(value) != HOST_CA_BUNDLE:
            value = ""  # only the system CA bundle is present at the same path inside the image
        args += ["--build-arg", f"PIP_{name.upper().replace('-', '_')}={value}"]
    return args


def build_image(
    tag: str = f"{MODEL_IMAGE}:latest",
    *,
    base_image: str | None = None,
    context: Path = CONTAINER_DIR,
    no_cache: bool = False,
    quiet: bool = False,
    log: Log = print,
) -> str:
    """Build the model image from `container/` (on the chosen engine's base unless `base_image` is given)
    and return its image id. The engine's steps go to stderr (nowhere if `quiet`; its errors still reach
    stderr): stdout is left to the caller's results."""
    chosen = engine()
    base_image = base_image or chosen.base_image
    if base_image == LOCAL_BASE_IMAGE:
        ensure_base_image(base_image, log=log)
    log(f"building {tag} from {context} with {chosen.name} on {base_image}")
    with tempfile.TemporaryDirectory() as tmp:
        iidfile = Path(tmp) / "iid"
        _run(
            f"{chosen.name} build of {tag}",
            chosen.argv(
                "build",
                # podman's build network here is the host's; Docker's default bridge reaches the index, and
                # BuildKit wants an entitlement for host networking on some drivers.
                *(["--network=host"] if chosen.name == "podman" else []),
                "--build-arg",
                f"BASE_IMAGE={base_image}",
                *pip_build_args(),
                *(["--no-cache"] if no_cache else []),
                "--iidfile",
                str(iidfile),
                "-t",
                tag,
                str(context),
            ),
            stdout=subprocess.DEVNULL if quiet else sys.stderr.fileno(),
        )
        return iidfile.read_text().strip()


def run_args(
    image: str,
    program: str,
    *,
    base_dir: str | Path | None = None,
    mounts: Mapping[str, str] | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> list[str]:
    """The argv that runs `train` or `serve` in the image, as SageMaker does: `docker run IMAGE serve`.

    `base_dir` is mounted as /opt/ml (the same as `mounts={base_dir: "/opt/ml"}`), as it is: SageMaker
    mounts its own root-owned directories and does not hand them to the image's user. Host networking:
    serve listens on `port` of this machine.
    """
    volumes = dict(mounts or {})
    if base_dir is not None:
        volumes[str(base_dir)] = DEFAULT_BASE_DIR
    args = ["run", "--rm", "--network=host", *RUN_LIMITS]
    if name:
        args += ["--name", name]
    for source, target in volumes.items():
        args += ["--volume", f"{Path(source).resolve()}:{target}"]
    if port is not None:
        args += ["--env", f"{PORT_ENV}={port}"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    return engine().argv(*args, image, program)
