"""Stand-ins for the base images the Dockerfiles and docker-compose.yml pull, built here
because no public registry can be reached from the test machine.

- ``python``: Debian's ``python3.11`` on ``debootstrap --variant=minbase``, with ``passwd``
  (``groupadd``/``useradd``) and ``ca-certificates``, linked at ``/usr/local/bin`` where the
  official ``python:3.11-slim-bookworm`` image has its interpreter;
- ``uv``: the ``uv`` and ``uvx`` binaries of the pinned uv wheel at ``/``, as in
  ``ghcr.io/astral-sh/uv``;
- ``redis``: Debian's ``redis-server`` with ``WORKDIR /data``, run as user ``redis``.

Root filesystems are cached as tarballs under ``~/.cache/jobcore-images``, named by suite
and a digest of the package list and of how they are finished, and imported into each
fresh engine. When the machine reaches PyPI through a TLS-inspecting proxy, the host's CA
bundle is added to the ``python`` stand-in at build time (never to a tarball or the
repository) so that ``uv sync`` inside a build trusts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from containers.engine import DockerEngine
from containers.mounts import remove_tree

#: Debian release of every stand-in (the official images are ``-bookworm``).
SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: Part of every cache key: change it when the finishing steps below change.
RECIPE_VERSION = 1
#: Dropped from every root filesystem, as the official slim images drop them.
TRIMMED = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/log",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)
#: Left out of the tarball: the engine provides them in every container.
NOT_ARCHIVED = ("./dev/*", "./proc/*", "./sys/*")
#: Seconds one debootstrap may take (a cold one takes well under a minute here).
DEBOOTSTRAP_TIMEOUT = 600
#: The CA bundle of the host, which trusts the proxy in front of PyPI where there is one.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jobcore-images"


@dataclass(frozen=True)
class RootFilesystem:
    """A minbase Debian root filesystem with ``packages``, finished and cached as a tarball."""

    name: str
    packages: tuple[str, ...]
    #: (path inside, target) symbolic links to add.
    links: tuple[tuple[str, str], ...] = ()
    #: (path inside, user) directories to create, owned by a user the packages made.
    owned_dirs: tuple[tuple[str, str], ...] = ()
    suite: str = SUITE

    @property
    def cache_key(self) -> str:
        recipe = [RECIPE_VERSION, self.suite, sorted(self.packages), self.links, self.owned_dirs]
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.suite}-{self.name}-{digest}"

    def tarball(self, cache_dir: Path) -> Path:
        """The cached tarball, made first if it is missing."""
        path = cache_dir / f"{self.cache_key}.tar"
        if not path.exists():
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._make(path)
        return path

    def _make(self, tarball: Path) -> None:
        target = Path(tempfile.mkdtemp(prefix=f"{self.cache_key}.", dir=tarball.parent))
        log = tarball.with_suffix(".log")
        try:
            with log.open("wb") as out:
                subprocess.run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(self.packages)}",
                        self.suite,
                        str(target),
                        DEBIAN_MIRROR,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=DEBOOTSTRAP_TIMEOUT,
                    check=True,
                )
            self._finish(target)
            partial = tarball.with_suffix(".partial")
            subprocess.run(
                [
                    "tar",
                    "--create",
                    "--numeric-owner",
                    f"--file={partial}",
                    f"--directory={target}",
                    *(f"--exclude={pattern}" for pattern in NOT_ARCHIVED),
                    ".",
                ],
                check=True,
            )
            partial.rename(tarball)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{self.name} root filesystem: {exc}; see {log}") from exc
        finally:
            remove_tree(target)

    def _finish(self, target: Path) -> None:
        # The temporary directory was made private; as / it must let every user through.
        target.chmod(0o755)
        for trimmed in TRIMMED:
            for entry in (target / trimmed).glob("*"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        for path, link_target in self.links:
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).symlink_to(link_target)
        for path, user in self.owned_dirs:
            uid, gid = _user_ids(target, user)
            (target / path).mkdir(parents=True, exist_ok=True)
            os.chown(target / path, uid, gid)


def _user_ids(target: Path, user: str) -> tuple[int, int]:
    """A user's uid and gid as the root filesystem's own ``/etc/passwd`` has them."""
    for line in (target / "etc" / "passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        if name == user:
            return int(uid), int(gid)
    raise RuntimeError(f"no user {user} in {target}/etc/passwd")


PYTHON_ROOTFS = RootFilesystem(
    "python",
    ("python3.11", "passwd", "ca-certificates"),
    links=(
        ("usr/local/bin/python3.11", "/usr/bin/python3.11"),
        ("usr/local/bin/python3", "python3.11"),
        ("usr/local/bin/python", "python3.11"),
    ),
)
REDIS_ROOTFS = RootFilesystem("redis", ("redis-server",), owned_dirs=(("data", "redis"),))


@dataclass(frozen=True)
class BaseImages:
    """Tags of the stand-ins in one engine."""

    python: str
    uv: str
    redis: str

    def build_args(self) -> dict[str, str]:
        """The Dockerfiles' base-image arguments pointing at the stand-ins."""
        return {"PYTHON_IMAGE": self.python, "UV_IMAGE": self.uv}


def uv_version(uv: Path) -> str:
    """``0.13.9`` for a binary answering ``uv 0.13.9 (...)``."""
    answer = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True)
    return answer.stdout.split()[1]


def build_base_images(
    engine: DockerEngine, uv_dir: Path, cache_dir: Path, workdir: Path
) -> BaseImages:
    """Import the cached root filesystems into ``engine`` (made first where missing) and
    build the three stand-ins. ``uv_dir`` holds ``uv`` and ``uvx`` of the pinned wheel."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        python_tar, redis_tar = pool.map(
            lambda rootfs: rootfs.tarball(cache_dir), (PYTHON_ROOTFS, REDIS_ROOTFS)
        )

    python_rootfs = f"jobcore-standin/python-rootfs:{PYTHON_ROOTFS.cache_key}"
    engine.docker(
        "import",
        f"--change=ENV PATH={STANDARD_PATH}",
        "--change=ENV LANG=C.UTF-8",
        '--change=CMD ["python3"]',
        str(python_tar),
        python_rootfs,
    )
    python = f"jobcore-standin/python:3.11-{SUITE}"
    context = workdir / "python-standin"
    context.mkdir(parents=True)
    lines = [f"FROM {python_rootfs}"]
    if HOST_CA_BUNDLE.exists():
        shutil.copy(HOST_CA_BUNDLE, context / "host-ca-bundle.crt")
        lines += [
            "COPY host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt",
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        ]
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    engine.docker("build", "--quiet", "--network=host", f"--tag={python}", str(context))

    uv = f"jobcore-standin/uv:{uv_version(uv_dir / 'uv')}"
    context = workdir / "uv-standin"
    context.mkdir()
    for binary in ("uv", "uvx"):
        shutil.copy(uv_dir / binary, context / binary)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY uv uvx /\n")
    engine.docker("build", "--quiet", f"--tag={uv}", str(context))

    redis = f"jobcore-standin/redis:{REDIS_ROOTFS.cache_key}"
    engine.docker(
        "import",
        f"--change=ENV PATH={STANDARD_PATH}",
        "--change=WORKDIR /data",
        "--change=USER redis",
        '--change=CMD ["redis-server"]',
        str(redis_tar),
        redis,
    )
    return BaseImages(python=python, uv=uv, redis=redis)
