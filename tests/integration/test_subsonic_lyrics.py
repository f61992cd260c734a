"""Lyrics for Subsonic apps (issue 19): the scanner reads a sidecar .lrc or
embedded lyrics tags (src/scan/lrc.c, src/scan/scan.c) into the lyrics
records (src/store/lyrics.c), and the Subsonic API serves them
(workers/subsonic/subsonic_lyrics.c): getLyricsBySongId (OpenSubsonic
songLyrics) through npm's subsonic-api client and as XML, the classic
getLyrics validated against the Subsonic 1.16.1 XSD, hostile .lrc files
that crash nothing, and a rescan that sees an edited or removed .lrc while
the audio file stays the same."""
import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

import talas_fixtures as tf
from subsonic_fixtures import NS, PASSWORDS, add_user, alice, error_code, node_client, rest, rest_json, serve, xsd_valid
from test_hostile_tags import syncsafe

AUTH = {"username": "alice", "password": PASSWORDS["alice"]}

# stored exactly, escaped in XML and JSON
HOSTILE_TEXT = 'a <b>&amp; "quoted" \'x\' </lyrics> ünï 漢字'

SYNCED_LRC = ("\ufeff[ar:LRC Artist]\r\n"
              "[ti:LRC <Title> & \"more\" [Live]]\r\n"
              "[la:eng]\r\n"
              "[offset:+250]\r\n"
              "[by:ignored]\r\n"
              "[00:01.00]first line\r\n"
              "[00:03.50][00:10.250]chorus\r\n"
              "[00:05]" + HOSTILE_TEXT + "\r\n")


def sine(path, seconds=2, freq=440, metadata=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = {".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"], ".flac": ["-c:a", "flac"],
             ".ogg": ["-c:a", "libvorbis"]}[path.suffix]
    args = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
            f"sine=frequency={freq}:duration={seconds}"] + codec
    for m in metadata:
        args += ["-metadata", m]
    tf.run(args + [str(path)])
    return path


def mp3_with_uslt(tmp, dst, title, text, lang=b"deu"):
    """An MP3 behind an ID3v2.4 tag with TIT2 and a USLT frame (UTF-8),
    which FFmpeg 5.1 exposes as the tag lyrics-LANG."""
    base = sine(tmp / "uslt-base.mp3", metadata=())
    raw = tmp / "uslt-raw.mp3"
    tf.run(["ffmpeg", "-v", "error", "-y", "-i", str(base), "-map_metadata", "-1", "-id3v2_version", "0",
            "-write_id3v1", "0", "-c", "copy", str(raw)])
    frames = b""
    for fid, body in ((b"TIT2", b"\x03" + title.encode()),
                      (b"USLT", b"\x03" + lang + b"\x00" + text.encode())):
        frames += fid + syncsafe(len(body)) + b"\x00\x00" + body
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(b"ID3\x04\x00\x00" + syncsafe(len(frames)) + frames + raw.read_bytes())
    return dst


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("lyrlib")
    tmp = tmp_path_factory.mktemp("lyrtmp")
    art = "artist=Lyric Artist"
    sine(d / "Lrc" / "synced.flac", metadata=["title=Synced Song", art])
    (d / "Lrc" / "synced.lrc").write_bytes(SYNCED_LRC.encode())
    sine(d / "Lrc" / "plain.mp3", metadata=["title=Plain Sidecar", art, "lyrics=embedded loses"])
    (d / "Lrc" / "plain.lrc").write_text("\nVerse one\n\nVerse two\n")
    sine(d / "Emb" / "unsynced.ogg", metadata=["title=Embedded Plain", art,
                                              "lyrics=plain one\nplain two & <three>"])
    sine(d / "Emb" / "synced.mp3", metadata=["title=Embedded Synced", art,
                                             "lyrics=[00:02.00]emb sync\n[00:01.00]emb first"])
    sine(d / "Emb" / "unsyncedlyrics.flac", metadata=["title=Unsynced Tag", art, "UNSYNCEDLYRICS=from the tag"])
    mp3_with_uslt(tmp, d / "Emb" / "uslt.mp3", "USLT Song", "Zeile eins\nZeile zwei")
    sine(d / "None" / "none.mp3", metadata=["title=No Lyrics", art])
    # hostile sidecars: none of them may crash or block anything
    bad = d / "Bad"
    sine(bad / "huge.mp3", metadata=["title=Huge Lrc", art, "lyrics=fallback for huge"])
    (bad / "huge.lrc").write_bytes(b"[00:01.00]" + b"x" * (600 * 1024))
    sine(bad / "binary.mp3", metadata=["title=Binary Lrc", art])
    (bad / "binary.lrc").write_bytes(bytes(range(256)) * 64)
    sine(bad / "nul.mp3", metadata=["title=Nul Lrc", art])
    (bad / "nul.lrc").write_bytes(b"[00:01.00]before\x00after\n")
    sine(bad / "latin1.mp3", metadata=["title=Latin Lrc", art])
    (bad / "latin1.lrc").write_bytes(b"[00:01.00]caf\xe9 \xff\xfe\n[00:02.00]\xc3\x28 bad\n")
    sine(bad / "lines.mp3", metadata=["title=Many Lines", art])
    (bad / "lines.lrc").write_bytes(b"[00:01]a\n" * 20000)
    sine(bad / "fifo.mp3", metadata=["title=Fifo Lrc", art])
    os.mkfifo(bad / "fifo.lrc")
    sine(bad / "link.mp3", metadata=["title=Link Lrc", art])
    os.symlink("/etc/passwd", bad / "link.lrc")
    sine(bad / "tags.mp3", metadata=["title=Tag Lines", art, "lyrics=" + "[00:01]y\n" * 12000])
    # the rescan test's own track
    sine(d / "Edit" / "edit.flac", metadata=["title=Edit Me", art, "lyrics=embedded under the sidecar"])
    (d / "Edit" / "edit.lrc").write_text("[00:01.00]version one\n")
    return d


@pytest.fixture(scope="module")
def srv(tmp_path_factory, lib):
    yield from serve(tmp_path_factory.mktemp("lyrsrv"), lib, extra="  max_failed_logins: 0\n")


def by_song(srv, title):
    r = node_client(srv, AUTH, [["getLyricsBySongId", {"id": srv.ids[title]}]])
    assert r[0]["status"] == "ok", r
    return r[0]["lyricsList"].get("structuredLyrics", [])


def test_extension_advertised(srv):
    doc = rest_json(srv, "getOpenSubsonicExtensions", {})
    ext = {e["name"]: e["versions"] for e in doc["openSubsonicExtensions"]}
    assert ext.get("songLyrics") == [1], ext


def test_synced_sidecar(srv):
    sets = by_song(srv, "Synced Song")
    assert sets == [{
        "displayArtist": "LRC Artist", "displayTitle": 'LRC <Title> & "more" [Live]', "lang": "eng", "offset": 250,
        "synced": True,
        "line": [{"start": 1000, "value": "first line"}, {"start": 3500, "value": "chorus"},
                 {"start": 5000, "value": HOSTILE_TEXT}, {"start": 10250, "value": "chorus"}],
    }], sets


def test_sidecar_wins_and_unsynced_sidecar(srv):
    sets = by_song(srv, "Plain Sidecar")
    assert sets == [{"displayArtist": "Lyric Artist", "displayTitle": "Plain Sidecar", "lang": "xxx",
                     "offset": 0, "synced": False,
                     "line": [{"value": "Verse one"}, {"value": ""}, {"value": "Verse two"}]}], sets


def test_embedded_tags(srv):
    plain = by_song(srv, "Embedded Plain")
    assert [(s["synced"], [x.get("start") for x in s["line"]], [x["value"] for x in s["line"]])
            for s in plain] == [(False, [None, None], ["plain one", "plain two & <three>"])], plain
    synced = by_song(srv, "Embedded Synced")
    assert [(s["synced"], s["line"]) for s in synced] == [
        (True, [{"start": 1000, "value": "emb first"}, {"start": 2000, "value": "emb sync"}])], synced
    tag = by_song(srv, "Unsynced Tag")
    assert [[x["value"] for x in s["line"]] for s in tag] == [["from the tag"]], tag
    uslt = by_song(srv, "USLT Song")
    assert [(s["lang"], [x["value"] for x in s["line"]]) for s in uslt] == [
        ("deu", ["Zeile eins", "Zeile zwei"])], uslt


def test_none_unknown_and_missing(srv):
    assert by_song(srv, "No Lyrics") == []
    doc = rest_json(srv, "getLyricsBySongId", alice(id=srv.ids["No Lyrics"]))
    assert doc["status"] == "ok" and doc["lyricsList"] == {}, doc
    assert error_code(rest_json(srv, "getLyricsBySongId", alice(id="AAAAAAAAAAAAAAAA"))) == 70
    assert error_code(rest_json(srv, "getLyricsBySongId", alice(id="../../etc/passwd"))) == 70
    assert error_code(rest_json(srv, "getLyricsBySongId", alice())) == 10
    # credentials first
    assert error_code(rest_json(srv, "getLyricsBySongId", {"u": "alice", "p": "wrong",
                                                           "id": srv.ids["No Lyrics"]})) == 40


def test_hostile_sidecars_crash_nothing(srv):
    pids = sorted(srv.worker_pids())
    # too big, binary, a NUL, too many lines, a FIFO, a symlink: dropped;
    # a huge sidecar's track falls back to its embedded tag
    for title in ("Binary Lrc", "Nul Lrc", "Many Lines", "Fifo Lrc", "Link Lrc", "Tag Lines"):
        assert by_song(srv, title) == [], title
    assert [[x["value"] for x in s["line"]] for s in by_song(srv, "Huge Lrc")] == [["fallback for huge"]]
    # invalid UTF-8 is read as ISO-8859-1, line by line
    latin = by_song(srv, "Latin Lrc")
    assert [x["value"] for x in latin[0]["line"]] == ["caf\u00e9 \u00ff\u00fe", "\u00c3( bad"], latin
    for title in srv.ids:
        st, _, body = rest(srv, "getLyricsBySongId", alice(id=srv.ids[title]))
        assert st == 200 and ET.fromstring(body).get("status") == "ok", (title, body[:300])
    assert sorted(srv.worker_pids()) == pids
    assert srv.health()["status"] == "ok"


def test_xml_escaped_and_exact(srv):
    st, hdrs, body = rest(srv, "getLyricsBySongId", alice(id=srv.ids["Synced Song"]))
    assert st == 200 and hdrs["content-type"].startswith("text/xml")
    root = ET.fromstring(body)
    sl = root.find(f"{NS}lyricsList/{NS}structuredLyrics")
    assert sl is not None, body
    assert (sl.get("displayArtist"), sl.get("displayTitle"), sl.get("lang"), sl.get("offset"),
            sl.get("synced")) == ("LRC Artist", 'LRC <Title> & "more" [Live]', "eng", "250", "true")
    lines = [(x.get("start"), x.text or "") for x in sl.findall(f"{NS}line")]
    assert lines == [("1000", "first line"), ("3500", "chorus"), ("5000", HOSTILE_TEXT),
                     ("10250", "chorus")], body
    st, _, body = rest(srv, "getLyricsBySongId", alice(id=srv.ids["No Lyrics"]))
    assert ET.fromstring(body).find(f"{NS}lyricsList") is not None and b"structuredLyrics" not in body


def validate_xml(tmp_path, body, name):
    return xsd_valid(tmp_path, name, body, strip={"type", "serverVersion", "openSubsonic"})


def test_get_lyrics_classic(srv, tmp_path):
    if shutil.which("xmllint") is None:
        pytest.fail("xmllint is missing: install Debian package libxml2-utils")
    r = node_client(srv, AUTH, [
        ["getLyrics", {"artist": "lyric artist", "title": "synced song"}],
        ["getLyrics", {"title": "Embedded Plain"}],
        ["getLyrics", {"artist": "Nobody", "title": "Synced Song"}],
        ["getLyrics", {"title": "No Lyrics"}],
    ])
    assert [x["status"] for x in r] == ["ok"] * 4, r
    assert r[0]["lyrics"] == {"artist": "Lyric Artist", "title": "Synced Song",
                              "value": "first line\nchorus\n" + HOSTILE_TEXT + "\nchorus"}, r[0]
    assert r[1]["lyrics"]["value"] == "plain one\nplain two & <three>"
    assert r[2]["lyrics"] == {} and r[3]["lyrics"] == {}, r

    st, _, body = rest(srv, "getLyrics", alice(artist="Lyric Artist", title="Synced Song"))
    root = validate_xml(tmp_path, body, "lyrics")
    el = root.find(f"{NS}lyrics")
    assert el.get("artist") == "Lyric Artist" and el.text == "first line\nchorus\n" + HOSTILE_TEXT + "\nchorus"
    st, _, body = rest(srv, "getLyrics", alice(title="nothing at all"))
    root = validate_xml(tmp_path, body, "nolyrics")
    assert root.find(f"{NS}lyrics") is not None and not (root.find(f"{NS}lyrics").text or "")


def bump(path, text):
    """Rewrites PATH and moves its mtime: a change the scanner must see
    even within one timestamp tick."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_rescan_sees_edited_and_removed_sidecar(srv, lib):
    audio = lib / "Edit" / "edit.flac"
    before = audio.stat().st_mtime_ns
    assert [x["value"] for x in by_song(srv, "Edit Me")[0]["line"]] == ["version one"]

    bump(lib / "Edit" / "edit.lrc", "[00:02.00]version two\n[00:01.00]now first\n")
    got = json.loads(srv.talasctl("--json", "scan", check=True).stdout)
    assert (got["probed"], got["updated"]) == (1, 1), got
    assert [(x["start"], x["value"]) for x in by_song(srv, "Edit Me")[0]["line"]] == [
        (1000, "now first"), (2000, "version two")]

    # removed: the embedded tag again
    (lib / "Edit" / "edit.lrc").unlink()
    srv.talasctl("scan", check=True)
    sets = by_song(srv, "Edit Me")
    assert [(s["synced"], [x["value"] for x in s["line"]]) for s in sets] == [
        (False, ["embedded under the sidecar"])], sets

    # a sidecar added to a track that had none
    (lib / "None" / "none.lrc").write_text("[00:00.50]now it has some\n")
    srv.talasctl("scan", check=True)
    assert [x["value"] for x in by_song(srv, "No Lyrics")[0]["line"]] == ["now it has some"]
    # the audio files were never touched
    assert audio.stat().st_mtime_ns == before
    # a rescan with nothing changed probes nothing again
    got = json.loads(srv.talasctl("--json", "scan", check=True).stdout)
    assert got["probed"] == 0 and got["unchanged"] == got["files"] == len(srv.ids), got


def test_cluster_each_node_serves_lyrics(talas_server, tmp_path, redis_server, pg_database):
    """Cluster mode: lyrics are catalog data, read by each node's own
    scanner into its own storage; both nodes answer the same."""
    import cluster_fixtures as cf
    lib = tmp_path / "clib"
    sine(lib / "c.flac", metadata=["title=Cluster Song", "artist=Cluster Artist"])
    (lib / "c.lrc").write_text("[la:fra]\n[00:00.75]sur deux nœuds\n")
    key = tmp_path / "subsonic.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    extra = f"subsonic:\n  enabled: true\n  password_key_file: {json.dumps(str(key))}\n  max_failed_logins: 0\n"
    a, b = cf.two_nodes(talas_server, lib, redis_server, pg_database, "k" * 40, extra)
    for srv in (a, b):
        add_user(srv, "alice", PASSWORDS["alice"])
    song = a.ids["Cluster Song"]
    assert b.ids["Cluster Song"] == song
    for srv in (a, b):
        doc = rest_json(srv, "getLyricsBySongId", alice(id=song))
        assert doc["lyricsList"]["structuredLyrics"] == [{
            "displayArtist": "Cluster Artist", "displayTitle": "Cluster Song", "lang": "fra", "offset": 0,
            "synced": True, "line": [{"start": 750, "value": "sur deux nœuds"}]}], doc
