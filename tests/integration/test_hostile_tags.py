"""Files with absurd metadata (issue 20, point 5).

A FLAC file whose VORBIS_COMMENT block holds 100,000 comments (one key
repeated, or 100,000 distinct keys) cost libavformat's tag handling
quadratic time: 20 to 90 s of CPU to scan one file, and its first
transcode timed out into a 422 though its audio is intact.  It must scan
in under a second, keep its first title cut to TALAS_TAG_MAX (1024) bytes
at a UTF-8 character boundary, and transcode.  A 1 MB ID3v2 title is cut
the same way in /api/tracks; the tags of ordinary files are unchanged.

The hostile files are built at test time: a short FLAC from ffmpeg whose
metadata blocks are rewritten here ("fLaC", then blocks with a 1-byte type,
bit 7 marking the last, and a 24-bit big-endian length; VORBIS_COMMENT is
type 4: little-endian vendor length and string, count, and length-prefixed
"KEY=value" entries), and an MP3 behind a hand-made ID3v2.4 tag.
"""

import struct
import subprocess
import time

import pytest

import talas_fixtures as tf

TAG_MAX = 1024
COMMENTS = 100_000
# "€" is 3 bytes in UTF-8: 1024 bytes end inside the 342nd, so a byte cut
# would split it; the stored title is the 341 whole ones (1023 bytes).
LONG_TITLE = "€" * 2000
CUT_TITLE = "€" * (TAG_MAX // 3)


def flac_blocks(data):
    """([(type, body)], audio bytes) of a FLAC file's contents."""
    assert data[:4] == b"fLaC"
    pos, blocks = 4, []
    while True:
        hdr, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        blocks.append((hdr & 0x7F, data[pos + 4:pos + 4 + size]))
        pos += 4 + size
        if hdr & 0x80:
            return blocks, data[pos:]


def vorbis_comment(entries, vendor=b"talas-test"):
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(entries))
    return out + b"".join(struct.pack("<I", len(e)) + e for e in entries)


def write_flac_with_comments(base, dst, entries):
    """DST: BASE's audio and STREAMINFO with ENTRIES as its only comment block."""
    blocks, audio = flac_blocks(base.read_bytes())
    blocks = [b for b in blocks if b[0] not in (1, 4)]  # no padding, no comments
    blocks.insert(1, (4, vorbis_comment(entries)))
    out = bytearray(b"fLaC")
    for i, (kind, body) in enumerate(blocks):
        out.append(kind | (0x80 if i == len(blocks) - 1 else 0))
        out += len(body).to_bytes(3, "big") + body
    dst.write_bytes(bytes(out) + audio)


def hostile_entries(kind):
    first = [("TITLE=" + LONG_TITLE).encode(), b"ARTIST=Hostile Artist", b"ALBUM=Hostile Album"]
    if kind == "repeated":   # one value that libavformat keeps appending to
        rest = [b"TITLE=x"] * (COMMENTS - len(first))
    else:                    # a dictionary searched end to end per comment
        rest = [b"KEY%d=v" % i for i in range(COMMENTS - len(first))]
    return first + rest


def sine_flac(path, seconds=3, metadata=()):
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
            f"sine=frequency=440:duration={seconds}", "-ac", "2"]
    for m in metadata:
        args += ["-metadata", m]
    tf.run(args + [str(path)])
    return path


def syncsafe(n):
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def mp3_with_id3_title(tmp, dst, title):
    """DST: an MP3 behind an ID3v2.4 tag whose TIT2 (UTF-8) is TITLE."""
    base = tmp / "id3base.mp3"
    tf.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
            "-id3v2_version", "0", "-write_id3v1", "0", "-c:a", "libmp3lame", "-b:a", "64k",
            str(base)])
    body = b"\x03" + title.encode()
    frame = b"TIT2" + syncsafe(len(body)) + b"\x00\x00" + body
    tag = b"ID3\x04\x00\x00" + syncsafe(len(frame)) + frame
    dst.write_bytes(tag + base.read_bytes())
    return dst


def decoded_duration_s(path):
    """Seconds of audio ffmpeg decodes from PATH, which must decode cleanly."""
    cp = subprocess.run(["ffmpeg", "-v", "error", "-nostats", "-i", str(path), "-f", "null", "-"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and cp.stderr.strip() == "", cp.stderr[-2000:]
    return tf.ffprobe_duration_ms(path) / 1000


@pytest.mark.parametrize("kind", ["repeated", "distinct"])
def test_flac_with_100000_comments(talas_server, tmp_path, kind):
    lib = tmp_path / "lib"
    lib.mkdir()
    base = sine_flac(tmp_path / "base.flac")
    hostile = lib / "hostile.flac"
    write_flac_with_comments(base, hostile, hostile_entries(kind))
    assert hostile.stat().st_size > 1_000_000

    srv = talas_server([lib], start=False)
    # the scanner's real work on that one file, from a fresh catalog
    t0 = time.monotonic()
    cp = srv.talasctl("scan", timeout=300)
    elapsed = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    assert elapsed < 1.0, f"scanning one FLAC with {COMMENTS} comments took {elapsed:.1f}s"

    srv.start()
    tracks = srv.tracks()
    assert len(tracks) == 1, tracks
    t = tracks[0]
    assert t["title"] == CUT_TITLE, (len(t["title"].encode()), t["title"][:40])
    assert len(t["title"].encode()) == 1023
    assert t["artist"] == "Hostile Artist"
    assert t["album"] == "Hostile Album"
    assert abs(t["duration_ms"] - 3000) <= 50, t

    # its audio is intact: the first transcode answers 200 with an MP3 that
    # decodes to the file's length
    st, _, body = srv.get(f"/stream/{t['id']}?profile=mp3", timeout=60)
    assert st == 200, body[:300]
    out = tmp_path / "out.mp3"
    out.write_bytes(body)
    assert abs(decoded_duration_s(out) - 3.0) <= 0.1


def test_long_tags_are_cut_and_normal_tags_kept(talas_server, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    mp3_with_id3_title(tmp_path, lib / "id3.mp3", "€" * 350_000)  # 1,050,000 bytes
    sine_flac(lib / "normal.flac", metadata=("title=Ordinary é title", "artist=Ordinary Artist",
                                             "album=Ordinary Album"))
    # exactly the cap: kept whole
    sine_flac(lib / "edge.flac", metadata=("title=" + "a" * TAG_MAX, "artist=Edge"))
    # a comment block just under the size where Talas reads it itself:
    # libavformat's handling (repeated keys joined) stays as it was
    base = sine_flac(tmp_path / "base.flac")
    write_flac_with_comments(base, lib / "two_artists.flac",
                             [b"TITLE=Two artists", b"ARTIST=First", b"ARTIST=Second"] +
                             [b"K%d=v" % i for i in range(200)])
    srv = talas_server([lib])

    st, _, body = srv.get("/api/tracks?limit=1000")
    assert st == 200
    assert len(body) < 20_000, f"/api/tracks is {len(body)} bytes"
    by_artist = {t["artist"]: t for t in srv.tracks()}
    long_one = [t for t in srv.tracks() if t["title"].startswith("€")]
    assert len(long_one) == 1
    assert long_one[0]["title"] == CUT_TITLE
    assert by_artist["Ordinary Artist"]["title"] == "Ordinary é title"
    assert by_artist["Ordinary Artist"]["album"] == "Ordinary Album"
    assert by_artist["Edge"]["title"] == "a" * TAG_MAX
    two = [t for t in srv.tracks() if t["title"] == "Two artists"]
    assert len(two) == 1 and two[0]["artist"] == "First;Second", two
