"""Bad files in the library and hostile requests on the wire.

A library mixing good files, unplayable ones and Latin-1 tagged MP3s must
scan to the end, list exactly the playable tracks (with UTF-8 titles), and
report every failure with its reason.  Malformed or hostile requests get a
clean 4xx (or, for hopeless garbage, a closed connection), never a 5xx, and
never take a worker down: the worker pids are the same at the end.
"""

import http.client
import json
import os
import random
import re
import socket
import struct
from urllib.parse import quote

import pytest

import talas_fixtures as tf

JSON_TYPE = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """(server, {name: path}) over a library of good and bad files."""
    root = tmp_path_factory.mktemp("badlib")
    files = dict(tf.make_library(root / "good"))
    files.update(tf.make_bad_files(root / "bad"))
    srv = tf.TalasServer(tmp_path_factory.mktemp("badsrv"), [root], workers=2)
    try:
        srv.start(wait_scan=True)
        srv.initial_pids = srv.worker_pids()
        yield srv, files
    finally:
        srv.kill()


@pytest.fixture
def srv(bad):
    return bad[0]


def expected_titles():
    return ({t[1] for t in tf.LIBRARY_TRACKS.values()}
            | {t[1] for t in tf.LATIN1_FILES.values()})


def assert_alive(srv):
    st, _, body = srv.get("/api/health")
    assert st == 200 and json.loads(body)["status"] == "ok"
    assert srv.running(), "talas-master exited"


# ------------------------------------------------------------ the library

def test_scan_completes_with_errors_counted(srv):
    scan = srv.health()["scan"]
    assert scan["running"] is False and scan["finished_at"] > 0
    assert scan["tracks"] == len(expected_titles())
    assert scan["errors"] == len(tf.BAD_FILES)


def test_only_playable_tracks_listed(srv):
    st, hdrs, body = srv.get("/api/tracks?limit=1000")
    assert st == 200
    doc = json.loads(body.decode("utf-8"))  # strict: must be valid UTF-8
    assert {t["title"] for t in doc["tracks"]} == expected_titles()
    assert doc["total"] == len(expected_titles())
    assert all(t["size"] > 0 and t["duration_ms"] > 0 for t in doc["tracks"])


@pytest.mark.parametrize("name", list(tf.LATIN1_FILES))
def test_latin1_tags_become_utf8(srv, name):
    _rel, title, artist = tf.LATIN1_FILES[name]
    st, _, raw = srv.get("/api/tracks?q=" + quote(title))
    assert st == 200
    raw.decode("utf-8")  # raises on invalid UTF-8
    t = srv.track_by_title(title)
    assert t is not None, f"no track titled {title!r}: {[x['title'] for x in srv.tracks()]}"
    assert t["artist"] == artist
    assert t["album"] == "Été"
    st, _, one = srv.get(f"/api/tracks/{t['id']}")
    assert st == 200 and json.loads(one.decode("utf-8"))["title"] == title


def test_talasctl_lists_errors_with_reasons(srv, bad):
    _, files = bad
    cp = srv.talasctl("tracks", "--errors", timeout=30)
    assert cp.returncode == 0, cp.stderr
    lines = [l for l in cp.stdout.splitlines() if l.strip()]
    for name in tf.BAD_FILES:
        path = str(files[name])
        hits = [l for l in lines if path in l or files[name].name in l]
        assert len(hits) == 1, f"{name}: {path} not (or more than once) in:\n{cp.stdout}"
        reason = re.sub(r"\S*" + re.escape(files[name].name), "", hits[0]).strip(" \t:-")
        assert len(reason) >= 3, f"{name}: no reason given: {hits[0]!r}"
    for name in list(tf.LIBRARY_TRACKS) + list(tf.LATIN1_FILES):
        assert files[name].name not in cp.stdout, f"good file {name} listed as an error"
    assert len(lines) == len(tf.BAD_FILES), cp.stdout


def test_talasctl_tracks_lists_only_good(srv):
    cp = srv.talasctl("tracks", timeout=30)
    assert cp.returncode == 0, cp.stderr
    lines = [l for l in cp.stdout.splitlines() if l.strip()]
    titles = {l.split("\t")[3] for l in lines}
    assert titles == expected_titles()


def test_non_ascii_path_streams(srv, bad):
    _, files = bad
    t = srv.track_by_title(tf.LIBRARY_TRACKS["unicode"][1])
    assert t is not None
    st, hdrs, body = srv.get(f"/stream/{t['id']}")
    assert st == 200
    assert hdrs["Content-Type"] == "audio/mpeg"
    assert body == files["unicode"].read_bytes()
    st, hdrs, body = srv.get(f"/stream/{t['id']}", {"Range": "bytes=10-19"})
    assert (st, body) == (206, files["unicode"].read_bytes()[10:20])


# ----------------------------------------------------------- the wire

def raw_status(srv, data, timeout=5):
    """(status or None, bytes received); fails if the server neither
    answered nor closed the connection within TIMEOUT."""
    out, how = tf.raw_exchange_ex(srv.port, data, timeout=timeout)
    status = tf.parse_status_line(out)
    assert status is not None or how == "closed", \
        f"no answer and connection left open after {timeout}s: {out[:200]!r}"
    return status, out


GARBAGE = [
    ("garbage", b"garbage\r\n\r\n", ()),
    ("binary", bytes(range(256)) * 4 + b"\r\n\r\n", ()),
    ("empty lines", b"\r\n\r\n\r\n\r\n" + b"x" * 10 + b"\r\n\r\n", ()),
    ("missing version", b"GET /api/health\r\nHost: a\r\n\r\n", ()),
    ("missing path", b"GET HTTP/1.1\r\nHost: a\r\n\r\n", ()),
    # 505 is a precise protocol answer, not a server fault: allowed here only.
    ("HTTP/9.9", b"GET /api/health HTTP/9.9\r\nHost: a\r\n\r\n", (505,)),
    ("HTTP/1.x", b"GET /api/health HTTP/1.x\r\nHost: a\r\n\r\n", ()),
    ("lowercase version", b"GET /api/health http/1.1\r\nHost: a\r\n\r\n", ()),
    ("NUL in path", b"GET /api/\x00health HTTP/1.1\r\nHost: a\r\n\r\n", ()),
    ("NUL in method", b"G\x00T /api/health HTTP/1.1\r\nHost: a\r\n\r\n", ()),
    ("NUL in header name", b"GET /api/health HTTP/1.1\r\nHo\x00st: a\r\n\r\n", ()),
    # RFC 9112 5.: a NUL in a field value is rejected or replaced by SP.
    ("NUL in header value", b"GET /api/health HTTP/1.1\r\nHost: a\x00b\r\n\r\n", (200,)),
    ("header without colon", b"GET /api/health HTTP/1.1\r\nNoColonHere\r\n\r\n", ()),
    ("space before colon", b"GET /api/health HTTP/1.1\r\nHost : a\r\n\r\n", ()),
    ("negative length", b"POST /api/tracks HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ()),
    ("non-numeric length", b"POST /api/tracks HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", ()),
    ("huge length", b"POST /api/tracks HTTP/1.1\r\nHost: a\r\n"
                    b"Content-Length: 99999999999999999999999\r\n\r\n", ()),
    ("bad chunk", b"POST /api/tracks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"zz\r\nxx\r\n0\r\n\r\n", ()),
]


@pytest.mark.parametrize("label,data,also_ok", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_malformed_requests(srv, label, data, also_ok):
    status, out = raw_status(srv, data)
    assert status is None or 400 <= status < 500 or status in also_ok, \
        f"{label}: answered {out[:200]!r}"
    if status is None:
        assert out == b"", f"{label}: not an HTTP response: {out[:200]!r}"
    assert_alive(srv)


def test_100k_header_value(srv):
    req = (b"GET /api/health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (100 * 1024)
           + b"\r\n\r\n")
    status, out = raw_status(srv, req)
    # nginx refuses anything over 8 KB per line by default; a server that
    # buffers 100 KB per header for every client is easy to exhaust.
    assert status in (400, 431), f"a 100 KB header got {out[:120]!r} (expected 431)"
    assert_alive(srv)


def test_many_headers_100k(srv):
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
    status, out = raw_status(srv, b"GET /api/health HTTP/1.1\r\nHost: a\r\n" + hdrs + b"\r\n")
    assert status in (400, 431), out[:200]
    assert_alive(srv)


def test_1mb_header_line(srv):
    req = b"GET /api/health HTTP/1.1\r\nX-Huge: " + b"b" * (1024 * 1024) + b"\r\n\r\n"
    status, out = raw_status(srv, req, timeout=10)
    # The server may answer 431/400 or drop the connection mid-upload (then
    # the reset can eat its answer); it must not answer 2xx/5xx.
    assert status is None or status in (400, 431), out[:200]
    assert_alive(srv)


def test_1mb_request_line(srv):
    req = b"GET /" + b"c" * (1024 * 1024) + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    status, out = raw_status(srv, req, timeout=10)
    assert status is None or status in (400, 414, 431), out[:200]
    assert_alive(srv)


def test_slow_garbage_then_close(srv):
    """A client that sends half a request line and goes away."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /api/hea")
    assert_alive(srv)


def _ids(srv):
    t = srv.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])
    assert t is not None
    return t["id"]


def hostile_paths(good_id):
    return [
        "/stream/..%2F..%2Fetc%2Fpasswd",
        "/stream/../../etc/passwd",
        "/stream/%2e%2e/%2e%2e/etc/passwd",
        "/stream/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/stream/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/api/tracks/..",
        "/api/tracks/%2e%2e",
        "/api/tracks/..%2F..%2F..%2Fetc%2Fpasswd",
        "/stream/AAAAAAA/AAAAAAAA",            # 16 characters with a '/'
        "/stream/AAAAAAA%2FAAAAAAAA",          # 16 once decoded, with a '/'
        "/stream/%2e%2eAAAAAAAAAAAAAA",        # 16 once decoded, with '..'
        "/stream/" + good_id[:15] + "%2e",     # 16 once decoded
        "/stream/" + good_id[:15] + "%00",
        "/stream/" + good_id[:15] + "%",
        "/stream/" + good_id[:14] + "%zz",
        "/stream/" + good_id + "%00",
        "/stream/" + good_id + "/../../../etc/passwd",
        "/stream/" + "A" * 4000,
        "/api/tracks/" + good_id[:15] + "%C3%A9",
        "/api/tracks/%FF%FE%FD%FC%FB%FA%F9%F8%F7%F6%F5%F4%F3%F2%F1%F0",
        "/api/tracks?limit=-1",
        "/api/tracks?limit=abc",
        "/api/tracks?offset=-5",
        "/api/tracks?limit=99999999999999999999999",
        "/api/tracks?q=%FF%FE",
        "/api/tracks?q=%",
    ]


def test_hostile_paths(srv):
    good = _ids(srv)
    bad_answers = []
    for path in hostile_paths(good):
        st, hdrs, body = srv.get(path)
        ok = 400 <= st < 500
        # Query parameters that are out of range may be clamped: a 200 with
        # a valid listing is acceptable there, a 5xx never is.
        if path.startswith("/api/tracks?") and st == 200:
            doc = json.loads(body)
            ok = isinstance(doc.get("tracks"), list)
        if b"root:" in body:
            ok = False
        if ok and st >= 400:
            ok = hdrs["Content-Type"] == JSON_TYPE and "error" in json.loads(body)
        if not ok:
            bad_answers.append((path, st, body[:120]))
    assert bad_answers == []
    assert_alive(srv)


def test_query_values_with_a_nul_byte_are_refused(srv):
    """A %00 in a query value is a 400, not a value cut at the NUL: "t=1%00x"
    is not "t=1", "limit=5%00" is not "limit=5"."""
    good = _ids(srv)
    for path in (f"/stream/{good}?t=1%00x", f"/stream/{good}?t=1%00", f"/stream/{good}?format=mp3%00x",
                 f"/stream/{good}?profile=high%00", f"/stream/{good}?format=mp3&bitrate=128%00",
                 f"/stream/{good}?profile=%",
                 "/api/tracks?limit=5%00", "/api/tracks?q=a%00b", f"/api/tracks/{good}/peaks?points=64%00"):
        st, hdrs, body = srv.get(path)
        assert st == 400, (path, st, body[:200])
        assert hdrs["Content-Type"] == JSON_TYPE and "error" in json.loads(body), (path, body[:200])
    # the same values without the NUL are accepted
    for path in ("/api/tracks?limit=5", f"/api/tracks/{good}/peaks?points=64"):
        st, _, body = srv.get(path)
        assert st == 200, (path, st, body[:200])
    assert_alive(srv)


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/stream/{id}"),
    ("PUT", "/api/tracks/{id}"),
    ("POST", "/api/health"),
])
def test_wrong_method_is_405_json(srv, method, path):
    st, hdrs, body = srv.get(path.format(id=_ids(srv)), method=method, body=b"")
    assert st == 405, (st, body[:200])
    assert hdrs["Content-Type"] == JSON_TYPE
    assert "error" in json.loads(body)


# ------------------------------------------- files the media routes refuse

# Every route of a track that answers with something other than the file's
# own bytes (README, API): each needs the source decoded and converted.
MEDIA_ROUTES = {
    "mp3": "/stream/{id}?profile=mp3",
    "aac": "/stream/{id}?profile=high",
    "format": "/stream/{id}?format=mp3&bitrate=128",
    "t": "/stream/{id}?t=1",
    "preview": "/preview/{id}",
    "hls-master": "/hls/{id}/master.m3u8",
    "hls-playlist": "/hls/{id}/medium/playlist.m3u8",
    "hls-init": "/hls/{id}/medium/init.mp4",
    "hls-segment": "/hls/{id}/medium/0.m4s",
    "peaks": "/api/tracks/{id}/peaks",
}


# Sources that probe and scan into the catalog, but that no transcode can
# convert: name -> (channels, sample rate, frames).  No resampler mixes 64
# channels without a layout down to stereo, and 1 Hz is not an audio rate;
# the first has both faults, the others one each.
UNCONVERTIBLE = {
    "64ch-1Hz": (64, 1, 300),
    "64ch-8kHz": (64, 8000, 4000),
    "stereo-1Hz": (2, 1, 300),
}


def pcm_wav(path, channels, rate, frames):
    """A 16-bit PCM WAV of noise, its header written by hand (ffmpeg makes
    neither 64 channels without a layout nor 1 Hz)."""
    data = random_bytes(frames * channels * 2, seed=channels + rate)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                     + b"data" + struct.pack("<I", len(data)) + data)
    return path


def random_bytes(n, seed):
    rnd = random.Random(seed)
    return bytes(rnd.getrandbits(8) for _ in range(n))


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """A server over a library holding the UNCONVERTIBLE WAVs, and tracks
    whose file (or directory) is replaced after the scan by a symbolic link
    out of the library, or by a FIFO. Returns (server, ids, files)."""
    root = tmp_path_factory.mktemp("refusedlib")
    lib, outside = root / "lib", root / "outside"
    files = {name: pcm_wav(lib / f"{name}.wav", *spec) for name, spec in UNCONVERTIBLE.items()}
    files.update({"swapped": tf.make_track(lib / "swapped.flac", "Swapped", seconds=4, freq=300),
                  "piped": tf.make_track(lib / "piped.flac", "Piped", seconds=4, freq=350),
                  "subdir": tf.make_track(lib / "sub" / "deep.flac", "Deep", seconds=4, freq=400),
                  "outdir": tf.make_track(outside / "dir" / "deep.flac", "Outside deep", seconds=6),
                  "secret": tf.make_track(outside / "secret.flac", "Secret", seconds=5, freq=900)})
    srv = tf.TalasServer(tmp_path_factory.mktemp("refusedsrv"), [lib], workers=2)
    try:
        srv.start(wait_scan=True)
        tracks = srv.tracks()
        ids = {name: srv.track_by_title(title)["id"]
               for name, title in (("swapped", "Swapped"), ("piped", "Piped"), ("subdir", "Deep"))}
        for name, (channels, rate, _) in UNCONVERTIBLE.items():
            t = [t for t in tracks if (t.get("channels"), t.get("sample_rate")) == (channels, rate)]
            assert len(t) == 1, f"{name} did not scan as a track: {tracks}"
            ids[name] = t[0]["id"]
        # after the scan: a file becomes a link out of the library, a
        # directory too, and a file becomes a FIFO nobody writes to
        link = lib / ".swap.tmp"
        os.symlink(files["secret"], link)
        os.replace(link, files["swapped"])
        os.rename(lib / "sub", root / "sub.old")
        os.symlink(outside / "dir", lib / "sub")
        os.mkfifo(link)
        os.replace(link, files["piped"])
        yield srv, ids, files
    finally:
        srv.kill()


def media_get(srv, path, method="GET"):
    """(status, headers, body); a response cut after its headers fails the
    test: the answer had to be decided before them."""
    try:
        return srv.get(path, method=method, timeout=60)
    except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError) as e:
        raise AssertionError(f"{method} {path}: the response was cut after its headers "
                             f"({e!r}): it should have been an error") from None


def assert_json_error(h, body, method, code):
    assert h["Content-Type"] == JSON_TYPE, h["Content-Type"]
    if method == "GET":
        assert json.loads(body)["error"]["code"] == code, body[:300]
    else:
        assert body == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("route", list(MEDIA_ROUTES))
@pytest.mark.parametrize("source", list(UNCONVERTIBLE))
def test_undecodable_source_is_422_on_every_transcoding_route(refused, source, route, method):
    srv, ids, _ = refused
    path = MEDIA_ROUTES[route].format(id=ids[source])
    for _ in range(2):  # the second is answered from what the first learnt
        st, h, body = media_get(srv, path, method)
        assert st == 422, (method, path, st, h["Content-Type"], body[:200])
        assert_json_error(h, body, method, "undecodable")


@pytest.mark.parametrize("source", list(UNCONVERTIBLE))
def test_undecodable_source_is_checked_once_and_never_encoded(refused, source):
    srv, ids, files = refused
    for path in MEDIA_ROUTES.values():
        for _ in range(3):
            st, _, _ = media_get(srv, path.format(id=ids[source]))
            assert st == 422, path
    log = tf.read_text(srv.error_log, limit=10 ** 7).splitlines()
    # each worker checked it once for the transcodes and once for the
    # peaks, remembered the verdict, and never started an encoder on it
    measured = [l for l in log if "measuring" in l and str(files[source]) in l]
    assert 1 <= len(measured) <= 2, measured
    peaks = [l for l in log if f"peaks of {ids[source]}" in l]
    assert 1 <= len(peaks) <= 2, peaks
    encoded = [l for l in log if ids[source] in l and ("chunk" in l or "aborted" in l)]
    assert encoded == []
    st = srv.get_json("/api/stats")["cache"]
    assert st["transcodes_started"] == 0 and st["entries"] == 0, st


@pytest.mark.parametrize("source", list(UNCONVERTIBLE))
def test_undecodable_source_original_is_the_file_as_is(refused, source):
    srv, ids, files = refused
    st, h, body = media_get(srv, f"/stream/{ids[source]}")
    assert st == 200 and body == files[source].read_bytes()
    assert h["Content-Type"] == "audio/wav"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("route", ["original"] + list(MEDIA_ROUTES))
@pytest.mark.parametrize("swapped", ["swapped", "subdir"])
def test_file_swapped_for_a_link_out_of_the_library_is_403_on_every_media_route(refused, swapped, route,
                                                                                 method):
    """One opener for every route: the file opened must be the catalog's
    path itself, checked before any header; /stream/{id} said so alone."""
    srv, ids, files = refused
    path = (MEDIA_ROUTES.get(route) or "/stream/{id}").format(id=ids[swapped])
    outside = (files["secret"] if swapped == "swapped" else files["outdir"]).read_bytes()
    for _ in range(2):
        st, h, body = media_get(srv, path, method)
        assert st == 403, (method, path, st, h["Content-Type"], body[:200])
        assert_json_error(h, body, method, "outside_library")
        assert outside[:64] not in body


@pytest.mark.parametrize("route", ["original"] + list(MEDIA_ROUTES))
def test_file_swapped_for_a_fifo_is_404_at_once_on_every_media_route(refused, route):
    """Opening a FIFO waits for a writer: the opener must not (it runs on
    the event loop), and a FIFO is not a track's file."""
    srv, ids, _ = refused
    path = (MEDIA_ROUTES.get(route) or "/stream/{id}").format(id=ids["piped"])
    try:
        st, h, body = srv.get(path, timeout=5)
    except OSError as e:
        raise AssertionError(f"{path}: no answer within 5 s ({e!r}): the worker waits on the FIFO") \
            from None
    assert st == 404, (path, st, body[:200])
    assert_json_error(h, body, "GET", "file_missing")
    assert_alive(srv)


def test_workers_survived(srv):
    """Last in the file: nothing above crashed a worker."""
    assert_alive(srv)
    assert srv.worker_pids() == srv.initial_pids
    log = tf.read_text(srv.error_log, limit=200000)
    assert not re.search(r"killed by signal|exited with|respawn", log), log[-3000:]
