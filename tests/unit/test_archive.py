"""Model archives unpack safely with tarfile's "data" filter (3.11.4+) and, where it is missing (Debian 12's
3.11.2), with the same checks made by hand: both paths accept the same archives and refuse the same ones."""

import io
import os
import stat
import tarfile

import pytest

from mlops.local import archive


@pytest.fixture(params=["data filter", "checks by hand"])
def extract(request, monkeypatch):
    if request.param == "checks by hand":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python (before 3.11.4) has no data filter: the checks by hand are what runs here")

    def run(members, dest):
        with tarfile.open(fileobj=tar_of(members)) as tar:
            archive.extract_all(tar, dest)

    return run


def tar_of(members) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def regular(name, data=b"x", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def test_a_model_archive_unpacks_with_its_files_and_folders(extract, tmp_path):
    folder = tarfile.TarInfo("assets")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    extract(
        [
            regular("model.joblib", b"model"),
            (folder, None),
            regular("assets/metadata.json", b"{}"),
            special("current", tarfile.SYMTYPE, "model.joblib"),
        ],
        tmp_path,
    )
    assert (tmp_path / "model.joblib").read_bytes() == b"model"
    assert (tmp_path / "assets" / "metadata.json").read_bytes() == b"{}"
    assert (tmp_path / "current").resolve() == (tmp_path / "model.joblib").resolve()


@pytest.mark.parametrize(
    "member",
    [
        regular("../evil"),
        regular("assets/../../evil"),
        special("up", tarfile.SYMTYPE, "../outside"),
        special("abs", tarfile.SYMTYPE, "/etc/passwd"),
        special("hard", tarfile.LNKTYPE, "../outside"),
        special("dev", tarfile.CHRTYPE),
        special("blk", tarfile.BLKTYPE),
        special("fifo", tarfile.FIFOTYPE),
    ],
    ids=lambda member: member[0].name,
)
def test_a_member_outside_the_destination_or_not_plain_data_is_refused(extract, tmp_path, member):
    dest = tmp_path / "model"
    dest.mkdir()
    with pytest.raises(tarfile.TarError):
        extract([member], dest)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "outside").exists()


def test_a_link_made_by_an_earlier_member_cannot_lead_a_later_one_outside(extract, tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    with pytest.raises(tarfile.TarError):
        extract(
            [
                special("here", tarfile.SYMTYPE, "."),
                # Inside if "here" were a folder; outside through the link the first member made.
                special("here/up", tarfile.SYMTYPE, ".."),
                regular("here/up/evil"),
            ],
            dest,
        )
    assert not (tmp_path / "evil").exists()


def test_an_absolute_name_lands_inside_the_destination(extract, tmp_path):
    dest = tmp_path / "model"
    extract([regular("/evil", b"data")], dest)
    assert (dest / "evil").read_bytes() == b"data"
    assert not (tmp_path / "evil").exists()


def test_set_id_bits_and_group_write_are_dropped(extract, tmp_path):
    extract([regular("serve-helper", b"#!/bin/sh\n", mode=0o6777)], tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "serve-helper").st_mode)
    assert mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX) == 0
    assert mode & (stat.S_IWGRP | stat.S_IWOTH) == 0
    assert mode & stat.S_IRWXU == stat.S_IRWXU
