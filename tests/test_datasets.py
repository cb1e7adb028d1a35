"""fastconv.datasets: IDX parsing (and its errors), reading a directory, the bundled sample, and the
download path against a real HTTP server on 127.0.0.1 (no outside network): checksums, truncation,
a dead mirror, retries, atomic cache writes."""
import collections
import gzip
import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest

from fastconv import datasets

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array, type_code=0x08):
    """An IDX file's bytes for an array (written here, independently of the reader)."""
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def synthetic_mnist(seed=0, train=12, test=8):
    """{file name: gzipped IDX bytes} of a tiny MNIST-shaped data set, and the arrays in it."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, test, dtype=np.uint8),
    }
    files = {name: gzip.compress(idx_bytes(value), mtime=0) for name, value in arrays.items()}
    return files, arrays


def check_loaded(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    assert x_train.dtype == np.float32 and x_train.shape == (len(arrays["train-labels-idx1-ubyte.gz"]), 1, 28, 28)
    assert y_train.dtype == np.int64 and x_test.shape[1:] == (1, 28, 28)
    np.testing.assert_allclose(x_train[:, 0] * 255, arrays["train-images-idx3-ubyte.gz"], atol=1e-4)
    np.testing.assert_allclose(x_test[:, 0] * 255, arrays["t10k-images-idx3-ubyte.gz"], atol=1e-4)
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0


# ---- IDX parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [True, False])
def test_read_idx_round_trip(tmp_path, gzipped):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    np.testing.assert_array_equal(datasets.read_idx(path), array)


def test_read_idx_other_types(tmp_path):
    array = np.linspace(-2, 2, 6).reshape(2, 3)
    path = tmp_path / "f.idx"
    path.write_bytes(idx_bytes(array.astype(np.float32), type_code=0x0D))
    np.testing.assert_array_equal(datasets.read_idx(path), array.astype(np.float32))


@pytest.mark.parametrize("data, message", [
    (b"", "not an IDX file"),
    (b"\x12\x34\x08\x01\x00\x00\x00\x01\x00", "not an IDX file"),
    (b"PK\x03\x04 this is a zip", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX data type"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
    (idx_bytes(np.zeros((3, 4), np.uint8))[:-1], "truncated"),
    (idx_bytes(np.zeros((3, 4), np.uint8)) + b"\x00", "longer than its header"),
    (gzip.compress(idx_bytes(np.zeros((30, 4), np.uint8)))[:-12], "gzip"),
])
def test_read_idx_rejects_damaged_or_foreign_files(tmp_path, data, message):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        datasets.read_idx(path)


def test_read_idx_checks_the_number_of_dimensions(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(ValueError, match="2 dimensions, expected 3"):
        datasets.read_idx(path, expected_ndim=3)


# ---- reading a directory -------------------------------------------------------------------------

def test_load_mnist_reads_a_directory_gzipped_or_not(tmp_path):
    files, arrays = synthetic_mnist()
    for i, (name, data) in enumerate(files.items()):
        if i % 2:  # half of the files uncompressed, under the name without .gz
            (tmp_path / name[:-3]).write_bytes(gzip.decompress(data))
        else:
            (tmp_path / name).write_bytes(data)
    check_loaded(datasets.load_mnist(data_dir=tmp_path), arrays)


def test_load_mnist_directory_errors(tmp_path):
    files, _ = synthetic_mnist()
    with pytest.raises(FileNotFoundError, match="not found"):
        datasets.load_mnist(data_dir=tmp_path / "nowhere")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / NAMES[1]).unlink()
    with pytest.raises(FileNotFoundError, match=NAMES[1]):
        datasets.load_mnist(data_dir=tmp_path)
    (tmp_path / NAMES[1]).write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))  # 5 labels, 12 images
    with pytest.raises(ValueError, match="12 images but"):
        datasets.load_mnist(data_dir=tmp_path)
    (tmp_path / NAMES[1]).write_bytes(gzip.compress(idx_bytes(np.full(12, 10, np.uint8))))
    with pytest.raises(ValueError, match="digits 0-9"):
        datasets.load_mnist(data_dir=tmp_path)
    (tmp_path / NAMES[0]).write_bytes(gzip.compress(idx_bytes(np.zeros((12, 20, 20), np.uint8))))
    with pytest.raises(ValueError, match="28x28"):
        datasets.load_mnist(data_dir=tmp_path)


def test_the_bundled_sample_is_real_mnist():
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist_sample()
    assert x_train.shape == (5000, 1, 28, 28) and x_test.shape == (2000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(y_train), [500] * 10)
    np.testing.assert_array_equal(y_test[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])  # the official test set's start
    sample_dir = datasets.SAMPLE_DIR
    assert os.path.isfile(os.path.join(os.path.dirname(sample_dir), "LICENSE"))


# ---- download, against a local HTTP server ------------------------------------------------------

class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files[path]; "/cut/..." advertises the full length and sends half, then hangs up."""

    def do_GET(self):
        self.server.requests[self.path] += 1
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2] if self.path.startswith("/cut/") else data)

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def mirror_server(monkeypatch, tmp_path):
    """A local server with mirrors /good/ (all files), /bad/ (wrong checksum), /short/ (truncated file),
    /cut/ (connection drops mid-body), /empty/ (404); plus a dead mirror URL; the cache in tmp."""
    files, arrays = synthetic_mnist()
    monkeypatch.setattr(datasets, "MNIST_FILES",
                        {name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in files.items()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.files, server.requests = {}, collections.Counter()
    for name, data in files.items():
        server.files[f"/good/{name}"] = data
        server.files[f"/bad/{name}"] = data[:-1] + bytes([data[-1] ^ 1])
        server.files[f"/short/{name}"] = data[:-7]
        server.files[f"/cut/{name}"] = data
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{server.server_address[1]}"
    cache = tmp_path / "cache"
    monkeypatch.setenv("FASTCONV_DATA", str(cache))
    urls = {kind: f"{base}/{kind}/" for kind in ("good", "bad", "short", "cut", "empty")}
    urls["dead"] = f"http://127.0.0.1:{dead_port}/mnist/"
    yield {"server": server, "urls": urls, "cache": cache, "arrays": arrays, "files": files}
    server.shutdown()
    server.server_close()


def test_download_skips_a_dead_mirror_a_bad_checksum_and_truncated_files(mirror_server):
    urls, server = mirror_server["urls"], mirror_server["server"]
    mirrors = [urls["dead"], urls["bad"], urls["short"], urls["cut"], urls["good"]]
    result = datasets.load_mnist(mirrors=mirrors, timeout=5, progress=False)
    check_loaded(result, mirror_server["arrays"])
    for name in NAMES:
        assert (mirror_server["cache"] / name).read_bytes() == mirror_server["files"][name]
        for kind in ("bad", "short", "cut"):  # each failing mirror was tried twice (one retry)
            assert server.requests[f"/{kind}/{name}"] == 2
        assert server.requests[f"/good/{name}"] == 1
    assert sorted(os.listdir(mirror_server["cache"])) == sorted(NAMES)  # no temporary files left


def test_a_complete_cache_is_used_without_network(mirror_server):
    urls, server = mirror_server["urls"], mirror_server["server"]
    datasets.load_mnist(mirrors=[urls["good"]], progress=False)
    served = sum(server.requests.values())
    check_loaded(datasets.load_mnist(mirrors=[urls["dead"]], progress=False), mirror_server["arrays"])
    check_loaded(datasets.load_mnist(download=False), mirror_server["arrays"])
    assert sum(server.requests.values()) == served


def test_a_damaged_cached_file_is_downloaded_again(mirror_server):
    urls, server = mirror_server["urls"], mirror_server["server"]
    datasets.load_mnist(mirrors=[urls["good"]], progress=False)
    (mirror_server["cache"] / NAMES[2]).write_bytes(b"garbage")
    check_loaded(datasets.load_mnist(mirrors=[urls["good"]], progress=False), mirror_server["arrays"])
    assert server.requests[f"/good/{NAMES[2]}"] == 2 and server.requests[f"/good/{NAMES[0]}"] == 1


def test_when_every_mirror_fails_nothing_is_cached_and_the_error_says_why(mirror_server):
    urls = mirror_server["urls"]
    with pytest.raises(datasets.DownloadError) as info:
        datasets.load_mnist(mirrors=[urls["dead"], urls["bad"]], timeout=5, progress=False)
    message = str(info.value)
    assert NAMES[0] in message and "SHA-256 mismatch" in message and "127.0.0.1" in message
    assert os.listdir(mirror_server["cache"]) == []


def test_a_404_is_not_retried(mirror_server):
    urls, server = mirror_server["urls"], mirror_server["server"]
    with pytest.raises(datasets.DownloadError, match="HTTP 404"):
        datasets.load_mnist(mirrors=[urls["empty"]], progress=False)
    assert server.requests[f"/empty/{NAMES[0]}"] == 1


def test_no_download_when_not_allowed(mirror_server):
    with pytest.raises(FileNotFoundError, match="download=False"):
        datasets.load_mnist(download=False)
    assert sum(mirror_server["server"].requests.values()) == 0


def test_cache_dir_follows_fastconv_data(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path))
    assert datasets.cache_dir() == str(tmp_path)
    monkeypatch.delenv("FASTCONV_DATA")
    assert datasets.cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "fastconv", "mnist")
