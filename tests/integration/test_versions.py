"""Versions of a song: tracks in one folder whose file names share a base
and carry a version suffix ("song v1.wav", "song_v2.flac", "song (v3).mp3",
"song - final.wav") are grouped by the scanner into one song.

Against a real talas-master on a library generated with ffmpeg:

- every documented form groups, in the documented order (the original
  without a suffix first, numbers numerically, final last); the names that
  must not group do not (a longer base, a version alone, another folder,
  another base);
- GET /api/songs/{id} lists the versions in order with their dates;
  GET /api/tracks/{id} carries song_id, version and versions;
- PUT /api/tracks/{id}/version-of (backend key only) links a track to a
  song or to another track, overriding the names; refusals have their
  status and JSON error;
- all of it survives a restart and a rescan;
- a version that arrives in the library is published on /api/ws as
  TrackVersionAdded.
"""

import asyncio
import json
import time

import pytest

import auth_keys as ak
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

WAV = ["-c:a", "pcm_s16le"]
CODEC = {".wav": WAV, ".flac": ["-c:a", "flac"], ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
         ".ogg": ["-c:a", "libvorbis"]}

# name -> the label it has in its song, or None when it must not group
GROUPED = {
    "song.wav": None,          # the original: in the song, with no label
    "song v1.wav": "v1",
    "song_v2.flac": "v2",
    "song (v3).mp3": "v3",
    "Song V10.mp3": "v10",     # upper-case V and base: same song, numerically after v3
    "song - final.wav": "final",
}
ORDER = ["song.wav", "song v1.wav", "song_v2.flac", "song (v3).mp3", "Song V10.mp3", "song - final.wav"]
DEMO = ["demo-v1.ogg", "demo_(v2).ogg"]
ALONE = ["songbird.wav", "v1.wav", "other v1.mp3", "songv2.wav"]


def make(path, seconds=1, freq=440):
    path.parent.mkdir(parents=True, exist_ok=True)
    tf._sine(path, seconds, freq, CODEC[path.suffix], title=path.name)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("versionkeys"))


@pytest.fixture(scope="module")
def vlib(tmp_path_factory):
    d = tmp_path_factory.mktemp("versionlib")
    for i, name in enumerate(ORDER + DEMO + ALONE):
        make(d / "a" / name, freq=300 + 20 * i)
    make(d / "b" / "song v2.mp3", freq=900)   # another folder: not A's song
    return d


@pytest.fixture(scope="module")
def vsrv(tmp_path_factory, vlib, keys):
    srv = tf.TalasServer(tmp_path_factory.mktemp("versions"), [vlib])
    ak.configure(srv, keys, required=False)
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


def by_name(srv):
    return {t["title"]: t["id"] for t in srv.tracks()}


def track(srv, tid):
    return srv.get_json(f"/api/tracks/{tid}")


def put_link(srv, tid, doc, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(srv.backend if headers is None else headers)
    st, _, body = srv.get(f"/api/tracks/{tid}/version-of", method="PUT", headers=h,
                          body=json.dumps(doc).encode() if not isinstance(doc, bytes) else doc)
    return st, json.loads(body)


def test_names_group_into_songs_in_order(vsrv):
    ids = by_name(vsrv)
    song = track(vsrv, ids["song v1.wav"])["song_id"]
    assert song, "song v1.wav is in no song"
    doc = vsrv.get_json(f"/api/songs/{song}")
    assert [v["track_id"] for v in doc["versions"]] == [ids[n] for n in ORDER]
    assert [v["version"] for v in doc["versions"]] == [GROUPED[n] for n in ORDER]
    assert all(isinstance(v["date_ms"], int) and v["date_ms"] > 1_000_000_000_000 for v in doc["versions"])
    for n in ORDER:
        t = track(vsrv, ids[n])
        assert t["song_id"] == song, n
        assert t["versions"] == [ids[m] for m in ORDER], n
        assert t["version"] == GROUPED[n], n
    demo = track(vsrv, ids["demo-v1.ogg"])
    assert demo["song_id"] and demo["song_id"] != song
    assert demo["versions"] == [ids[n] for n in DEMO]


def test_names_that_must_not_group(vsrv):
    ids = by_name(vsrv)
    for n in ALONE:
        t = track(vsrv, ids[n])
        assert t["song_id"] is None and t["versions"] == [], (n, t)
    other = [t for t in vsrv.tracks() if t["title"] == "song v2.mp3" and t["id"] != ids.get("song_v2.flac")]
    assert len(other) == 1
    t = track(vsrv, other[0]["id"])
    assert t["song_id"] is None, "a file of another folder joined the song"


def test_unknown_song_is_404(vsrv):
    st, _, body = vsrv.get("/api/songs/AAAAAAAAAAAAAAAA")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
    st, _, body = vsrv.get("/api/songs/nope")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_version_of_refusals(vsrv):
    ids = by_name(vsrv)
    tid = ids["songbird.wav"]
    st, doc = put_link(vsrv, tid, {"song_id": "AAAAAAAAAAAAAAAA"}, headers={})
    assert st == 401 and doc["error"]["code"] == "unauthorized"
    user = ak.pyjwt_token(vsrv.keys, "HS256", ak.claims(None, sub="alice"), kid="k2")
    st, doc = put_link(vsrv, tid, {"song_id": "AAAAAAAAAAAAAAAA"}, headers={"Authorization": f"Bearer {user}"})
    assert st == 403 and doc["error"]["code"] == "forbidden"
    st, doc = put_link(vsrv, tid, {"song_id": "AAAAAAAAAAAAAAAA"})
    assert st == 404 and doc["error"]["code"] == "not_found" and "song" in doc["error"]["message"]
    st, doc = put_link(vsrv, tid, {"track_id": tid})
    assert st == 400 and doc["error"]["code"] == "invalid_parameter"
    st, doc = put_link(vsrv, tid, {})
    assert st == 400 and doc["error"]["code"] == "invalid_parameter"
    st, doc = put_link(vsrv, tid, {"song_id": "x", "track_id": "y"})
    assert st == 400 and doc["error"]["code"] == "invalid_parameter"
    st, doc = put_link(vsrv, tid, b"{")
    assert st == 400 and doc["error"]["code"] == "invalid_json"
    st, doc = put_link(vsrv, "AAAAAAAAAAAAAAAA", {"track_id": tid})
    assert st == 404 and doc["error"]["code"] == "not_found"


async def _next_event(ws, name, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if m.get("event") == name:
            return m


async def _subscribe(srv, events):
    ws = await websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?user_id=watcher", max_size=None)
    await ws.send(json.dumps({"command": "Subscribe", "command_id": "s", "events": events}))
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if m.get("event") == "CommandResponse":
            assert m["success"], m
            return ws


def test_explicit_links_override_names_and_survive_restart_and_rescan(vsrv, vlib):
    ids = by_name(vsrv)
    song = track(vsrv, ids["song v1.wav"])["song_id"]
    other_b = [t["id"] for t in vsrv.tracks() if t["title"] == "song v2.mp3"][0]

    async def scenario():
        ws = await _subscribe(vsrv, ["TrackVersionAdded"])
        try:
            # another folder's file joins A's song by its id
            st, doc = put_link(vsrv, other_b, {"song_id": song})
            assert st == 200 and doc == {"track_id": other_b, "song_id": song}
            ev = await _next_event(ws, "TrackVersionAdded")
            assert ev["track_id"] == other_b and ev["song_id"] == song and ev["explicit"] is True
        finally:
            await ws.close()
    asyncio.run(scenario())

    # "other v1" and "songbird" had no song: a link forms one around the target
    st, doc = put_link(vsrv, ids["other v1.mp3"], {"track_id": ids["songbird.wav"]})
    assert st == 200
    formed = doc["song_id"]
    # the names are overridden: "song - final" moves to the demo song
    demo = track(vsrv, ids["demo-v1.ogg"])["song_id"]
    st, _ = put_link(vsrv, ids["song - final.wav"], {"track_id": ids["demo-v1.ogg"]})
    assert st == 200

    def check():
        a = vsrv.get_json(f"/api/songs/{song}")["versions"]
        # song v2.mp3 ranks as v2: beside song_v2.flac, by date
        assert sorted(v["track_id"] for v in a) == sorted([ids[n] for n in ORDER[:-1]] + [other_b]), a
        assert [v["track_id"] for v in a if v["track_id"] != other_b] == [ids[n] for n in ORDER[:-1]]
        assert ids["song - final.wav"] not in [v["track_id"] for v in a]
        assert other_b in [v["track_id"] for v in a if v["explicit"]]
        d = vsrv.get_json(f"/api/songs/{demo}")["versions"]
        assert [v["track_id"] for v in d] == [ids[n] for n in DEMO] + [ids["song - final.wav"]]
        f = vsrv.get_json(f"/api/songs/{formed}")["versions"]
        assert sorted(v["track_id"] for v in f) == sorted([ids["other v1.mp3"], ids["songbird.wav"]])
        assert track(vsrv, ids["songbird.wav"])["song_id"] == formed
    check()
    vsrv.stop()
    vsrv.start()
    check()
    cp = vsrv.talasctl("scan", timeout=120)
    assert cp.returncode == 0, cp.stderr
    check()


def test_a_new_version_in_the_library_is_published(vsrv, vlib):
    ids = by_name(vsrv)
    song = track(vsrv, ids["song v1.wav"])["song_id"]

    async def scenario():
        ws = await _subscribe(vsrv, ["TrackVersionAdded"])
        try:
            make(vlib / "a" / "song v4.mp3", freq=1200)
            cp = vsrv.talasctl("scan", timeout=120)
            assert cp.returncode == 0, cp.stderr
            ev = await _next_event(ws, "TrackVersionAdded")
            return ev
        finally:
            await ws.close()
    ev = asyncio.run(scenario())
    new = by_name(vsrv)["song v4.mp3"]
    assert ev["track_id"] == new and ev["song_id"] == song and ev["version"] == "v4" and ev["explicit"] is False
    versions = [v["track_id"] for v in vsrv.get_json(f"/api/songs/{song}")["versions"]]
    assert versions.index(new) == versions.index(ids["song (v3).mp3"]) + 1
