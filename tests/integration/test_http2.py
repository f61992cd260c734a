"""HTTP/2: h2c by prior knowledge, h2c by Upgrade, and h2 over TLS (ALPN).

Real clients (curl, nghttp) against a Talas with a cleartext listener and a
TLS listener whose certificate is made here for 127.0.0.1.  Each transport
is checked with a full download (hash) and a Range request (206, bytes).
A file cut under a slow HTTP/2 download ends its stream short (reset), and
the worker serves the shorter file next.
"""

import hashlib
import os
import re
import subprocess
import time

import pytest

import talas_fixtures as tf

RANGE = (1000, 4999)  # inclusive


@pytest.fixture(scope="module")
def h2(library_dir, library, tmp_path_factory):
    tf.require_tool("curl", "curl")
    tf.require_tool("nghttp", "nghttp2-client")
    tf.require_tool("openssl", "openssl")
    work = tmp_path_factory.mktemp("h2")
    cert, key = tf.make_tls_cert(work)
    srv = tf.TalasServer(work / "talas", [library_dir], workers=2, tls=(cert, key))
    try:
        srv.start(wait_scan=True)
        t = srv.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])
        assert t is not None
        data = library["mp3"].read_bytes()
        yield srv, f"/stream/{t['id']}", data
    finally:
        srv.kill()


def curl(args, out, timeout=30, upgrade_via=None):
    """Run curl; returns (http_version, status, size, stderr) of its last
    transfer.  UPGRADE_VIA: a small URL fetched first on the same connection
    to do the h2c Upgrade (see test_curl_full_download)."""
    url, opts = args[-1], args[:-1]
    transfers = (["-o", "/dev/null", upgrade_via] if upgrade_via else []) + ["-o", out, url]
    cp = tf.run(["curl", "-sS", "--max-time", "20",
                 "-w", "%{http_version} %{http_code} %{size_download} %{num_connects}\n"] + opts + transfers,
                timeout=timeout, check=False)
    assert cp.returncode == 0, f"curl {opts + transfers} exited {cp.returncode}: {cp.stderr}"
    lines = cp.stdout.splitlines()
    assert len(lines) == (2 if upgrade_via else 1), cp.stdout
    if upgrade_via:
        assert lines[0].split()[:2] == ["2", "200"], f"the Upgrade request: {lines[0]}"
        assert lines[1].split()[3] == "0", f"download not on the upgraded connection: {lines}"
    version, code, size, _connects = lines[-1].split()
    return version, int(code), int(size), cp.stderr


def sha(b):
    return hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("mode", ["prior-knowledge", "upgrade", "tls"])
def test_curl_full_download(h2, tmp_path, mode):
    srv, path, data = h2
    out = tmp_path / "body"
    if mode == "prior-knowledge":
        args = ["--http2-prior-knowledge", srv.base_url + path]
    elif mode == "upgrade":
        args = ["--http2", srv.base_url + path]
    else:
        args = ["--http2", "-k", srv.tls_base_url + path]
    # curl 7.88 cannot take more than 32 KB arriving right behind the 101
    # response ("connection buffer size is too small to store data following
    # HTTP Upgrade response header"; h2o's own file handler trips it too), so
    # the Upgrade is done by a small request and the download follows on the
    # same, now HTTP/2, connection.
    via = srv.base_url + "/api/health" if mode == "upgrade" else None
    version, code, size, _ = curl(args, out, upgrade_via=via)
    assert (version, code, size) == ("2", 200, len(data))
    assert sha(out.read_bytes()) == sha(data)


@pytest.mark.parametrize("mode", ["prior-knowledge", "upgrade", "tls"])
def test_curl_range(h2, tmp_path, mode):
    srv, path, data = h2
    out = tmp_path / "body"
    a, b = RANGE
    hdr = ["-H", f"Range: bytes={a}-{b}", "-D", str(tmp_path / "headers")]
    if mode == "prior-knowledge":
        args = ["--http2-prior-knowledge", srv.base_url + path]
    elif mode == "upgrade":
        # The Upgrade request itself carries the Range; its response comes
        # back on stream 1 over HTTP/2.
        args = ["--http2", srv.base_url + path]
    else:
        args = ["--http2", "-k", srv.tls_base_url + path]
    version, code, size, _ = curl(hdr + args, out)
    assert (version, code, size) == ("2", 206, b - a + 1)
    assert out.read_bytes() == data[a:b + 1]
    headers = (tmp_path / "headers").read_text().lower()
    assert f"content-range: bytes {a}-{b}/{len(data)}" in headers


def test_curl_tls_http11_fallback(h2, tmp_path):
    """Without h2 in ALPN the TLS listener still speaks HTTP/1.1."""
    srv, path, data = h2
    out = tmp_path / "body"
    version, code, size, _ = curl(["--http1.1", "-k", srv.tls_base_url + path], out)
    assert (version, code, size) == ("1.1", 200, len(data))
    assert out.read_bytes() == data


def nghttp(args, timeout=30):
    cp = tf.run(["nghttp", "-t", "20"] + args, timeout=timeout, check=False)
    return cp


def statuses(verbose):
    return re.findall(r":status: (\d+)", verbose)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_nghttp(h2, tls):
    srv, path, data = h2
    url = (srv.tls_base_url if tls else srv.base_url) + path
    cp = nghttp(["-nv", url])
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr
    assert statuses(cp.stdout) == ["200"], cp.stdout[-2000:]
    assert "GOAWAY" not in cp.stdout or "error_code=NO_ERROR" in cp.stdout
    if tls:
        assert "The negotiated protocol: h2" in cp.stdout
    # Body through nghttp (no -n): exactly the file.
    body = tf.subprocess.run(["nghttp", "-t", "20", url], capture_output=True,
                             timeout=30).stdout
    assert sha(body) == sha(data)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_nghttp_range(h2, tls):
    srv, path, data = h2
    a, b = RANGE
    url = (srv.tls_base_url if tls else srv.base_url) + path
    cp = nghttp(["-nv", "-H", f"range: bytes={a}-{b}", url])
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr
    assert statuses(cp.stdout) == ["206"]
    assert f"content-range: bytes {a}-{b}/{len(data)}" in cp.stdout
    body = tf.subprocess.run(["nghttp", "-t", "20", "-H", f"range: bytes={a}-{b}", url],
                             capture_output=True, timeout=30).stdout
    assert body == data[a:b + 1]


def test_nghttp_upgrade(h2):
    srv, path, data = h2
    cp = nghttp(["-nvu", srv.base_url + path])
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr
    assert "HTTP Upgrade response" in cp.stdout, cp.stdout[-2000:]
    assert statuses(cp.stdout) == ["200"]


def test_nghttp_many_streams_one_connection(h2):
    """Several concurrent streams on one connection all complete."""
    srv, path, data = h2
    urls = [srv.base_url + p for p in
            ("/api/health", "/api/tracks?limit=2", path, path, "/api/tracks/AAAAAAAAAAAAAAAA")]
    cp = nghttp(["-nv", "-m", "3"] + urls)
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr
    st = statuses(cp.stdout)
    assert sorted(st) == sorted(["200"] * 3 * 4 + ["404"] * 3), st


def test_file_truncated_under_an_http2_download(talas_server, tmp_path):
    # HTTP/2 pulls the body straight into the connection's write buffer.
    # A file cut under a slow download must end the stream (RST_STREAM,
    # fewer bytes than its length), never pad it or spin, and the worker
    # goes on serving: the next download is the new, shorter file.
    tf.require_tool("curl", "curl")
    lib = tmp_path / "lib"
    lib.mkdir()
    big = tf.make_big_wav(lib / "big.wav", seconds=120)  # ~21 MB
    size0 = big.stat().st_size
    srv = talas_server([lib], workers=2)
    t = srv.track_by_title("Big WAV")
    pids = srv.worker_pids()
    out = tmp_path / "body"
    url = f"{srv.base_url}/stream/{t['id']}"
    proc = subprocess.Popen(["curl", "-sS", "--http2-prior-knowledge", "--limit-rate", "400k",
                             "--max-time", "120", "-w", "%{http_version} %{http_code} %{size_download}",
                             "-o", str(out), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tf.wait_for(lambda: out.exists() and out.stat().st_size > 1_000_000, 30, what="the download to start")
        os.truncate(big, 2_000_000)
        stdout, stderr = proc.communicate(timeout=100)
    finally:
        if proc.poll() is None:
            proc.kill()
    version, code, got = stdout.split()
    assert (version, code) == ("2", "200")
    # cut short, and said so: curl reports the stream's reset
    assert proc.returncode != 0 and int(got) < size0, (proc.returncode, got, size0, stderr)
    with open(out, "rb") as f, open(lib / "big.wav", "rb") as g:
        assert f.read(100_000) == g.read(100_000)
    assert srv.worker_pids() == pids
    assert "file truncated" in srv.error_log.read_text()
    time.sleep(1.1)  # the file cache keeps an open file one second
    version, code, size, _ = curl(["--http2-prior-knowledge", url], tmp_path / "again")
    assert (version, code, size) == ("2", 200, 2_000_000)
    assert (tmp_path / "again").read_bytes() == big.read_bytes()
