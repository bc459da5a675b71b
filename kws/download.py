"""Fetching and safely extracting the official Speech Commands archives.

Three concerns, one module: a table of the known archives (file name, size, sha256), a resumable fetch into a
`.part` file (HTTP Range for http(s), a seek for file://), and an extraction that checks every tar member before
writing anything, so an archive cannot place files outside its target folder (absolute names, `..`, links that
point outside, device nodes). Only the standard library is used: no requests, no shell `tar`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kws.errors import KwsError

OFFICIAL_BASE_URL = "http://download.tensorflow.org/data/"
CHUNK_BYTES = 1 << 20
EXTRACTED_MARKER = ".kws_extracted"


@dataclass(frozen=True, kw_only=True)
class Archive:
    """One downloadable archive and what it must look like once fetched.

    `size_bytes` / `sha256` are None where we could not learn them here; the fetch then verifies whatever is
    known (the server's Content-Length at least) and says so on stderr.
    """

    file_name: str
    size_bytes: int | None
    sha256: str | None
    folder: str  # where it is extracted, relative to the --out folder (the archives have no top-level folder)


# Sizes and sha256 as published in tensorflow/datasets (url_checksums/speech_commands.txt) and torchaudio
# (datasets/speechcommands.py); the v0.01 size is the Content-Length the server reports. We could not learn the
# v0.01 test-set size or sha256 here (no network): it is verified against the server's Content-Length only.
ARCHIVES: dict[str, tuple[Archive, Archive]] = {
    "v0.02": (
        Archive(
            file_name="speech_commands_v0.02.tar.gz",
            size_bytes=2_428_923_189,
            sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
            folder="speech_commands_v0.02",
        ),
        Archive(
            file_name="speech_commands_test_set_v0.02.tar.gz",
            size_bytes=112_563_277,
            sha256="cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df",
            folder="speech_commands_test_set_v0.02",
        ),
    ),
    "v0.01": (
        Archive(
            file_name="speech_commands_v0.01.tar.gz",
            size_bytes=1_489_096_277,
            sha256="743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
            folder="speech_commands_v0.01",
        ),
        Archive(
            file_name="speech_commands_test_set_v0.01.tar.gz",
            size_bytes=None,
            sha256=None,
            folder="speech_commands_test_set_v0.01",
        ),
    ),
}


def known_archive(file_name: str) -> Archive | None:
    """The table entry for an archive file name (a mirror keeps the official names), or None."""
    for pair in ARCHIVES.values():
        for archive in pair:
            if archive.file_name == file_name:
                return archive
    return None


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (the 2.4 GB archive never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_from(url: str, offset: int, timeout_s: float) -> tuple[Iterator[bytes], int | None, int]:
    """Open `url` at byte `offset`; return (chunks, total size if known, the offset actually honoured).

    A server that ignores the Range header answers 200 with the whole body: the honoured offset is then 0 and
    the caller restarts the .part file instead of appending a second copy.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if path.is_dir():
            raise KwsError(f"--url {url}: {path} is a folder, expected an archive (a mirror folder ends in '/')")
        if not path.is_file():
            raise KwsError(f"--url {url}: no such file {path}; check the mirror path")
        total = path.stat().st_size

        def file_chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                f.seek(offset)
                yield from iter(lambda: f.read(CHUNK_BYTES), b"")

        return file_chunks(), total, min(offset, total)
    if parsed.scheme not in ("http", "https"):
        raise KwsError(f"--url {url}: unsupported scheme {parsed.scheme!r}; use http://, https:// or file://")
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the .part already holds every byte
            return iter(()), offset, offset
        raise KwsError(f"{url}: HTTP {e.code} {e.reason}; check the URL or try a mirror with --url") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise KwsError(f"{url}: cannot connect ({reason}); check the network or use --url with a mirror") from None
    honoured = offset if response.status == 206 else 0
    length = response.headers.get("Content-Length")
    total = honoured + int(length) if length is not None else None

    def http_chunks() -> Iterator[bytes]:
        with response:
            yield from iter(lambda: response.read(CHUNK_BYTES), b"")

    return http_chunks(), total, honoured


def fetch(
    url: str,
    dest: Path,
    *,
    size_bytes: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout_s: float = 60.0,
) -> Path:
    """Download `url` to `dest`, resuming from `dest.part` if an earlier run stopped, and verify it.

    The bytes go to `<dest>.part` and are renamed onto `dest` only once the size (and sha256, where known)
    match, so `dest` is either absent or complete. A checksum mismatch deletes the .part (resuming a corrupt
    file can never succeed) and raises KwsError. An existing `dest` is re-verified, not re-downloaded.
    """
    from tqdm import tqdm

    dest = Path(dest)
    if dest.is_file():
        _verify(dest, dest, size_bytes, sha256, url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if size_bytes is not None and offset > size_bytes:
        offset = 0  # longer than the archive can be: start over
    chunks, total, honoured = _open_from(url, offset, timeout_s)
    if size_bytes is not None and total is not None and total != size_bytes:
        raise KwsError(f"{url}: the server reports {total} bytes but {dest.name} has {size_bytes}; wrong mirror?")
    with (
        open(part, "r+b" if honoured else "wb") as f,
        tqdm(
            total=total,
            initial=honoured,
            unit="B",
            unit_scale=True,
            desc=dest.name,
            disable=not progress,
            file=sys.stderr,
        ) as bar,
    ):
        f.seek(honoured)
        f.truncate()
        for block in chunks:
            f.write(block)
            bar.update(len(block))
    _verify(part, dest, size_bytes if size_bytes is not None else total, sha256, url)
    os.replace(part, dest)
    return dest


def _verify(path: Path, dest: Path, size_bytes: int | None, sha256: str | None, url: str) -> None:
    """Raise KwsError (one line) when `path` does not have the expected size / sha256."""
    actual_size = path.stat().st_size
    if size_bytes is not None and actual_size != size_bytes:
        if actual_size < size_bytes:
            raise KwsError(f"{path}: only {actual_size} of {size_bytes} bytes arrived; run the command again to resume")
        path.unlink()
        raise KwsError(f"{path}: {actual_size} bytes, expected {size_bytes}; deleted it, run the command again")
    if sha256 is None:
        print(f"kws: note: no known sha256 for {dest.name}; verified its size only", file=sys.stderr)
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        path.unlink()
        raise KwsError(
            f"{dest.name} from {url}: sha256 {actual[:12]}... != expected {sha256[:12]}...; deleted it, "
            "run again or use another --url mirror"
        )


def _member_problem(member: tarfile.TarInfo, link_names: set[str]) -> str | None:
    """Why `member` must not be extracted into the target folder, or None if it is safe.

    Names are judged lexically (posix, as tar stores them): absolute names, any `..` that climbs out, a path
    that passes through a link member of the same archive, links whose target leaves the folder, and device
    or fifo nodes are all refused.
    """
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        return "climbs out of the target folder with '..'"
    parents = norm.split("/")[:-1]
    if any("/".join(parents[: i + 1]) in link_names for i in range(len(parents))):
        return "is written through a link member"
    if member.issym() or member.islnk():
        if member.linkname.startswith("/"):
            return f"links to the absolute path {member.linkname!r}"
        base = posixpath.dirname(norm) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if target == ".." or target.startswith("../"):
            return f"links outside the target folder ({member.linkname!r})"
    elif not (member.isfile() or member.isdir()):
        return "is a device, fifo or other special file"
    return None


def check_members(members: list[tarfile.TarInfo], archive: Path) -> None:
    """Refuse the whole archive (KwsError) if any member could escape; checked before anything is written."""
    link_names: set[str] = set()
    for member in members:
        problem = _member_problem(member, link_names)
        if problem:
            raise KwsError(f"{archive}: member {member.name!r} {problem}; refusing to extract (corrupt or malicious)")
        if member.issym() or member.islnk():
            link_names.add(posixpath.normpath(member.name))


def safe_extract(archive: Path, target: Path, *, progress: bool = True) -> Path:
    """Extract a (gzipped) tar into `target` after checking every member; return `target`.

    The files land in `<target>.partial` and the folder is renamed onto `target` when all are out, with a
    marker file inside, so an interrupted extraction never looks finished. A target that already carries the
    marker is left alone.
    """
    from tqdm import tqdm

    archive, target = Path(archive), Path(target)
    if (target / EXTRACTED_MARKER).is_file():
        return target
    if target.exists() and any(target.iterdir()):
        raise KwsError(f"{target} exists and is not a finished extraction; delete it or choose another --out")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            check_members(members, archive)
            staging.mkdir(parents=True)
            for member in tqdm(
                members, desc=f"extract {archive.name}", unit="file", disable=not progress, file=sys.stderr
            ):
                # filter="data" repeats the same checks inside tarfile (defence in depth) and drops set-uid bits.
                tar.extract(member, staging, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise KwsError(f"{archive}: cannot extract ({e}); delete it and download again") from None
    except KwsError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / EXTRACTED_MARKER).write_text(f"{archive.name}\n")
    if target.exists():
        target.rmdir()
    os.replace(staging, target)
    return target


def _as_url(url: str) -> str:
    """--url as given, or a plain local path as a file:// URL (a folder, with or without '/', is a mirror)."""
    if urllib.parse.urlparse(url).scheme.lower() in ("http", "https", "file"):
        return url
    path = Path(url).expanduser()
    if path.is_dir():
        return path.resolve().as_uri() + "/"
    if path.is_file():
        return path.resolve().as_uri()
    if len(urllib.parse.urlparse(url).scheme) <= 1:  # no scheme (or a drive letter): meant as a local path
        raise KwsError(f"--url {url}: no such file or folder; give a local path, or an http(s):// or file:// URL")
    return url  # another scheme: refused by name when it is opened


def plan(version: str = "v0.02", *, url: str | None = None, test_set: bool = True) -> list[tuple[str, Archive]]:
    """The (url, archive) pairs to fetch: the official ones, under a mirror base URL, or one explicit archive.

    `url` ending in '/' is a mirror that keeps the official file names; any other `url` names one archive,
    checked against the table when its file name is a known one.
    """
    if version not in ARCHIVES:
        raise KwsError(f"--version {version}: unknown; choose one of {', '.join(ARCHIVES)}")
    pairs = ARCHIVES[version] if test_set else ARCHIVES[version][:1]
    url = _as_url(url) if url is not None else None
    if url is None or url.endswith("/"):
        base = url or OFFICIAL_BASE_URL
        return [(base + archive.file_name, archive) for archive in pairs]
    file_name = posixpath.basename(urllib.parse.urlparse(url).path)
    if not file_name.endswith((".tar.gz", ".tgz", ".tar")):
        raise KwsError(f"--url {url}: expected a .tar.gz archive, or a mirror folder ending in '/'")
    archive = known_archive(file_name)
    if archive is None:
        folder = file_name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
        archive = Archive(file_name=file_name, size_bytes=None, sha256=None, folder=folder)
    return [(url, archive)]


def download_dataset(
    out_dir: Path,
    *,
    version: str = "v0.02",
    url: str | None = None,
    sha256: str | None = None,
    test_set: bool = True,
    keep_archives: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Fetch, verify and extract the archives of `version` into `out_dir`; return the extracted folders.

    `sha256` overrides the table (for an archive the table does not know). Archives stay in `out_dir` unless
    keep_archives is False, so a second run is a no-op after a quick re-verification.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise KwsError(f"--out {out_dir} is a file, expected a folder; choose another --out")
    archives = plan(version, url=url, test_set=test_set)
    if sha256 is not None and len(archives) > 1:
        raise KwsError("--sha256 applies to one archive: give --url the full URL of that archive")
    folders = []
    for archive_url, archive in archives:
        target = out_dir / archive.folder
        if (target / EXTRACTED_MARKER).is_file():
            folders.append(target)
            continue
        path = fetch(
            archive_url,
            out_dir / archive.file_name,
            size_bytes=archive.size_bytes,
            sha256=sha256 or archive.sha256,
            progress=progress,
        )
        folders.append(safe_extract(path, target, progress=progress))
        if not keep_archives:
            path.unlink()
    return folders
