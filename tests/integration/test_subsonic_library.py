"""The Subsonic API's library model: the tags the scanner reads into the
catalog (album artist, disc and track numbers, year, genre, where the cover
art is) as Talas's /api/tracks shows them and as Subsonic apps browse them,
and every XML answer validated against the Subsonic 1.16.1 XSD
(subsonic/subsonic-rest-api-1.16.1.xsd, see subsonic/NOTICE).

Real clients: npm's subsonic-api (subsonic/client.mjs), xmllint for the
schema. The library is generated with ffmpeg: a compilation whose album
artist is not its tracks' artists, on two discs, with track numbers out of
file order and an embedded picture; an album with a cover.jpg beside it.
"""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

import talas_fixtures as tf
from subsonic_fixtures import PASSWORDS, alice, node_client, rest, rest_json, serve, XSD, xsd_valid

NS = "{http://subsonic.org/restapi}"

SINE = ["-f", "lavfi", "-i", "sine=frequency=440:duration=3"]
MP3 = ["-c:a", "libmp3lame", "-b:a", "128k"]
# relative path: (tags, ffmpeg arguments)
TRACKS = {
    # file order 01, 02, 03; album order disc 1 track 1 (03), disc 1 track 2
    # (01), disc 2 track 1 (02)
    "Comp/01.mp3": ({"title": "Comp A", "artist": "Xavier", "album_artist": "Various Artists",
                     "album": "Comp", "track": "2/3", "disc": "1/2", "date": "2001", "genre": "Jazz"}, "pic"),
    "Comp/02.mp3": ({"title": "Comp B", "artist": "Yolanda", "album_artist": "Various Artists",
                     "album": "Comp", "track": "1", "disc": "2/2", "date": "2001-06-01", "genre": "Jazz"}, "pic"),
    "Comp/03.mp3": ({"title": "Comp C", "artist": "Zed", "album_artist": "Various Artists",
                     "album": "Comp", "track": "1/3", "disc": "1", "date": "2001", "genre": "Jazz"}, "pic"),
    "Solo/b.flac": ({"title": "Solo Two", "artist": "Solo", "album": "Alone", "track": "2",
                     "date": "1987-05-01", "genre": "Rock"}, "flac"),
    "Solo/a.flac": ({"title": "Solo One", "artist": "Solo", "album": "Alone", "track": "1",
                     "date": "1987", "genre": "Rock"}, "flac"),
    "Bare/x.mp3": ({"title": "Bare"}, "mp3"),
}
COMP_ORDER = ["Comp C", "Comp A", "Comp B"]


def ffmpeg(args):
    tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"] + args)


def make_library(d):
    for rel, (tags, kind) in TRACKS.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = []
        for k, v in tags.items():
            meta += ["-metadata", f"{k}={v}"]
        if kind == "pic":
            # an attached picture: a 300x200 JPEG in the ID3 tag
            ffmpeg(SINE + ["-f", "lavfi", "-i", "color=c=red:s=300x200:d=1", "-map", "0:a", "-map", "1:v",
                           "-frames:v", "1", "-c:v", "mjpeg", "-disposition:v", "attached_pic",
                           "-id3v2_version", "3"] + MP3 + meta + [str(p)])
        elif kind == "flac":
            ffmpeg(SINE + ["-c:a", "flac"] + meta + [str(p)])
        else:
            ffmpeg(SINE + MP3 + meta + [str(p)])
    ffmpeg(["-f", "lavfi", "-i", "color=c=blue:s=400x300:d=1", "-frames:v", "1", str(d / "Solo" / "cover.jpg")])
    return d


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    lib = make_library(tmp_path_factory.mktemp("sllib"))
    yield from serve(tmp_path_factory.mktemp("slsrv"), lib, extra="  max_failed_logins: 0\n")


def test_api_tracks_tags(srv):
    t = srv.tracks_by_title
    assert len(t) == len(TRACKS)
    a = t["Comp A"]
    assert (a["artist"], a["album_artist"], a["album"]) == ("Xavier", "Various Artists", "Comp")
    assert (a["disc"], a["track"], a["year"], a["genre"]) == (1, 2, 2001, "Jazz")
    assert (t["Comp B"]["disc"], t["Comp B"]["track"], t["Comp B"]["year"]) == (2, 1, 2001)
    s = t["Solo Two"]
    assert (s["album_artist"], s["disc"], s["track"], s["year"], s["genre"]) == ("", None, 2, 1987, "Rock")
    b = t["Bare"]
    assert (b["album_artist"], b["disc"], b["track"], b["year"], b["genre"]) == ("", None, None, None, "")


def songs_of(srv, album_id):
    return rest_json(srv, "getAlbum", alice(id=album_id))["album"]


def test_browse_by_tags(srv):
    """getArtists -> getArtist -> getAlbum (the subsonic-api client) reaches
    every playable track once, with its tags, numbers and cover art; the
    compilation is one album of its album artist, in disc and track order."""
    [artists] = node_client(srv, {"username": "alice", "password": PASSWORDS["alice"]}, [["getArtists", {}]])
    names = {a["name"]: a for i in artists["artists"]["index"] for a in i["artist"]}
    assert set(names) == {"Various Artists", "Solo", "[Unknown Artist]"}
    seen = {}
    for a in names.values():
        artist = rest_json(srv, "getArtist", alice(id=a["id"]))["artist"]
        for al in artist["album"]:
            album = songs_of(srv, al["id"])
            for song in album["song"]:
                assert song["id"] not in seen
                seen[song["id"]] = (song, album)
    assert {s["title"] for s, _ in seen.values()} == set(srv.tracks_by_title)
    comp = next(al for s, al in seen.values() if s["title"] == "Comp A")
    assert (comp["name"], comp["artist"], comp["songCount"], comp["year"], comp["genre"]) == \
        ("Comp", "Various Artists", 3, 2001, "Jazz")
    assert [s["title"] for s in comp["song"]] == COMP_ORDER
    assert [(s["discNumber"], s["track"]) for s in comp["song"]] == [(1, 1), (1, 2), (2, 1)]
    assert [s["artist"] for s in comp["song"]] == ["Zed", "Xavier", "Yolanda"]
    for s in comp["song"]:
        assert (s["year"], s["genre"], s["coverArt"]) == (2001, "Jazz", s["id"])
    assert comp["coverArt"] in {s["id"] for s in comp["song"]}
    alone = next(al for s, al in seen.values() if s["title"] == "Solo One")
    assert [s["title"] for s in alone["song"]] == ["Solo One", "Solo Two"]
    assert alone["year"] == 1987 and alone["genre"] == "Rock" and "coverArt" in alone
    assert all(s["coverArt"] for s in alone["song"])
    bare = next(s for s, _ in seen.values() if s["title"] == "Bare")
    assert not {"coverArt", "year", "genre", "track", "discNumber"} & set(bare)


def test_browse_by_folders(srv):
    """getIndexes -> getMusicDirectory (artist, then album) reaches every
    playable track with its tags."""
    idx = rest_json(srv, "getIndexes", alice())["indexes"]
    found = {}
    for i in idx["index"]:
        for a in i["artist"]:
            for al in rest_json(srv, "getMusicDirectory", alice(id=a["id"]))["directory"]["child"]:
                assert al["isDir"] is True
                for s in rest_json(srv, "getMusicDirectory", alice(id=al["id"]))["directory"]["child"]:
                    found[s["title"]] = s
    assert set(found) == set(srv.tracks_by_title)
    assert (found["Comp B"]["discNumber"], found["Comp B"]["track"], found["Comp B"]["genre"]) == (2, 1, "Jazz")
    assert found["Solo Two"]["year"] == 1987 and found["Solo Two"]["coverArt"]


def test_genres_and_lists(srv):
    genres = {g["value"]: g for g in rest_json(srv, "getGenres", alice())["genres"]["genre"]}
    assert {k: (g["songCount"], g["albumCount"]) for k, g in genres.items()} == {"Jazz": (3, 1), "Rock": (2, 1)}
    songs = rest_json(srv, "getSongsByGenre", alice(genre="Rock"))["songsByGenre"]["song"]
    assert [s["title"] for s in songs] == ["Solo One", "Solo Two"]

    def names(**kw):
        doc = rest_json(srv, "getAlbumList2", alice(**kw))["albumList2"]
        return [a["name"] for a in doc.get("album", [])]

    assert names(type="byYear", fromYear=1980, toYear=1990) == ["Alone"]
    assert names(type="byYear", fromYear=2010, toYear=1980) == ["Comp", "Alone"]
    assert names(type="byYear", fromYear=1980, toYear=2010) == ["Alone", "Comp"]
    assert names(type="byGenre", genre="Jazz") == ["Comp"]
    assert names(type="alphabeticalByName") == ["[Unknown Album]", "Alone", "Comp"]
    # by album artist: "[Unknown Artist]", "Solo", "Various Artists"
    assert names(type="alphabeticalByArtist") == ["[Unknown Album]", "Alone", "Comp"]
    # a missing parameter of byYear/byGenre is error 10
    doc = rest_json(srv, "getAlbumList2", alice(type="byYear", fromYear=1980))
    assert doc["status"] == "failed" and doc["error"]["code"] == 10
    doc = rest_json(srv, "getAlbumList", alice(type="byGenre"))
    assert doc["status"] == "failed" and doc["error"]["code"] == 10


# OpenSubsonic's additions to 1.16.1, which its XSD does not know: removed
# before validating, everything else must match the schema as it is.
def validate(srv, tmp_path, method, params):
    st, _, body = rest(srv, method, alice(**params))
    assert st == 200
    assert ET.fromstring(body).get("status") == "ok", (method, body[:400])
    xsd_valid(tmp_path, method, body)


def test_xml_matches_xsd(srv, tmp_path):
    if shutil.which("xmllint") is None:
        pytest.fail("xmllint is missing: install Debian package libxml2-utils")
    comp_song = srv.tracks_by_title["Comp A"]["id"]
    artists = rest_json(srv, "getArtists", alice())["artists"]["index"]
    artist = next(a["id"] for i in artists for a in i["artist"] if a["name"] == "Various Artists")
    album = rest_json(srv, "getArtist", alice(id=artist))["artist"]["album"][0]["id"]
    calls = [
        ("ping", {}), ("getLicense", {}), ("getUser", {"username": "alice"}), ("getMusicFolders", {}),
        ("getIndexes", {}), ("getMusicDirectory", {"id": artist}), ("getMusicDirectory", {"id": album}),
        ("getArtists", {}), ("getArtist", {"id": artist}), ("getAlbum", {"id": album}),
        ("getSong", {"id": comp_song}), ("getAlbumList", {"type": "alphabeticalByName"}),
        ("getAlbumList2", {"type": "byYear", "fromYear": 1900, "toYear": 2100}),
        ("getRandomSongs", {"size": 10}), ("getGenres", {}), ("getSongsByGenre", {"genre": "Jazz"}),
        ("search2", {"query": "o"}), ("search3", {"query": ""}),
        ("star", {"id": comp_song}), ("unstar", {"id": comp_song}), ("scrobble", {"id": comp_song}),
        ("createPlaylist", {"name": "xsd", "songId": comp_song}),
    ]
    for method, params in calls:
        validate(srv, tmp_path, method, params)
    pid = rest_json(srv, "createPlaylist", alice(name="xsd", songId=comp_song))["playlist"]["id"]
    validate(srv, tmp_path, "getPlaylist", {"id": pid})
    # the errors too
    st, _, body = rest(srv, "getAlbum", alice(id="al0000000000000000"))
    path = tmp_path / "error.xml"
    path.write_bytes(re.sub(rb' (type|serverVersion|openSubsonic)="[^"]*"', b"", body))
    r = subprocess.run(["xmllint", "--noout", "--schema", str(XSD), str(path)], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
