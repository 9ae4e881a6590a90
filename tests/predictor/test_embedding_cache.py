import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from routeyard.predictor.embedding_cache import CachedEmbedder
from routeyard.predictor.hashing_embedder import HashingEmbedder

TEXTS = ["a secret prompt about tax returns", "another prompt", "a secret prompt about tax returns"]


def test_each_text_is_embedded_once_and_vectors_are_exact(tmp_path):
    path = tmp_path / "cache.sqlite"
    inner = HashingEmbedder(32)
    first = CachedEmbedder(inner, path)
    vectors = first.embed(TEXTS)
    assert (first.misses, first.hits) == (2, 1)
    np.testing.assert_array_equal(vectors, inner.embed(TEXTS))

    again = CachedEmbedder(HashingEmbedder(32), path)  # a new process would see the same file
    np.testing.assert_array_equal(again.embed(TEXTS[::-1]), vectors[::-1])
    assert (again.misses, again.hits) == (0, 3)
    assert again.identity == inner.identity and again.dimension == 32


def test_embedders_sharing_a_file_do_not_see_each_others_vectors(tmp_path):
    path = tmp_path / "cache.sqlite"
    small, large = CachedEmbedder(HashingEmbedder(16), path), CachedEmbedder(HashingEmbedder(48), path)
    assert small.embed(TEXTS).shape == (3, 16)
    assert large.embed(TEXTS).shape == (3, 48) and large.misses == 2


def test_the_file_holds_no_prompt_text_and_empty_batches_work(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = CachedEmbedder(HashingEmbedder(32), path)
    cache.embed(TEXTS)
    assert b"secret prompt" not in path.read_bytes()
    assert cache.embed([]).shape == (0, 32)


# --- the size bound: least recently used rows go first -------------------------------------------------

BOUND = 128 << 10  # ≈ 450 vectors of 32 floats


def batches(prefix, count, size=20):
    for start in range(0, count, size):
        yield [f"{prefix} {i}" for i in range(start, min(start + size, count))]


def test_the_file_stays_within_its_bound_and_keeps_what_is_used(tmp_path):
    path, inner = tmp_path / "cache.sqlite", HashingEmbedder(32)
    cache = CachedEmbedder(inner, path, max_bytes=BOUND)
    hot = [f"hot {i}" for i in range(20)]  # embedded first, then used again with every batch
    largest = 0
    for batch in batches("cold", 3000, size=40):
        texts = hot + batch
        np.testing.assert_array_equal(cache.embed(texts), inner.embed(texts))
        largest = max(largest, path.stat().st_size)
    assert largest <= BOUND + (32 << 10)  # the bound plus one batch of 40, whatever the churn
    assert cache.misses == 20 + 3000  # the hot ones were never evicted, though they came in first
    later = CachedEmbedder(HashingEmbedder(32), path, max_bytes=BOUND)
    np.testing.assert_array_equal(later.embed(hot), inner.embed(hot))
    assert later.misses == 0  # first in, but recently used: kept
    later.embed([f"cold {i}" for i in range(200)])
    assert later.misses == 200  # the oldest unused ones went
    later.embed([f"cold {i}" for i in range(2960, 3000)])
    assert later.hits == 20 + 40  # the newest are still there


def test_hits_in_another_process_count_as_use_once_flushed(tmp_path):
    path = tmp_path / "cache.sqlite"
    writer = CachedEmbedder(HashingEmbedder(32), path, max_bytes=BOUND)
    reader = CachedEmbedder(HashingEmbedder(32), path, max_bytes=BOUND)
    old = [f"old {i}" for i in range(40)]
    writer.embed(old)
    for batch in batches("middle", 240):
        writer.embed(batch)
    reader.embed(old)
    assert reader.hits == 40
    reader.flush()  # their use reaches the file: now more recent than every "middle" text
    for batch in batches("new", 200):
        writer.embed(batch)  # ≈ 480 vectors in all: the bound is crossed, some "middle" ones go
    check = CachedEmbedder(HashingEmbedder(32), path, max_bytes=BOUND)
    check.embed(old)
    assert check.misses == 0
    check.embed([f"middle {i}" for i in range(240)])
    assert check.misses > 0


def test_a_bound_too_small_for_the_schema_is_refused(tmp_path):
    with pytest.raises(ValueError, match="max_bytes must be at least"):
        CachedEmbedder(HashingEmbedder(32), tmp_path / "cache.sqlite", max_bytes=4096)


def test_a_file_from_before_the_bound_is_upgraded_and_served(tmp_path):
    path, inner = tmp_path / "cache.sqlite", HashingEmbedder(32)
    key = CachedEmbedder(inner, tmp_path / "other.sqlite")._key("kept")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        db.execute("INSERT INTO vectors VALUES (?, ?)", (key, inner.embed(["kept"])[0].tobytes()))
    db.close()
    cache = CachedEmbedder(inner, path)
    np.testing.assert_array_equal(cache.embed(["kept"]), inner.embed(["kept"]))
    assert (cache.hits, cache.failures) == (1, 0)


# --- a broken file never fails a request ----------------------------------------------------------------


def read_only_directory(tmp_path, request):
    """A cache file with vectors in a directory nobody may write to (reads work, writes fail). Root
    ignores permissions, so as root the directory and file are made immutable (``chattr +i``) instead."""
    path = tmp_path / "ro" / "cache.sqlite"
    CachedEmbedder(HashingEmbedder(32), path).embed(TEXTS[:1])
    path.parent.chmod(0o500)
    path.chmod(0o400)
    if _writable(path.parent):
        immutable = [str(path), str(path.parent)]
        if subprocess.run(["chattr", "+i", *immutable], capture_output=True, check=False).returncode:
            pytest.skip("permissions do not stop writes here and chattr +i is not available")
        request.addfinalizer(lambda: subprocess.run(["chattr", "-i", *immutable], check=True))
        assert not _writable(path.parent)
    return path


def _writable(directory):
    probe = directory / "probe"
    try:
        probe.touch()
    except PermissionError:
        return False
    probe.unlink()
    return True


def path_is_a_directory(tmp_path, request):
    path = tmp_path / "cache.sqlite"
    path.mkdir()
    return path


def directory_is_a_file(tmp_path, request):
    (tmp_path / "cache").write_text("not a directory")
    return tmp_path / "cache" / "cache.sqlite"


def corrupt_file(tmp_path, request):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not an SQLite database\n" * 200)
    return path


@pytest.mark.parametrize(
    "broken", [read_only_directory, path_is_a_directory, directory_is_a_file, corrupt_file]
)
def test_a_file_that_cannot_be_used_is_logged_once_and_the_embedder_works_uncached(
    tmp_path, request, caplog, broken
):
    path, inner = broken(tmp_path, request), HashingEmbedder(32)
    cache = CachedEmbedder(inner, path)
    for _ in range(3):
        np.testing.assert_array_equal(cache.embed(TEXTS), inner.embed(TEXTS))
    assert cache.failures == 1 and not cache.enabled
    cache.flush()
    assert cache.failures == 1
    (record,) = [r for r in caplog.records if "embedding cache" in r.getMessage()]
    assert "Error" in record.getMessage() and "secret" not in record.getMessage()


def test_a_file_locked_by_another_process_is_given_up_not_waited_on_forever(tmp_path):
    path, inner = tmp_path / "cache.sqlite", HashingEmbedder(32)
    cache = CachedEmbedder(inner, path, timeout=0.05)
    cache.embed(TEXTS[:1])
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for the whole test
        np.testing.assert_array_equal(cache.embed(TEXTS), inner.embed(TEXTS))
        assert cache.failures == 1 and not cache.enabled
        np.testing.assert_array_equal(cache.embed(TEXTS), inner.embed(TEXTS))  # no more waiting
    finally:
        other.close()


FULL_DISK = """
import json, resource, signal, sys
import numpy as np
from routeyard.predictor.embedding_cache import CachedEmbedder
from routeyard.predictor.hashing_embedder import HashingEmbedder
path = sys.argv[1]
cache = CachedEmbedder(HashingEmbedder(32), path)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (4096 * 8, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
texts = [f"secret prompt {i}" for i in range(2000)]
same = bool(np.array_equal(cache.embed(texts), HashingEmbedder(32).embed(texts)))
print(json.dumps({"same": same, "failures": cache.failures, "misses": cache.misses}))
"""


def test_a_full_disk_is_logged_once_and_the_embedder_works_uncached(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path / "cache.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == {"same": True, "failures": 1, "misses": 2000}
    assert done.stderr.count("embedding cache") == 1 and "secret" not in done.stderr
