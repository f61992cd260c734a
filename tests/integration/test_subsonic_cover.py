"""Subsonic getCoverArt: a song's or an album's picture as it is (an
attached picture in an MP3 or a FLAC, a cover.jpg beside the tracks), and
resized to a JPEG whose longest side is the size asked for; the resize
stored once (the covers counter of /api/stats moves once); missing and
hostile pictures answered with an error, never a crash.

Real clients: npm's subsonic-api (subsonic/client.mjs), python's
http.client for the raw answers, ffprobe for the pictures. Pictures and
tracks are generated with ffmpeg.
"""

import concurrent.futures
import hashlib
import json
import subprocess

import pytest

import talas_fixtures as tf
from subsonic_fixtures import PASSWORDS, add_user, alice, error_code, node_client, rest, rest_json, subsonic_server

FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]


def picture(path, size, fmt_args=()):
    tf.run(FF + ["-f", "lavfi", "-i", f"testsrc=size={size}:duration=1", "-frames:v", "1"] + list(fmt_args)
           + [str(path)])
    return path.read_bytes()


def audio(path, title, album, extra_inputs=(), extra_args=()):
    args = FF + ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    for i in extra_inputs:
        args += ["-i", str(i)]
    if extra_inputs:
        args += ["-map", "0", "-map", "1", "-c:v", "copy", "-disposition:v", "attached_pic"]
    args += list(extra_args) + ["-metadata", f"title={title}", "-metadata", f"album={album}",
                                "-metadata", "artist=Cover Artist", str(path)]
    tf.run(args)


def garble_picture(track, pic):
    """Overwrites the picture's image data inside TRACK (its header kept,
    so the scanner still sees a PNG) with junk of the same length."""
    data = bytearray(track.read_bytes())
    at = data.find(pic)
    assert at > 0
    for i in range(at + 41, at + len(pic) - 12):
        data[i] ^= 0x5A
    track.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("coverlib")
    work = tmp_path_factory.mktemp("coverpics")
    pics = {
        "wide.png": picture(work / "wide.png", "200x100"),
        "tall.jpg": picture(work / "tall.jpg", "100x300", ["-q:v", "3"]),
    }
    for sub in ("Emb/Mp3", "Emb/Flac", "Folder/Album", "None", "Hostile/Emb", "Hostile/Folder", "Hostile/Text"):
        (d / sub).mkdir(parents=True)
    audio(d / "Emb/Mp3/01.mp3", "Embedded MP3", "Mp3 Album", [work / "wide.png"],
          ["-c:a", "libmp3lame", "-id3v2_version", "3"])
    audio(d / "Emb/Flac/01.flac", "Embedded FLAC", "Flac Album", [work / "tall.jpg"], ["-c:a", "flac"])
    audio(d / "Folder/Album/01.mp3", "Folder One", "Folder Album", extra_args=["-c:a", "libmp3lame"])
    audio(d / "Folder/Album/02.mp3", "Folder Two", "Folder Album", extra_args=["-c:a", "libmp3lame"])
    pics["cover.jpg"] = picture(d / "Folder/Album/cover.jpg", "320x240", ["-q:v", "3"])
    audio(d / "None/01.mp3", "No Cover", "Bare", extra_args=["-c:a", "libmp3lame"])
    # hostile: a FLAC whose PNG's data is junk, a cover.jpg that is a JPEG
    # header and junk, a cover.jpg that is text
    audio(d / "Hostile/Emb/01.flac", "Hostile Embedded", "H1", [work / "wide.png"], ["-c:a", "flac"])
    garble_picture(d / "Hostile/Emb/01.flac", pics["wide.png"])
    audio(d / "Hostile/Folder/01.mp3", "Hostile Folder", "H2", extra_args=["-c:a", "libmp3lame"])
    (d / "Hostile/Folder/cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    audio(d / "Hostile/Text/01.mp3", "Hostile Text", "H3", extra_args=["-c:a", "libmp3lame"])
    (d / "Hostile/Text/cover.jpg").write_bytes(b"<html>not a picture</html>\n")
    return d, pics


@pytest.fixture(scope="module")
def srv(tmp_path_factory, lib):
    s = subsonic_server(tmp_path_factory.mktemp("coversrv"), lib[0])
    for name, pw in PASSWORDS.items():
        add_user(s, name, pw)
    s.start(wait_scan=True)
    try:
        s.tracks_by_title = {t["title"]: t for t in s.tracks()}
        s.initial_pids = s.worker_pids()
        yield s
    finally:
        s.kill()


def cover_id(srv, title):
    song = rest_json(srv, "getSong", alice(id=srv.tracks_by_title[title]["id"]))["song"]
    return song.get("coverArt")


def cover(srv, cid, size=None):
    params = alice(id=cid)
    if size is not None:
        params["size"] = str(size)
    return rest(srv, "getCoverArt", params)


def dims(tmp_path, body):
    p = tmp_path / f"c-{hashlib.sha256(body).hexdigest()[:12]}"
    p.write_bytes(body)
    s = json.loads(tf.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
                           "-of", "json", str(p)]).stdout)["streams"][0]
    return s["codec_name"], s["width"], s["height"]


def covers_counters(srv):
    return srv.get_json("/api/stats")["covers"]


def failed_code(body):
    return error_code(json.loads(body)["subsonic-response"])


def test_original_bytes(srv, lib):
    """No size: the picture's bytes as they are, with their type; the npm
    client gets the same."""
    _, pics = lib
    for title, name, ctype in (("Embedded MP3", "wide.png", "image/png"),
                               ("Embedded FLAC", "tall.jpg", "image/jpeg"),
                               ("Folder One", "cover.jpg", "image/jpeg"),
                               ("Folder Two", "cover.jpg", "image/jpeg")):
        cid = cover_id(srv, title)
        assert cid is not None, title
        st, hdrs, body = cover(srv, cid)
        assert st == 200 and hdrs["content-type"] == ctype, (title, hdrs)
        assert body == pics[name], title
    auth = {"username": "alice", "password": PASSWORDS["alice"]}
    r = node_client(srv, auth, [["getCoverArt", {"id": cover_id(srv, "Folder One")}],
                                ["getCoverArt", {"id": cover_id(srv, "Embedded MP3"), "size": 64}]])
    assert r[0]["http_status"] == 200 and r[0]["content_type"] == "image/jpeg", r[0]
    assert r[0]["sha256"] == hashlib.sha256(pics["cover.jpg"]).hexdigest()
    assert r[1]["http_status"] == 200 and r[1]["content_type"] == "image/jpeg" and r[1]["head"].startswith("ffd8")


def test_album_cover(srv, lib):
    """The coverArt of an album (getAlbum) is served like a song's."""
    album_id = rest_json(srv, "getSong", alice(id=srv.tracks_by_title["Folder One"]["id"]))["song"]["albumId"]
    album = rest_json(srv, "getAlbum", alice(id=album_id))["album"]
    st, hdrs, body = cover(srv, album["coverArt"])
    assert st == 200 and body == lib[1]["cover.jpg"]


@pytest.mark.parametrize("title,size,want", [
    ("Embedded MP3", 64, (64, 32)),      # 200x100 PNG
    ("Embedded FLAC", 64, (21, 64)),     # 100x300 JPEG: the height is the longest side
    ("Folder One", 64, (64, 48)),        # 320x240 cover.jpg
    ("Folder One", 1000, (1000, 750)),   # larger than the source
    ("Embedded FLAC", 1, (1, 1)),
])
def test_resized(srv, tmp_path, title, size, want):
    st, hdrs, body = cover(srv, cover_id(srv, title), size)
    assert st == 200 and hdrs["content-type"] == "image/jpeg", body[:200]
    assert dims(tmp_path, body) == ("mjpeg",) + want


def test_resize_is_stored_once(srv):
    """The first request at a size resizes (the counter moves by one), the
    next ones, in either worker, read the stored JPEG (it does not)."""
    cid = cover_id(srv, "Folder Two")
    before = covers_counters(srv)
    st, _, first = cover(srv, cid, 123)
    assert st == 200
    after = covers_counters(srv)
    assert after["resized"] == before["resized"] + 1, (before, after)
    for _ in range(4):
        st, _, again = cover(srv, cid, 123)
        assert st == 200 and again == first
    assert covers_counters(srv)["resized"] == after["resized"]


def test_concurrent_requests_share_a_job(srv):
    """Eight requests at once for a new (id, size): at most one resize per
    worker (two workers), all answered with the same JPEG."""
    cid = cover_id(srv, "Embedded MP3")
    before = covers_counters(srv)["resized"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(lambda _: cover(srv, cid, 99), range(8)))
    assert all(st == 200 for st, _, _ in answers)
    assert len({body for _, _, body in answers}) == 1
    assert 1 <= covers_counters(srv)["resized"] - before <= 2


def test_missing_and_bad_arguments(srv):
    for cid in (cover_id(srv, "No Cover") or srv.tracks_by_title["No Cover"]["id"], "AAAAAAAAAAAAAAAA",
                "../../etc/passwd", "x" * 300):
        st, _, body = rest(srv, "getCoverArt", alice(id=cid, f="json"))
        assert st == 200 and failed_code(body) == 70, (cid, body)
    assert cover_id(srv, "No Cover") is None
    cid = cover_id(srv, "Folder One")
    for size in ("0", "2049", "-5", "abc", "64.5"):
        st, _, body = rest(srv, "getCoverArt", alice(id=cid, size=size, f="json"))
        assert st == 200 and failed_code(body) == 0, (size, body)
    st, _, body = rest(srv, "getCoverArt", alice(f="json"))
    assert failed_code(body) == 10


def test_hostile_pictures(srv, tmp_path):
    """Pictures that do not decode: error 70 with a message at every size,
    the originals served as they are, no worker lost; good ones still
    work after."""
    before = covers_counters(srv)["failed"]
    for title in ("Hostile Embedded", "Hostile Folder", "Hostile Text"):
        cid = cover_id(srv, title)
        assert cid is not None, title
        for size in (16, 64, 300):
            st, _, body = rest(srv, "getCoverArt", alice(id=cid, size=str(size), f="json"))
            doc = json.loads(body)["subsonic-response"]
            assert st == 200 and error_code(doc) in (0, 70) and doc["error"]["message"], (title, body)
        st, _, body = cover(srv, cid)
        assert st == 200 and len(body) > 0
    assert covers_counters(srv)["failed"] >= before + 3
    assert srv.worker_pids() == srv.initial_pids
    st, _, body = cover(srv, cover_id(srv, "Embedded FLAC"), 48)
    assert st == 200 and dims(tmp_path, body)[1:] == (16, 48)
