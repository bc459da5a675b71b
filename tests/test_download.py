"""kws.download: resumable fetch with size/sha256 checks, and tar extraction that refuses escaping members.

Archives are built by the test with tarfile and served from a loopback http.server (127.0.0.1, an ephemeral
port, Range support written here) and from file:// URLs; no other network is touched. Expected digests come
from hashlib on the bytes the test built. Run: .venv/bin/pytest tests/test_download.py -q
"""

from __future__ import annotations

import hashlib
import http.server
import io
import random
import tarfile
import threading
from pathlib import Path

import pytest

from kws import download
from kws.errors import KwsError

# Random bytes so that gzip cannot shrink the archive below the resume offsets used here.
FILES = {"yes/a_nohash_0.wav": random.Random(0).randbytes(20_000), "no/b_nohash_1.wav": b"x" * 5000, "LICENSE": b"CC"}


def make_tar(members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"evil" if info.isfile() else b""))
    return buf.getvalue()


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `server.blobs[path]`, honouring `Range: bytes=N-` unless `server.ignore_range`; logs requests."""

    def do_GET(self) -> None:
        blob = self.server.blobs.get(self.path)
        self.server.requests.append((self.path, self.headers.get("Range")))
        if blob is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and not self.server.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(blob):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(blob) - start))
        self.end_headers()
        # counted before writing: the client may finish reading (and the test assert) before this thread resumes
        self.server.sent_bytes += len(blob) - start
        self.wfile.write(blob[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.blobs, httpd.requests, httpd.sent_bytes, httpd.ignore_range = {}, [], 0, False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def blob() -> bytes:
    data = make_tar(FILES)
    assert len(data) > 10_000
    return data


def test_http_full_download_matches_bytes_and_sha(server, blob, tmp_path):
    server.blobs["/mini.tar.gz"] = blob
    dest = tmp_path / "mini.tar.gz"
    sha = hashlib.sha256(blob).hexdigest()
    download.fetch(server.base + "/mini.tar.gz", dest, size_bytes=len(blob), sha256=sha, progress=False)
    assert dest.read_bytes() == blob
    assert not (tmp_path / "mini.tar.gz.part").exists()
    assert server.requests == [("/mini.tar.gz", None)]


def test_http_resume_asks_only_for_the_missing_bytes(server, blob, tmp_path):
    server.blobs["/mini.tar.gz"] = blob
    dest = tmp_path / "mini.tar.gz"
    (tmp_path / "mini.tar.gz.part").write_bytes(blob[:1000])
    download.fetch(
        server.base + "/mini.tar.gz",
        dest,
        size_bytes=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        progress=False,
    )
    assert dest.read_bytes() == blob
    assert server.requests == [("/mini.tar.gz", "bytes=1000-")]
    assert server.sent_bytes == len(blob) - 1000


def test_http_server_ignoring_range_restarts_the_part_file(server, blob, tmp_path):
    server.blobs["/mini.tar.gz"] = blob
    server.ignore_range = True
    (tmp_path / "m.tar.gz.part").write_bytes(b"garbage" * 100)
    dest = download.fetch(server.base + "/mini.tar.gz", tmp_path / "m.tar.gz", size_bytes=len(blob), progress=False)
    assert dest.read_bytes() == blob


def test_file_url_full_and_resume_keeps_existing_bytes(blob, tmp_path):
    src = tmp_path / "src.tar.gz"
    src.write_bytes(blob)
    full = download.fetch(src.as_uri(), tmp_path / "full.tar.gz", size_bytes=len(blob), progress=False)
    assert full.read_bytes() == blob
    # A .part whose first bytes differ from the source: resuming appends after them instead of re-reading
    # from zero, which the (deliberately wrong) prefix proves.
    (tmp_path / "res.tar.gz.part").write_bytes(b"Z" * 700)
    resumed = download.fetch(src.as_uri(), tmp_path / "res.tar.gz", progress=False)
    assert resumed.read_bytes() == b"Z" * 700 + blob[700:]


def test_checksum_mismatch_is_one_line_and_deletes_the_part(blob, tmp_path):
    src = tmp_path / "src.tar.gz"
    src.write_bytes(blob)
    dest = tmp_path / "out.tar.gz"
    with pytest.raises(KwsError) as err:
        download.fetch(src.as_uri(), dest, size_bytes=len(blob), sha256="0" * 64, progress=False)
    assert "sha256" in str(err.value) and "\n" not in str(err.value)
    assert not dest.exists() and not (tmp_path / "out.tar.gz.part").exists()


def test_server_size_disagreeing_with_the_table_is_refused(server, blob, tmp_path):
    server.blobs["/speech_commands_v0.02.tar.gz"] = blob
    with pytest.raises(KwsError, match="wrong mirror"):
        download.download_dataset(tmp_path, url=server.base + "/", test_set=False, progress=False)


def test_http_404_is_a_one_line_error(server, tmp_path):
    with pytest.raises(KwsError, match="HTTP 404") as err:
        download.fetch(server.base + "/missing.tar.gz", tmp_path / "x.tar.gz", progress=False)
    assert "\n" not in str(err.value)


def test_safe_extract_writes_every_file_and_a_marker(blob, tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(blob)
    target = download.safe_extract(archive, tmp_path / "out", progress=False)
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data
    assert (target / download.EXTRACTED_MARKER).is_file()
    assert not (tmp_path / "out.partial").exists()


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    "evil",
    [
        [_info("../evil.txt")],
        [_info("yes/../../evil.txt")],
        [_info("/tmp/kws_evil_abs.txt")],
        [_info("link", tarfile.SYMTYPE, "/etc")],
        [_info("yes/link", tarfile.SYMTYPE, "../../outside")],
        [_info("sub", tarfile.DIRTYPE), _info("link", tarfile.SYMTYPE, "sub"), _info("link/evil.txt")],
        [_info("hard", tarfile.LNKTYPE, "../evil.txt")],
        [_info("fifo", tarfile.FIFOTYPE)],
        [_info("dev", tarfile.CHRTYPE)],
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "symlink-abs",
        "symlink-up",
        "through-link",
        "hardlink-up",
        "fifo",
        "device",
    ],
)
def test_malicious_members_refuse_the_whole_archive(evil, tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(make_tar(FILES, evil))
    root = tmp_path / "deep" / "down"
    root.mkdir(parents=True)
    with pytest.raises(KwsError, match="refusing to extract") as err:
        download.safe_extract(archive, root / "out", progress=False)
    assert "\n" not in str(err.value)
    assert not (root / "out").exists() and not (root / "out.partial").exists()  # nothing written, not even FILES
    assert not (root / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()


def test_inside_symlink_is_allowed(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(make_tar(FILES, [_info("yes/alias.wav", tarfile.SYMTYPE, "a_nohash_0.wav")]))
    target = download.safe_extract(archive, tmp_path / "out", progress=False)
    assert (target / "yes" / "alias.wav").read_bytes() == FILES["yes/a_nohash_0.wav"]


def test_download_dataset_end_to_end_and_second_run_is_a_noop(server, blob, tmp_path):
    server.blobs["/mirror/mini.tar.gz"] = blob
    sha = hashlib.sha256(blob).hexdigest()
    url = server.base + "/mirror/mini.tar.gz"
    (folder,) = download.download_dataset(tmp_path, url=url, sha256=sha, progress=False)
    assert folder == tmp_path / "mini" and (folder / "no" / "b_nohash_1.wav").read_bytes() == FILES["no/b_nohash_1.wav"]
    download.download_dataset(tmp_path, url=url, sha256=sha, progress=False)
    assert len(server.requests) == 1


def test_plan_uses_the_table_for_official_names_and_rejects_bad_input():
    (url, train), (_, test) = download.plan("v0.02", url="https://mirror.example/sc/")
    assert url == "https://mirror.example/sc/speech_commands_v0.02.tar.gz"
    assert train.size_bytes == 2_428_923_189 and test.folder == "speech_commands_test_set_v0.02"
    assert download.plan("v0.01", test_set=False)[0][0] == download.OFFICIAL_BASE_URL + "speech_commands_v0.01.tar.gz"
    with pytest.raises(KwsError, match="--version"):
        download.plan("v9")
    with pytest.raises(KwsError, match="--url"):
        download.plan("v0.02", url="https://mirror.example/readme.html")
    with pytest.raises(KwsError, match="--sha256"):
        download.download_dataset(Path("unused"), url="https://mirror.example/sc/", sha256="ab" * 32)


def test_url_may_be_a_plain_local_path_to_an_archive_or_a_mirror_folder(blob, tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "mini.tar.gz").write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    for url in (str(tmp_path / "mirror" / "mini.tar.gz"), "mirror/mini.tar.gz"):  # absolute, then relative
        monkeypatch.chdir(tmp_path)
        out = tmp_path / f"out{len(url)}"
        (folder,) = download.download_dataset(out, url=url, sha256=sha, progress=False)
        assert (folder / "no" / "b_nohash_1.wav").read_bytes() == FILES["no/b_nohash_1.wav"]
    pairs = download.plan("v0.02", url=str(tmp_path / "mirror"))  # a folder: a mirror with the official names
    assert [u for u, _ in pairs] == [
        (tmp_path / "mirror").resolve().as_uri() + "/" + a.file_name for a in download.ARCHIVES["v0.02"]
    ]
    with pytest.raises(KwsError, match="no such file or folder"):
        download.plan("v0.02", url=str(tmp_path / "nope.tar.gz"))
    with pytest.raises(KwsError, match="is a folder, expected"):
        download.fetch((tmp_path / "mirror").as_uri(), tmp_path / "x.tar.gz", progress=False)
