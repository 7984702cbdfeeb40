"""CIFAR-10's download as `train` runs do it (tests/helpers/train_from_url.py: the archive served from
127.0.0.1, never the network): runs sharing one DATA_DIR download and extract it once, and an archive whose
md5 is wrong stops a run with one line and exit 2, extracting nothing.

The runs really race: the server holds the first request for the archive until every other run is either
waiting on DATA_DIR's lock (the kernel lists such waiters in /proc/locks) or asking for the archive itself,
which only a run that ignored the lock would do."""
import functools
import hashlib
import http.server
import os
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from cifar_archive import write_cifar_archive
from conftest import REPO
from runkit.rundir import runs

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = REPO / "tests" / "helpers" / "train_from_url.py"
CNN = REPO / "configs" / "cnn.gin"
QUICK = "training_loop.n_epochs=1#cifar10.n_val=20#cifar10.batch_size=32#cnn.n_filters=8#training_loop.loggers=[]"
ARCHIVE = "cifar-10-python.tar.gz"


def blocked_on(path):
    """The pids waiting for a flock on `path`: /proc/locks' "N: -> FLOCK ADVISORY WRITE PID DEV:INODE ..."."""
    inode = os.stat(path).st_ino
    with open("/proc/locks") as f:
        rows = [line.split() for line in f]
    return {int(row[5]) for row in rows if row[1:3] == ["->", "FLOCK"] and int(row[6].split(":")[2]) == inode}


class Server:
    """Serves `folder` on 127.0.0.1 and counts the archive's downloads. torchvision first asks for the URL to
    follow redirects (a GET with a "Method: HEAD" header, answered here as a HEAD), then downloads it; each
    such first request waits until every run in `self.racing` is blocked on `self.lock` or has asked too."""

    def __init__(self, folder):
        self.asked, self.gets, self.racing, self.lock = 0, 0, [], None
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):  # noqa: N802 - http.server's names
                server.asked += 1
                deadline = time.monotonic() + 120
                while server.racing and time.monotonic() < deadline and \
                        server.asked + len(blocked_on(server.lock)) < len(server.racing):
                    time.sleep(0.02)
                super().do_HEAD()

            def do_GET(self):  # noqa: N802
                if self.headers.get("Method") == "HEAD":
                    return self.do_HEAD()
                server.gets += 1
                super().do_GET()

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_port}/{ARCHIVE}"

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def served(tmp_path):
    """(server, the archive's md5, the images written): a tiny archive in the official layout."""
    folder = tmp_path / "served"
    written = write_cifar_archive(folder)
    with tarfile.open(folder / ARCHIVE, "w:gz") as tar:
        tar.add(folder / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    server = Server(folder)
    yield server, hashlib.md5((folder / ARCHIVE).read_bytes()).hexdigest(), written
    server.close()


def train(server, md5, run, data_dir):
    return subprocess.Popen([sys.executable, TRAIN, server.url, md5, run, CNN, "-b", QUICK], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, DATA_DIR=str(data_dir)))


@pytest.mark.slow
def test_runs_sharing_a_data_dir_download_and_extract_it_once(served, tmp_path):
    server, md5, _written = served
    data_dir = tmp_path / "data"
    server.lock = data_dir / ".cifar-10.lock"
    procs = [train(server, md5, tmp_path / f"run{i}", data_dir) for i in range(3)]
    server.racing = [p.pid for p in procs]
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert (server.asked, server.gets) == (1, 1)  # one download; the others waited for it and read what it extracted
    assert sorted(p.name for p in data_dir.iterdir()) == [".cifar-10.lock", "cifar-10-batches-py"]
    assert all(runs.status(tmp_path / f"run{i}") == "finished" for i in range(3))


def test_an_archive_with_the_wrong_md5_is_one_line_exit_2_and_nothing_extracted(served, tmp_path):
    server, md5, _written = served
    archive = tmp_path / "served" / ARCHIVE
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped in transit
    archive.write_bytes(bytes(data))
    data_dir, run = tmp_path / "data", tmp_path / "run"
    proc = train(server, md5, run, data_dir)
    _out, err = proc.communicate(timeout=600)
    line = err.splitlines()[-1]  # above it, torchvision's progress bar of the download
    assert proc.returncode == 2 and line.startswith("train: ") and err.count("train: ") == 1, err
    assert f"CIFAR-10's {ARCHIVE} as downloaded from {server.url} is corrupt" in line and f"not {md5}" in line
    assert "run again to download it again" in line and str(data_dir) in line
    assert (server.asked, server.gets) == (1, 1) and [p.name for p in data_dir.iterdir()] == [".cifar-10.lock"]
    assert not run.exists()
