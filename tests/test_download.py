import hashlib

import pytest

from kshot.data.download import Remote, download
from kshot.errors import DataError


def test_download_checks_the_checksum_and_leaves_no_partial_file(tmp_path):
    src = tmp_path / "src.zip"
    src.write_bytes(b"omniglot bytes" * 1000)
    good = "sha256:" + hashlib.sha256(src.read_bytes()).hexdigest()
    out = download(Remote("sub/file.zip", src.as_uri(), good), tmp_path / "data")
    assert out.read_bytes() == src.read_bytes() and out == tmp_path / "data" / "sub" / "file.zip"

    bad = Remote("other.zip", src.as_uri(), "md5:" + "0" * 32)
    with pytest.raises(DataError, match="does not match its checksum"):
        download(bad, tmp_path / "data")
    assert not (tmp_path / "data" / "other.zip").exists()
    assert not list((tmp_path / "data").rglob("*.part"))


def test_unreachable_source_explains_how_to_get_the_file(tmp_path):
    missing = Remote("x.zip", (tmp_path / "does-not-exist.zip").as_uri(), "md5:" + "0" * 32)
    with pytest.raises(DataError, match="could not download .*copy x.zip into"):
        download(missing, tmp_path / "data")
