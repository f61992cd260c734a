"""The JSON API and /stream/ over HTTP/1.1, against the shared server.

What a client of the catalog would check: listing, paging, search, one
track's fields against ffprobe, error bodies, health, and the caching
headers of /stream/ (ETag, Last-Modified, 304s, HEAD).
"""

import email.utils
import json
import re
import socket
from urllib.parse import quote

import pytest

import talas_fixtures as tf

JSON_TYPE = "application/json; charset=utf-8"
ID_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")

# Listing order is path order (byte order of the paths under the library).
EXPECTED_ORDER = [t[1] for t in sorted(tf.LIBRARY_TRACKS.values(),
                                       key=lambda t: t[0].encode("utf-8"))]

CODECS = {"mp3": {"mp3"}, "flac": {"flac"}, "wav": {"pcm_s16le"},
          "ogg": {"vorbis"}, "m4a": {"aac"}, "unicode": {"mp3"}}
CONTAINERS = {"mp3": {"mp3"}, "flac": {"flac"}, "wav": {"wav"}, "ogg": {"ogg"},
              "m4a": {"mp4", "m4a"}, "unicode": {"mp3"}}


def get_json(server, path, expect=200):
    st, hdrs, body = server.get(path)
    assert st == expect, f"GET {path}: {st} {body[:300]!r}"
    assert hdrs["Content-Type"] == JSON_TYPE, f"GET {path}: {hdrs['Content-Type']}"
    return json.loads(body.decode("utf-8"))


@pytest.fixture(scope="module")
def ids(server):
    """{library name: track id}"""
    out = {}
    for name, (_rel, title, *_r) in tf.LIBRARY_TRACKS.items():
        t = server.track_by_title(title)
        assert t is not None, f"track {title!r} missing from /api/tracks"
        out[name] = t["id"]
    return out


def test_health(server):
    h = get_json(server, "/api/health")
    assert h["status"] == "ok"
    assert h["version"] == tf.VERSION
    assert isinstance(h["pid"], int)
    assert h["pid"] in server.worker_pids(), (h["pid"], server.worker_pids())
    scan = h["scan"]
    assert scan["running"] is False
    assert scan["tracks"] == len(tf.LIBRARY_TRACKS)
    assert scan["errors"] == 0
    assert isinstance(scan["finished_at"], int) and scan["finished_at"] > 0


def test_health_answered_by_every_worker(server):
    """Fresh connections are spread over the workers: both answer."""
    seen = set()
    for _ in range(200):
        seen.add(get_json(server, "/api/health")["pid"])
        if len(seen) == 2:
            break
    assert seen == set(server.worker_pids())


# config.c's default ladder, as GET /api/profiles and the sessions write it.
DEFAULT_PROFILES = [
    {"quality_id": "high", "bitrate_kbps": 320, "sample_rate": 44100, "channels": 2, "codec": "aac",
     "file_extension": "aac", "bandwidth_estimate_kbps": 400, "hls": True},
    {"quality_id": "medium", "bitrate_kbps": 192, "sample_rate": 44100, "channels": 2, "codec": "aac",
     "file_extension": "aac", "bandwidth_estimate_kbps": 250, "hls": True},
    {"quality_id": "low", "bitrate_kbps": 128, "sample_rate": 22050, "channels": 2, "codec": "mp3",
     "file_extension": "mp3", "bandwidth_estimate_kbps": 160, "hls": False},
    {"quality_id": "mobile", "bitrate_kbps": 96, "sample_rate": 22050, "channels": 2, "codec": "aac",
     "file_extension": "aac", "bandwidth_estimate_kbps": 120, "hls": True},
    {"quality_id": "mp3", "bitrate_kbps": 192, "sample_rate": 44100, "channels": 2, "codec": "mp3",
     "file_extension": "mp3", "bandwidth_estimate_kbps": 240, "hls": False},
]

# A ladder of its own, out of bitrate order: the answer keeps the
# configured order, fills the defaults (sample_rate, channels, hls from
# the codec, bandwidth_estimate = bitrate + a quarter) and keeps what
# the file sets.
CUSTOM_LADDER_YAML = """transcode:
  profiles:
    - {name: tiny, codec: mp3, bitrate: 64, sample_rate: 22050, channels: 1}
    - {name: studio, codec: aac, bitrate: 256, bandwidth_estimate: 999}
    - {name: radio, codec: aac, bitrate: 48, sample_rate: 32000, hls: false}
"""
CUSTOM_PROFILES = [
    {"quality_id": "tiny", "bitrate_kbps": 64, "sample_rate": 22050, "channels": 1, "codec": "mp3",
     "file_extension": "mp3", "bandwidth_estimate_kbps": 80, "hls": False},
    {"quality_id": "studio", "bitrate_kbps": 256, "sample_rate": 44100, "channels": 2, "codec": "aac",
     "file_extension": "aac", "bandwidth_estimate_kbps": 999, "hls": True},
    {"quality_id": "radio", "bitrate_kbps": 48, "sample_rate": 32000, "channels": 2, "codec": "aac",
     "file_extension": "aac", "bandwidth_estimate_kbps": 60, "hls": False},
]


def test_profiles_default_ladder(server):
    assert get_json(server, "/api/profiles") == {"profiles": DEFAULT_PROFILES}
    st, hdrs, body = server.get("/api/profiles", method="HEAD")
    assert st == 200 and body == b""
    st, hdrs, _ = server.get("/api/profiles", method="POST", body=b"{}")
    assert st == 405 and hdrs["Allow"] == "GET, HEAD"


def test_profiles_configured_ladder_open_with_auth_required(talas_server, library_dir, tmp_path):
    """The configured ladder, in its order; with auth.required it is open
    like /api/health (the web player builds its menu before any token),
    while media routes still want one."""
    secret = tmp_path / "hs256.secret"
    secret.write_bytes(b"k" * 43 + b"\n")
    secret.chmod(0o600)
    auth = f"auth:\n  required: true\n  algorithm: HS256\n  secret_file: {json.dumps(str(secret))}\n"
    srv = talas_server([library_dir], start=False, extra_yaml=CUSTOM_LADDER_YAML)
    srv.write_config(srv.config_text().replace("auth:\n  required: false\n", auth))
    srv.start()
    for _ in range(4):  # every worker answers with the same ladder
        assert get_json(srv, "/api/profiles") == {"profiles": CUSTOM_PROFILES}
    track = get_json(srv, "/api/tracks")["tracks"][0]["id"]
    st, _, _ = srv.get(f"/stream/{track}")
    assert st == 401


def test_list_all(server):
    doc = get_json(server, "/api/tracks")
    assert doc["total"] == len(tf.LIBRARY_TRACKS)
    titles = [t["title"] for t in doc["tracks"]]
    assert titles == EXPECTED_ORDER
    ids = [t["id"] for t in doc["tracks"]]
    assert all(ID_RE.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_ids_are_stable_across_requests(server):
    a = [t["id"] for t in get_json(server, "/api/tracks")["tracks"]]
    b = [t["id"] for t in get_json(server, "/api/tracks")["tracks"]]
    assert a == b


def test_paging(server):
    full = get_json(server, "/api/tracks")["tracks"]
    n = len(full)
    pages = []
    for off in range(0, n, 2):
        doc = get_json(server, f"/api/tracks?limit=2&offset={off}")
        assert doc["total"] == n
        assert len(doc["tracks"]) == min(2, n - off)
        pages += doc["tracks"]
    assert pages == full
    doc = get_json(server, f"/api/tracks?limit=10&offset={n - 1}")
    assert doc["total"] == n and doc["tracks"] == full[-1:]
    doc = get_json(server, "/api/tracks?limit=10&offset=100")
    assert (doc["tracks"], doc["total"]) == ([], n)
    doc = get_json(server, "/api/tracks?limit=1")
    assert doc["tracks"] == full[:1] and doc["total"] == n


@pytest.mark.parametrize("q,expected", [
    ("sine", ["Sine MP3", "Sine FLAC", "Sine WAV", "Sine Vorbis", "Sine AAC"]),
    ("SINE", ["Sine MP3", "Sine FLAC", "Sine WAV", "Sine Vorbis", "Sine AAC"]),
    ("vorbis", ["Sine Vorbis"]),
    ("ine fl", ["Sine FLAC"]),
    ("talas FIXTURES", ["Sine MP3", "Sine FLAC", "Sine WAV", "Sine Vorbis", "Sine AAC"]),
    ("test tones", ["Sine MP3", "Sine FLAC", "Sine WAV", "Sine Vorbis", "Sine AAC"]),
    ("ARTISTE é", ["Chanson ü"]),          # artist, UTF-8 in the query
    ("album à", ["Chanson ü"]),            # album
    ("Chanson ü", ["Chanson ü"]),          # title
    ("no such thing", []),
])
def test_search(server, q, expected):
    doc = get_json(server, "/api/tracks?q=" + quote(q))
    got = [t["title"] for t in doc["tracks"]]
    assert sorted(got) == sorted(expected)
    assert got == [t for t in EXPECTED_ORDER if t in expected]  # path order
    assert doc["total"] == len(expected)


def test_search_with_paging(server):
    doc = get_json(server, "/api/tracks?q=sine&limit=2&offset=1")
    assert doc["total"] == 5
    sines = [t for t in EXPECTED_ORDER if t.startswith("Sine")]
    assert [t["title"] for t in doc["tracks"]] == sines[1:3]


@pytest.mark.parametrize("name", list(tf.LIBRARY_TRACKS))
def test_one_track(server, library, ids, name):
    rel, title, artist, album, *_ = tf.LIBRARY_TRACKS[name]
    t = get_json(server, f"/api/tracks/{ids[name]}")
    listed = [x for x in get_json(server, "/api/tracks")["tracks"] if x["id"] == ids[name]]
    # one track also says which song it is a version of (none here)
    assert (t.pop("song_id"), t.pop("version"), t.pop("versions")) == (None, None, [])
    assert listed == [t]
    for k in ("id", "title", "artist", "album", "codec", "container"):
        assert isinstance(t[k], str), (k, t[k])
    for k in ("duration_ms", "sample_rate", "channels", "bit_rate", "size"):
        assert isinstance(t[k], int) and not isinstance(t[k], bool), (k, t[k])
    assert (t["title"], t["artist"], t["album"]) == (title, artist, album)
    assert t["codec"] in CODECS[name], t["codec"]
    assert t["container"] in CONTAINERS[name], t["container"]
    assert t["sample_rate"] == 44100
    assert t["channels"] == 1
    assert t["size"] == library[name].stat().st_size
    ref = tf.ffprobe_duration_ms(library[name])
    assert abs(t["duration_ms"] - ref) <= 100, (t["duration_ms"], ref)
    if name == "mp3":
        assert 120000 <= t["bit_rate"] <= 136000, t["bit_rate"]
    else:
        assert t["bit_rate"] > 0


@pytest.mark.parametrize("path", [
    "/api/tracks/AAAAAAAAAAAAAAAA",
    "/api/tracks/zzzzzzzzzzzzzzzz",
    "/api/tracks/short",
    "/api/tracks/AAAAAAAAAAAAAAAAA",    # 17 characters
    "/api/tracks/AAAAAAAA%21AAAAAAA",  # '!' is not in the id alphabet
    "/stream/AAAAAAAAAAAAAAAA",
    "/stream/short",
    "/api/nothing-here",
])
def test_not_found_is_json(server, path):
    st, hdrs, body = server.get(path)
    assert st == 404, (path, st, body[:200])
    assert hdrs["Content-Type"] == JSON_TYPE
    doc = json.loads(body)
    assert doc["error"]["code"] == "not_found"
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert int(hdrs["Content-Length"]) == len(body)


@pytest.mark.parametrize("name", list(tf.LIBRARY_TRACKS))
def test_stream_full(server, library, ids, name):
    ctype = tf.LIBRARY_TRACKS[name][6]
    data = library[name].read_bytes()
    st, hdrs, body = server.get(f"/stream/{ids[name]}")
    assert st == 200
    assert hdrs["Content-Type"] == ctype
    assert int(hdrs["Content-Length"]) == len(data)
    assert body == data
    assert hdrs["Accept-Ranges"] == "bytes"
    assert hdrs["Cache-Control"], "Cache-Control missing"
    assert re.match(r'^(W/)?"[^"]+"$', hdrs["ETag"] or ""), hdrs["ETag"]
    mtime = library[name].stat().st_mtime
    assert hdrs["Last-Modified"] == email.utils.formatdate(int(mtime), usegmt=True)


def test_etag_differs_between_tracks(server, ids):
    etags = {server.get(f"/stream/{i}", method="HEAD")[1]["ETag"] for i in ids.values()}
    assert len(etags) == len(ids)


def _raw_head_then_get(port, path):
    """HEAD then GET /api/health pipelined on one connection: the bytes that
    follow the HEAD's header block must be the next response, not a body."""
    req = (f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
           f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req.encode("latin-1"))
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.parametrize("name", ["mp3", "flac", "m4a"])
def test_head_matches_get(server, ids, name):
    path = f"/stream/{ids[name]}"
    gst, ghdrs, gbody = server.get(path)
    hst, hhdrs, hbody = server.get(path, method="HEAD")
    assert (hst, hbody) == (gst, b"")
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified",
              "Accept-Ranges", "Cache-Control"):
        assert hhdrs[k] == ghdrs[k], k
    raw = _raw_head_then_get(server.port, path)
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200"), raw[:200]
    assert rest.startswith(b"HTTP/1.1 200"), f"HEAD sent a body: {rest[:80]!r}"


def test_conditional_requests(server, library, ids):
    path = f"/stream/{ids['mp3']}"
    st, hdrs, _ = server.get(path, method="HEAD")
    etag, lm = hdrs["ETag"], hdrs["Last-Modified"]
    mtime = int(library["mp3"].stat().st_mtime)

    st, h, body = server.get(path, {"If-None-Match": etag})
    assert (st, body) == (304, b"")
    assert h["ETag"] == etag

    st, _, body = server.get(path, {"If-None-Match": f'"nope", {etag}'})
    assert (st, body) == (304, b"")

    st, _, body = server.get(path, {"If-None-Match": "*"})
    assert (st, body) == (304, b"")

    st, _, body = server.get(path, {"If-None-Match": '"nope"'})
    assert st == 200 and body == library["mp3"].read_bytes()

    st, _, body = server.get(path, {"If-Modified-Since": lm})
    assert (st, body) == (304, b"")

    earlier = email.utils.formatdate(mtime - 86400, usegmt=True)
    st, _, body = server.get(path, {"If-Modified-Since": earlier})
    assert st == 200 and len(body) == library["mp3"].stat().st_size

    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    st, _, _ = server.get(path, {"If-None-Match": '"nope"', "If-Modified-Since": lm})
    assert st == 200

    st, _, body = server.get(path, {"If-None-Match": etag}, method="HEAD")
    assert (st, body) == (304, b"")
