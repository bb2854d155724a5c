"""Unpacking model archives safely on every Python 3.11, as SageMaker unpacks ``model.tar.gz``.

``tarfile``'s ``filter="data"`` arrived in Python 3.11.4 (Debian 12 ships 3.11.2). Where it is missing the
same rules are applied by hand: no absolute or ``..`` paths, no links pointing outside the destination or
anywhere absolute, no devices or FIFOs, no set-id or other special permission bits.
"""

from __future__ import annotations

import copy
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path


class UnsafeArchiveError(tarfile.TarError):
    """A member that would land outside the destination or is not plain data."""


def extract_all(tar: tarfile.TarFile, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:
        tar.extractall(dest, members=checked_members(tar, dest))  # noqa: S202 (each member is checked)


def checked_members(tar: tarfile.TarFile, dest: Path) -> Iterator[tarfile.TarInfo]:
    """The archive's members with the "data" filter's checks applied, or UnsafeArchiveError naming one.

    A generator: extractall takes one member at a time, so each is checked against what the members before
    it created (a link extracted earlier cannot smuggle a later path outside)."""
    root = Path(os.path.realpath(dest))
    for member in tar.getmembers():
        name = member.name.lstrip("/")  # as the data filter does: "/etc/x" lands in dest/etc/x
        if os.path.isabs(name):
            raise UnsafeArchiveError(f"{member.name!r} is an absolute path")
        target = Path(os.path.realpath(root / name))
        if not _inside(target, root):
            raise UnsafeArchiveError(f"{name!r} would be extracted outside {dest}")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise UnsafeArchiveError(f"{name!r} is a special file (device or FIFO)")
        if member.issym() or member.islnk():
            _check_link(member, root, target)
        yield _plain(member, name)


def _check_link(member: tarfile.TarInfo, root: Path, target: Path) -> None:
    if os.path.isabs(member.linkname):
        raise UnsafeArchiveError(f"{member.name!r} links to the absolute path {member.linkname!r}")
    base = target.parent if member.issym() else root
    pointed = Path(os.path.realpath(base / member.linkname))
    if not _inside(pointed, root):
        raise UnsafeArchiveError(f"{member.name!r} links outside the destination ({member.linkname!r})")


def _plain(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    # As the data filter does: no set-id/sticky bits, no group/other write, the owner may read and write,
    # and the files belong to whoever extracts them (TarInfo.replace is 3.11.4+ too, hence the copy).
    plain = copy.copy(member)
    plain.name = name
    plain.uid, plain.gid, plain.uname, plain.gname = os.geteuid(), os.getegid(), "", ""
    plain.mode = member.mode & 0o755 | stat.S_IRUSR | stat.S_IWUSR
    if member.isdir():
        plain.mode |= stat.S_IXUSR
    return plain


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
