"""The Subsonic API (/rest/): accounts made with talasctl, each way of
logging in and each error code, browsing and search over a generated
library, stream and download, star, scrobble and playlists as Talas sees
them (its own /api/ and /api/ws events), the failed-login limit.

Real clients: npm's subsonic-api (pinned in subsonic/package-lock.json,
driven by subsonic/client.mjs under node), python's http.client for raw
XML, JSON and JSONP, python3-websockets for the events, ffprobe for the
transcodes. The library is generated with ffmpeg.
"""

import asyncio
import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

import talas_fixtures as tf
from subsonic_fixtures import (NS, PASSWORDS, TRACKS, add_user, alice, ctl, error_code, lib, md5,  # noqa: F401
                               node_client, recv_until, rest, rest_json, srv, subsonic_server, ws_url)

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

# ------------------------------------------------------------ auth

def test_each_login_works(srv):
    """u+p clear and enc:, u+t+s, an API key; the npm client's token
    logins over GET and form POST, and its API key."""
    pw = PASSWORDS["bob"]
    assert rest_json(srv, "ping", {"u": "bob", "p": pw})["status"] == "ok"
    assert rest_json(srv, "ping.view", {"u": "bob", "p": "enc:" + pw.encode().hex()})["status"] == "ok"
    assert rest_json(srv, "ping", {"u": "bob", "t": md5(pw + "a1b2c3"), "s": "a1b2c3"})["status"] == "ok"
    # a form POST carrying the credentials in its body
    st, _, body = rest(srv, "ping", {"u": "bob", "p": pw, "f": "json"}, post=True)
    assert json.loads(body)["subsonic-response"]["status"] == "ok"

    key = ctl(srv, "users", "apikey", "bob").stdout.decode().strip()
    assert len(key) == 64
    assert rest_json(srv, "ping", {"apiKey": key})["status"] == "ok"

    for post in (False, True):
        r = node_client(srv, {"username": "bob", "password": pw}, [["ping", {}], ["getUser", {"username": "bob"}]],
                        post=post)
        assert r[0]["status"] == "ok", r
        assert r[1]["user"]["username"] == "bob" and r[1]["user"]["streamRole"] is True
    r = node_client(srv, {"apiKey": key}, [["ping", {}]])
    assert r[0]["status"] == "ok", r

    assert ctl(srv, "users", "apikey", "bob", "--revoke", key).returncode == 0
    assert error_code(rest_json(srv, "ping", {"apiKey": key})) == 44


@pytest.mark.parametrize("params,code", [
    ({}, 10),                                                   # no credentials
    ({"u": "alice"}, 10),                                       # a user, nothing else
    ({"u": "alice", "t": md5("sesame" + "x")}, 10),             # a token without its salt
    ({"p": "sesame"}, 42),                                      # a password without a user
    ({"u": "alice", "p": "nope"}, 40),                          # wrong password
    ({"u": "alice", "p": "enc:" + b"nope".hex()}, 40),
    ({"u": "alice", "t": md5("nope" + "s1"), "s": "s1"}, 40),   # wrong token
    ({"u": "alice", "t": md5("sesame" + "s1"), "s": "s2"}, 40), # a token for another salt
    ({"u": "nobody", "p": "sesame"}, 40),                       # no such account
    ({"apiKey": "0" * 64, "u": "alice"}, 43),                   # two mechanisms at once
    ({"u": "alice", "p": "sesame", "t": md5("sesame" + "s"), "s": "s"}, 43),
    ({"apiKey": "0" * 64}, 44),                                 # unknown key
    ({"apiKey": "not-a-key"}, 44),
])
def test_login_errors(srv, params, code):
    assert error_code(rest_json(srv, "ping", params)) == code


def test_method_errors(srv):
    assert error_code(rest_json(srv, "getUser", alice(username="bob"))) == 50
    assert error_code(rest_json(srv, "getSong", alice(id="AAAAAAAAAAAAAAAA"))) == 70
    assert error_code(rest_json(srv, "getAlbum", alice(id="al0000000000000000"))) == 70
    assert error_code(rest_json(srv, "getSong", alice())) == 10
    assert error_code(rest_json(srv, "getAlbumList2", alice())) == 10
    doc = rest_json(srv, "getPodcasts", alice())
    assert error_code(doc) == 0 and "not implemented" in doc["error"]["message"]
    # a stranger learns nothing about which methods exist
    assert error_code(rest_json(srv, "getPodcasts", {})) == 10
    doc = rest_json(srv, "getAlbumList2", alice(type="random", size="9999"))
    assert error_code(doc) == 0 and "size" in doc["error"]["message"]


def test_extensions_open_and_formats(srv):
    """getOpenSubsonicExtensions needs no login; XML (the default) carries
    every required attribute; JSONP wraps JSON; errors are HTTP 200."""
    doc = rest_json(srv, "getOpenSubsonicExtensions", {})
    assert doc["status"] == "ok"
    assert {e["name"]: e["versions"] for e in doc["openSubsonicExtensions"]} == {
        "apiKeyAuthentication": [1], "formPost": [1], "songLyrics": [1], "transcodeOffset": [1]}

    for params in ({}, alice()):
        st, hdrs, body = rest(srv, "getOpenSubsonicExtensions" if not params else "getArtists", params)
        assert st == 200 and hdrs["content-type"].startswith("text/xml"), hdrs
        root = ET.fromstring(body)
        assert root.tag == NS + "subsonic-response"
        assert root.attrib == {"status": "ok", "version": "1.16.1", "type": "talas",
                               "serverVersion": tf.VERSION, "openSubsonic": "true"}
    names = [a.get("name") for a in root.iter(NS + "artist")]
    assert "Gamma & <Co>" in names and "[Unknown Artist]" in names

    st, hdrs, body = rest(srv, "ping", {"u": "alice", "p": "wrong"})
    root = ET.fromstring(body)
    assert st == 200 and root.get("status") == "failed"
    assert root.find(NS + "error").get("code") == "40"

    st, hdrs, body = rest(srv, "ping", alice(f="jsonp", callback="cb.done"))
    assert hdrs["content-type"].startswith("application/javascript")
    assert body.startswith(b"cb.done(") and body.endswith(b");")
    assert json.loads(body[len("cb.done("):-2])["subsonic-response"]["status"] == "ok"
    doc = json.loads(rest(srv, "ping", alice(f="jsonp", callback="alert(1)"))[2])["subsonic-response"]
    assert error_code(doc) == 0


# --------------------------------------------------------- browsing

def expected_songs(srv):
    out = {}
    for t in srv.tracks():
        out[t["id"]] = (t["title"], t["artist"] or "[Unknown Artist]", t["album"] or "[Unknown Album]")
    assert len(out) == len(TRACKS)
    return out


def test_browse_every_track(srv):
    """ID3 browsing (getArtists, getArtist, getAlbum) and folder browsing
    (getIndexes, getMusicDirectory) each reach every playable track once,
    with its tags; getSong agrees."""
    want = expected_songs(srv)
    auth = {"username": "alice", "password": PASSWORDS["alice"]}
    arts = node_client(srv, auth, [["getArtists", {}], ["getIndexes", {}], ["getMusicFolders", {}]])
    assert arts[2]["musicFolders"]["musicFolder"][0]["id"] == 1
    artist_ids = [a["id"] for i in arts[0]["artists"]["index"] for a in i["artist"]]
    assert len(artist_ids) == 4  # Alpha, Beta, Gamma & <Co>, [Unknown Artist]
    assert [a["id"] for i in arts[1]["indexes"]["index"] for a in i["artist"]] == artist_ids

    r = node_client(srv, auth, [["getArtist", {"id": a}] for a in artist_ids])
    album_ids = [al["id"] for x in r for al in x["artist"]["album"]]
    assert len(album_ids) == 5
    r = node_client(srv, auth, [["getAlbum", {"id": a}] for a in album_ids])
    seen = {}
    for x in r:
        for s in x["album"]["song"]:
            assert s["id"] not in seen
            seen[s["id"]] = (s["title"], s["artist"], s["album"])
            assert s["albumId"] == x["album"]["id"] and s["isDir"] is False
    assert seen == want

    dirs = node_client(srv, auth, [["getMusicDirectory", {"id": a}] for a in artist_ids])
    album_dirs = [c["id"] for d in dirs for c in d["directory"]["child"]]
    assert sorted(album_dirs) == sorted(album_ids)
    dirs = node_client(srv, auth, [["getMusicDirectory", {"id": a}] for a in album_dirs])
    assert {c["id"] for d in dirs for c in d["directory"]["child"]} == set(want)

    songs = node_client(srv, auth, [["getSong", {"id": i}] for i in want])
    for s in songs:
        s = s["song"]
        assert (s["title"], s["artist"], s["album"]) == want[s["id"]]
        assert s["size"] > 0 and s["duration"] >= 3
    flac = srv.tracks_by_title["Noise One"]
    s = next(x["song"] for x in songs if x["song"]["id"] == flac["id"])
    assert s["suffix"] == "flac" and s["contentType"] == "audio/flac" and s["path"] == "Alpha/First/01.flac"

    lists = node_client(srv, auth, [["getAlbumList2", {"type": t, "size": 500}]
                                    for t in ("alphabeticalByName", "alphabeticalByArtist", "newest", "random")]
                        + [["getAlbumList", {"type": "alphabeticalByArtist", "size": 2, "offset": 1}],
                           ["getRandomSongs", {"size": 500}]])
    for x in lists[:4]:
        assert sorted(a["id"] for a in x["albumList2"]["album"]) == sorted(album_ids)
    assert [a["name"] for a in lists[0]["albumList2"]["album"]] == sorted(
        (a["name"] for a in lists[0]["albumList2"]["album"]), key=str.lower)
    assert [a["id"] for a in lists[4]["albumList"]["album"]] == [
        a["id"] for a in lists[1]["albumList2"]["album"]][1:3]
    assert {s["id"] for s in lists[5]["randomSongs"]["song"]} == set(want)


def test_search3_pages_through_everything(srv):
    """An empty query matches everything; songCount/songOffset page
    through every track once (how apps sync a library)."""
    want = expected_songs(srv)
    auth = {"username": "alice", "password": PASSWORDS["alice"]}
    calls = [["search3", {"query": "", "songCount": 2, "songOffset": off, "artistCount": 0, "albumCount": 0}]
             for off in range(0, 10, 2)]
    pages = node_client(srv, auth, calls)
    ids = [s["id"] for p in pages for s in p["searchResult3"].get("song", [])]
    assert len(ids) == len(want) and set(ids) == set(want)
    assert [len(p["searchResult3"].get("song", [])) for p in pages] == [2, 2, 2, 0, 0]
    # Symfonium sends query="" (two quote characters)
    doc = rest_json(srv, "search3", alice(query='""', songCount=500))
    assert len(doc["searchResult3"]["song"]) == len(want)
    assert len(doc["searchResult3"]["album"]) == 5 and len(doc["searchResult3"]["artist"]) == 4
    doc = rest_json(srv, "search3", alice(query="tone"))
    assert sorted(s["title"] for s in doc["searchResult3"]["song"]) == ["Tone Four", "Tone Three", "Tone Two"]
    doc = rest_json(srv, "search2", alice(query="beta"))
    assert {a["name"] for a in doc["searchResult2"]["artist"]} == {"Beta"}
    assert {a["title"] for a in doc["searchResult2"]["album"]} == {"Second", "Third"}


# ---------------------------------------------------------- media

def test_stream_and_download(srv, lib, tmp_path):
    """maxBitRate=128 on a FLAC: a 128 kbit/s MP3 transcode; format=raw and
    download: the original bytes exactly, with Range; no limit: the
    original."""
    flac = srv.tracks_by_title["Noise One"]
    original = (lib / "Alpha/First/01.flac").read_bytes()
    auth = {"username": "alice", "password": PASSWORDS["alice"]}
    r = node_client(srv, auth, [["stream", {"id": flac["id"], "maxBitRate": 128}],
                                ["stream", {"id": flac["id"], "format": "raw", "maxBitRate": 128}],
                                ["download", {"id": flac["id"]}],
                                ["stream", {"id": flac["id"]}]])
    assert r[0]["http_status"] == 200 and r[0]["content_type"] == "audio/mpeg", r[0]
    for x in r[1:]:
        assert x["http_status"] == 200 and x["length"] == len(original), x
        assert x["sha256"] == hashlib.sha256(original).hexdigest()

    st, hdrs, body = rest(srv, "stream", alice(id=flac["id"], maxBitRate="128"))
    assert st == 200
    out = tmp_path / "t.mp3"
    out.write_bytes(body)
    probe = json.loads(tf.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,bit_rate",
                               "-of", "json", str(out)]).stdout)["streams"][0]
    assert probe["codec_name"] == "mp3" and probe["bit_rate"] == "128000", probe

    st, hdrs, body = rest(srv, "stream", alice(id=flac["id"], format="raw"), headers={"Range": "bytes=100-199"})
    assert st == 206 and body == original[100:200]
    assert hdrs["cache-control"].startswith("private"), hdrs

    # an MP3 of 96 kbit/s within maxBitRate=128: the original, not a transcode
    small = srv.tracks_by_title["Tone Four"]
    st, hdrs, body = rest(srv, "stream", alice(id=small["id"], maxBitRate="128"))
    assert st == 200 and body == (lib / "Beta/Third/04.mp3").read_bytes()
    # format=mp3 without a limit: the highest MP3 profile (mp3, 192k)
    st, hdrs, body = rest(srv, "stream", alice(id=flac["id"], format="mp3"))
    out.write_bytes(body)
    probe = json.loads(tf.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,bit_rate",
                               "-of", "json", str(out)]).stdout)["streams"][0]
    assert probe["codec_name"] == "mp3" and probe["bit_rate"] == "192000", probe
    # timeOffset: a transcode from there (transcodeOffset)
    st, hdrs, body = rest(srv, "stream", alice(id=flac["id"], maxBitRate="128", timeOffset="3"))
    out.write_bytes(body)
    assert st == 200 and 2500 <= tf.ffprobe_duration_ms(out) <= 3500

    doc = json.loads(rest(srv, "stream", alice(id="AAAAAAAAAAAAAAAA", f="json"))[2])["subsonic-response"]
    assert error_code(doc) == 70
    assert error_code(json.loads(rest(srv, "stream", {"id": flac["id"], "f": "json"})[2])["subsonic-response"]) == 10


# ------------------------------------------------- Talas's own view

def test_star_scrobble_playlist_show_in_talas(srv):
    """star is a TrackLiked event; scrobble a play in /api/analytics with
    its PlaybackStarted and PlaybackStopped; createPlaylist a Talas
    playlist (its id made by Talas) in /api/playlists with its
    PlaylistUpdated events."""
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    auth = {"username": "alice", "password": PASSWORDS["alice"]}
    before = srv.get_json(f"/api/analytics/tracks/{tone}")

    async def go():
        async with websockets.connect(ws_url(srv, "alice")) as ws:
            await ws.send(json.dumps({"command": "Subscribe", "command_id": "s",
                                      "events": ["TrackLiked", "PlaybackStarted", "PlaybackStopped",
                                                 "PlaylistUpdated"]}))
            await recv_until(ws, lambda m: m.get("command_id") == "s")
            r = await asyncio.to_thread(node_client, srv, auth, [
                ["star", {"id": tone}],
                ["scrobble", {"id": tone}],
                ["createPlaylist", {"name": "road trip", "songId": [tone, noise]}],
            ])
            # events published on another worker cross the master: their
            # order between workers is not fixed, so collect them all
            want = {"TrackLiked": 1, "PlaybackStarted": 1, "PlaybackStopped": 1, "PlaylistUpdated": 2}
            got = {k: [] for k in want}
            # (a stream from its start is "now playing": the scrobble also
            # stops the track test_stream_and_download left playing)
            while any(len(got[k]) < n for k, n in want.items()):
                m = await recv_until(ws, lambda m: m.get("event") in want and (
                    m["event"] not in ("PlaybackStarted", "PlaybackStopped") or m.get("track_id") == tone))
                got[m["event"]].append(m)
            events = {k: (v if k == "PlaylistUpdated" else v[0]) for k, v in got.items()}
            return r, events

    r, events = asyncio.run(asyncio.wait_for(go(), 60))
    assert [x["status"] for x in r] == ["ok"] * 3, r
    pid = r[2]["playlist"]["id"]
    assert events["TrackLiked"]["track_id"] == tone and events["TrackLiked"]["user_id"] == "alice"
    assert events["PlaybackStarted"]["track_id"] == tone and events["PlaybackStarted"]["user_id"] == "alice"
    assert events["PlaybackStopped"]["track_id"] == tone and events["PlaybackStopped"]["user_id"] == "alice"
    assert sorted(e["track_id"] for e in events["PlaylistUpdated"]) == sorted([tone, noise])
    assert {e["playlist_id"] for e in events["PlaylistUpdated"]} == {pid}

    after = srv.get_json(f"/api/analytics/tracks/{tone}")
    assert after["plays"] == before["plays"] + 1
    hist = srv.get_json("/api/analytics/users/alice")
    assert any(h["track_id"] == tone for h in hist["history"])

    pl = srv.get_json(f"/api/playlists/{pid}")
    assert pl["owner"] == "alice" and [t["track_id"] for t in pl["tracks"]] == [tone, noise]
    assert pl["name"] == "road trip"
    [got] = node_client(srv, auth, [["getPlaylist", {"id": pid}]])
    got = got["playlist"]
    assert got["name"] == "road trip" and got["songCount"] == 2 and [e["id"] for e in got["entry"]] == [tone, noise]

    # someone else's playlist: neither readable nor changeable
    doc = rest_json(srv, "getPlaylist", {"u": "bob", "p": PASSWORDS["bob"], "id": pid})
    assert error_code(doc) == 50
    doc = rest_json(srv, "createPlaylist", {"u": "bob", "p": PASSWORDS["bob"], "playlistId": pid,
                                            "songId": tone})
    assert error_code(doc) == 50
    assert error_code(rest_json(srv, "star", alice(id="AAAAAAAAAAAAAAAA"))) == 70


# ----------------------------------------------------- talasctl users

def test_talasctl_accounts(srv):
    r = add_user(srv, "alice", "again", expect=1)
    assert b"exists" in r.stderr
    r = add_user(srv, "carol", "", expect=1)
    assert b"no password" in r.stderr
    add_user(srv, "carol", "first")
    assert rest_json(srv, "ping", {"u": "carol", "p": "first"})["status"] == "ok"
    assert ctl(srv, "users", "passwd", "carol", input="sécond\n".encode()).returncode == 0
    assert error_code(rest_json(srv, "ping", {"u": "carol", "p": "first"})) == 40
    # the token of a UTF-8 password is the md5 of its UTF-8 bytes
    assert rest_json(srv, "ping", {"u": "carol", "t": md5("sécond" + "zz"), "s": "zz"})["status"] == "ok"
    key = ctl(srv, "users", "apikey", "carol").stdout.decode().strip()
    listed = {u["user"]: u for u in json.loads(ctl(srv, "--json", "users", "ls").stdout)["users"]}
    assert listed["carol"]["account"] is True and listed["carol"]["apikeys"] == 1
    assert ctl(srv, "users", "apikey", "alice", "--revoke", key).returncode == 1  # carol's key
    assert rest_json(srv, "ping", {"apiKey": key})["status"] == "ok"
    assert ctl(srv, "users", "rm", "carol").returncode == 0
    assert error_code(rest_json(srv, "ping", {"u": "carol", "p": "sécond"})) == 40
    assert error_code(rest_json(srv, "ping", {"apiKey": key})) == 44
    assert ctl(srv, "users", "rm", "carol").returncode == 1
    assert ctl(srv, "users", "add", "bad\nname", input=b"x").returncode == 2


def test_passwords_sealed_in_storage(srv):
    """The storage holds no password in clear and no API key."""
    key = ctl(srv, "users", "apikey", "alice").stdout.decode().strip()
    data = (srv.storage_path / "data.mdb").read_bytes()
    assert PASSWORDS["alice"].encode() not in data and PASSWORDS["bob"].encode() not in data
    assert key.encode() not in data and bytes.fromhex(key) not in data


# -------------------------------------------------------- limits

def test_failed_login_limit(talas_server, lib, tmp_path):
    """subsonic.max_failed_logins per address and user: past it even the
    right password is refused until the window ends; other users are not
    affected, and a success before the limit starts the count again."""
    s = subsonic_server(tmp_path / "lim", lib, workers=1,
                        extra="  max_failed_logins: 3\n  failed_login_window: 1h\n")
    add_user(s, "alice", "sesame")
    add_user(s, "bob", "pw")
    s.start(wait_scan=True)
    try:
        for _ in range(2):
            assert error_code(rest_json(s, "ping", {"u": "alice", "p": "x"})) == 40
        assert rest_json(s, "ping", {"u": "alice", "p": "sesame"})["status"] == "ok"  # resets
        for _ in range(3):
            assert error_code(rest_json(s, "ping", {"u": "alice", "p": "x"})) == 40
        doc = rest_json(s, "ping", {"u": "alice", "p": "sesame"})
        assert error_code(doc) == 40 and "subsonic.max_failed_logins" in doc["error"]["message"]
        assert rest_json(s, "ping", {"u": "bob", "p": "pw"})["status"] == "ok"
        for _ in range(3):
            assert error_code(rest_json(s, "ping", {"apiKey": "0" * 64})) == 44
        doc = rest_json(s, "ping", {"apiKey": "1" * 64})
        assert error_code(doc) == 44 and "subsonic.max_failed_logins" in doc["error"]["message"]
    finally:
        s.kill()


def test_disabled_is_404(server):
    st, _, body = server.get("/rest/ping?u=a&p=b")
    assert st == 404 and json.loads(body)["error"]["code"] == "not_found"
