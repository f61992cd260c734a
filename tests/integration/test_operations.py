"""What an operator does around the daemon: install it, watch a scan on a
terminal, read the access log, and rely on the master to clean up after a
worker that died (LMDB reader slots)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import talas_fixtures as tf


# ------------------------------------------------------------ make install

def test_make_install_destdir_gives_a_packager_tree(tmp_path):
    if not (tf.BUILDDIR / "Makefile").is_file():
        pytest.skip("no configured build tree")
    dest = tmp_path / "dest"
    cp = subprocess.run(["make", "-C", str(tf.BUILDDIR), "install", f"DESTDIR={dest}"],
                        capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    prefix_dirs = [p for p in dest.rglob("sbin") if p.is_dir()]
    assert len(prefix_dirs) == 1, prefix_dirs
    prefix = prefix_dirs[0].parent
    for rel in ["sbin/talas-master", "bin/talasctl", "libexec/talas/talas-worker"]:
        assert os.access(prefix / rel, os.X_OK), rel
    for rel in ["share/man/man8/talas-master.8", "share/man/man8/talasctl.8",
                "share/man/man5/talas.yaml.5"]:
        assert (prefix / rel).is_file(), rel
    # the web player is installed when it has been built (scripts/build-web);
    # building and installing the server never needs Node.js
    built = [d for d in (tf.BUILDDIR / "web" / "dist", tf.SRCDIR / "web" / "dist")
             if (d / "index.html").is_file()]
    www = prefix / "share/talas/www"
    if built:
        assert (www / "index.html").read_bytes() == (built[0] / "index.html").read_bytes()
        assert sorted(p.name for p in (www / "assets").iterdir()) == \
            sorted(p.name for p in (built[0] / "assets").iterdir())
    else:
        assert not www.exists()
        assert "web player is not built" in cp.stdout, cp.stdout[-2000:]
    conf = next(dest.rglob("etc/talas/talas.yaml"))
    text = conf.read_text()
    # the installed sample points at the installed prefix, not at a checkout
    settings = "\n".join(ln.split("#")[0] for ln in text.splitlines())
    assert "./var/" not in settings and "./web" not in settings, settings
    assert re.search(r"^\s+- /\S+/lib/talas/library$", text, re.M), text
    assert re.search(r"^\s+www_root: /\S+/share/talas/www$", text, re.M), text
    # A staged talas-master looks for its worker program in $(pkglibexecdir)
    # without DESTDIR, where it is not: -t says so. The installed sample is
    # checked by the build tree's, which finds talas-worker beside it.
    check = subprocess.run([str(prefix / "sbin/talas-master"), "-t", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
    real = "/" + str(prefix.relative_to(dest)) + "/libexec/talas/talas-worker"
    if not os.access(real, os.X_OK):
        assert check.returncode == 1 and "talas-worker" in check.stderr, check.stderr
    check = subprocess.run([str(tf.TALAS_MASTER), "-t", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    # uninstall takes back everything but the directories, and an unchanged config
    cp = subprocess.run(["make", "-C", str(tf.BUILDDIR), "uninstall", f"DESTDIR={dest}"],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr[-3000:]
    left = [p for p in dest.rglob("*") if p.is_file()]
    assert left == [], left


# ---------------------------------------------------- talasctl on a terminal

def test_talasctl_scan_shows_progress_on_a_terminal(talas_server, library_dir):
    tf.require_tool("script", "bsdutils")
    srv = talas_server([library_dir])
    cmd = f"{tf.TALASCTL} -c {srv.config_path} scan"
    # bytes, not text: text mode would turn the \r into \n
    cp = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=60)
    out = cp.stdout.decode()
    assert cp.returncode == 0, out
    # a progress line rewritten in place (\r), then the summary
    assert re.search(r"\r(\x1b\[K)?\d+ files: \d+ probed, \d+ unchanged, \d+ errors", out), repr(out)
    assert re.search(r"^scanned \d+ files in [\d.]+ s: ", out, re.M), repr(out)
    # without a terminal: the summary only
    cp = subprocess.run(cmd.split(), capture_output=True, text=True, timeout=60)
    assert "\r" not in cp.stdout + cp.stderr and cp.stdout.startswith("scanned "), cp.stdout + cp.stderr


# -------------------------------------------------------------- access log

def test_access_log_combined_format(talas_server, library_dir):
    srv = talas_server([library_dir], access_format="combined")
    track = srv.tracks()[0]
    # a query string (media URLs carry their token there) is never logged
    status, _, _ = srv.get(f"/stream/{track['id']}?token=SECRET-TOKEN", headers={"Range": "bytes=0-99",
                                                                "User-Agent": "ops-test/1.0",
                                                                "Referer": "http://example.invalid/"})
    assert status == 206

    def line():
        for ln in srv.access_log.read_text().splitlines():
            if f"/stream/{track['id']}" in ln:
                return ln
        return None
    ln = tf.wait_for(line, 5, what="the access log line")
    assert re.fullmatch(r'127\.0\.0\.1 - - \[[^\]]+\] "GET /stream/\S+ HTTP/1\.1" 206 100 '
                        r'"http://example\.invalid/" "ops-test/1\.0"', ln), ln
    assert "SECRET-TOKEN" not in srv.access_log.read_text()


# ------------------------------------------------------ stale LMDB readers

READER = r"""
import lmdb, sys, time
env = lmdb.open(sys.argv[1], max_dbs=32, readonly=True, lock=True)
txn = env.begin()            # holds a reader slot until the process ends
print("ready", flush=True)
time.sleep(600)
"""


def _reader_pids(storage):
    # mdb_stat prints the reader table, then exits 1 on this multi-database
    # environment: its output is what counts
    cp = subprocess.run(["mdb_stat", "-r", str(storage)], capture_output=True, text=True, timeout=10)
    assert "Reader Table Status" in cp.stdout, cp.stdout + cp.stderr
    return {int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+[0-9a-f]+\s+\d+", cp.stdout, re.M)}


def test_master_clears_stale_reader_slots_when_a_worker_dies(talas_server, library_dir):
    tf.require_tool("mdb_stat", "lmdb-utils")
    pytest.importorskip("lmdb", reason="python3-lmdb (scripts/deps installs it)")
    srv = talas_server([library_dir])
    # A process killed inside a read transaction leaves its slot behind:
    # the same thing as a worker killed in the middle of a request.
    reader = subprocess.Popen([sys.executable, "-c", READER, str(srv.storage_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        assert reader.pid in _reader_pids(srv.storage_path)
    finally:
        reader.kill()
        reader.wait()
    assert reader.pid in _reader_pids(srv.storage_path), "the dead reader's slot should still be taken"

    victim = srv.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    tf.wait_for(lambda: "stale LMDB reader slot" in srv.error_log.read_text(), 5,
                what="the master to clear stale reader slots")
    assert reader.pid not in _reader_pids(srv.storage_path)
    assert re.search(r"cleared \d+ stale LMDB reader slot", srv.error_log.read_text())
    # and the service is whole again
    tf.wait_for(lambda: len(srv.worker_pids()) == srv.workers and victim not in srv.worker_pids(), 5,
                what="the worker to be replaced")
    assert srv.get("/api/health")[0] == 200
