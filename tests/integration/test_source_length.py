"""A source's length as its container states it, against the demux pass.

A cold transcode needs the source's exact decoded length before its first
byte (the MP3 stream's size and Info tag, the HLS playlist). The transcoder
(workers/media/transcoder.c, talas_source_measure) takes it from what the
container states when the file confirms it: FLAC's STREAMINFO, an MP3's
Info tag (confirmed by a walk over every frame header,
workers/media/mp3_length.c), an MP4's sample table. Anything else, and any
file that does not confirm, takes the pass over every packet
(talas_source_measure_pass), which also tells a cut file.

Every file here is measured both ways through talas-transcode: the
samples, rate, channels and truncation must be identical, and the way the
fast measure took must be the one expected (a shortcut that silently fell
back to the pass would prove nothing; one that accepted a cut or
concatenated file would lie about its length).

Sources: tones with pink noise at awkward lengths (10.3 s and more: the
padding at the end is never a whole frame), with the tags that real files
carry (ID3v2 with a cover, ID3v1, APEv2), and excerpts of the Ogg
soundtracks of Debian's frozen-bubble-data cut into MP3 and M4A (no media
is committed).
"""

import json
import os
import struct
from pathlib import Path

import pytest

import talas_fixtures as tf

TOOL = tf.BUILDDIR / "tests" / "tools" / "talas-transcode"
MUSIC = Path("/usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg")


def _tone(out, seconds, args, rate=44100):
    tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"sine=frequency=523:duration={seconds}:sample_rate={rate}",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.05:r={rate}:s=3",
            "-filter_complex", "[0]volume=0.6[a];[a][1]amix=inputs=2:normalize=0",
            "-metadata", "title=Length fixture"] + args + [str(out)], timeout=60)


def _music(out, args):
    if not MUSIC.is_file():
        pytest.skip(f"no real music at {MUSIC}: install Debian package 'frozen-bubble-data'")
    tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error", "-ss", "20", "-t", "33.7",
            "-i", str(MUSIC)] + args + [str(out)], timeout=60)


def _ape_tag(items):
    """An APEv2 tag with header and footer (the layout of taglib's)."""
    body = b"".join(struct.pack("<II", len(v), 0) + k + b"\0" + v for k, v in items)
    size = len(body) + 32

    def frame(flags):
        return b"APETAGEX" + struct.pack("<IIII", 2000, size, len(items), flags) + b"\0" * 8
    return frame(0xA0000000) + body + frame(0x80000000)


def _id3v1():
    return b"TAG" + b"Title".ljust(30, b"\0") + b"Artist".ljust(30, b"\0") + b"\0" * 30 + b"2026" \
        + b"\0" * 30 + b"\x0c"


MP3 = ["-c:a", "libmp3lame"]
# name: (how made, the fast measure's way, truncated)
CASES = {
    "mp3-cbr320": (lambda p: _tone(p, 10.3, ["-ac", "2"] + MP3 + ["-b:a", "320k"]), "info tag", False),
    "mp3-vbr": (lambda p: _tone(p, 12.71, ["-ac", "2"] + MP3 + ["-q:a", "2"]), "info tag", False),
    "mp3-mpeg2-mono": (lambda p: _tone(p, 9.9, ["-ac", "1"] + MP3 + ["-b:a", "64k"], rate=22050),
                       "info tag", False),
    "mp3-mpeg25": (lambda p: _tone(p, 7.3, ["-ac", "1"] + MP3 + ["-b:a", "24k"], rate=8000), "info tag", False),
    "mp3-48k": (lambda p: _tone(p, 5.55, ["-ac", "2"] + MP3 + ["-b:a", "192k"], rate=48000), "info tag", False),
    "mp3-cover-id3v1": (None, "info tag", False),
    "mp3-ape-id3v1": (None, "info tag", False),
    "mp3-short-padding": (None, "info tag", False),
    "mp3-no-info-tag": (lambda p: _tone(p, 10.3, ["-ac", "2"] + MP3 + ["-write_xing", "0"]), "pass", False),
    "mp3-cut": (None, "pass", True),
    "mp3-concatenated": (None, "pass", False),
    "mp3-junk-after": (None, "pass", False),
    "mp3-music": (lambda p: _music(p, MP3 + ["-q:a", "0"]), "info tag", False),
    "m4a-aac": (lambda p: _tone(p, 10.3, ["-ac", "2", "-c:a", "aac", "-b:a", "160k"]), "sample table", False),
    "m4a-aac-mono": (lambda p: _tone(p, 8.01, ["-ac", "1", "-c:a", "aac"], rate=22050), "sample table", False),
    "m4a-faststart": (lambda p: _tone(p, 10.3, ["-ac", "2", "-c:a", "aac", "-movflags", "+faststart"]),
                      "sample table", False),
    "m4a-no-edit-list": (lambda p: _tone(p, 10.3, ["-ac", "2", "-c:a", "aac", "-use_editlist", "0"]),
                         "sample table", False),
    "m4a-alac": (lambda p: _tone(p, 10.3, ["-ac", "2", "-c:a", "alac"]), "sample table", False),
    "mp4-opus": (lambda p: _tone(p, 10.3, ["-ac", "2", "-c:a", "libopus"], rate=48000), "sample table", False),
    "mp4-mp3": (lambda p: _tone(p, 10.3, ["-ac", "2"] + MP3), "sample table", False),
    "m4a-cut": (None, "pass", True),
    "m4a-music": (lambda p: _music(p, ["-c:a", "aac", "-b:a", "256k"]), "sample table", False),
    "flac": (lambda p: _tone(p, 10.3, ["-ac", "2", "-c:a", "flac"]), "streaminfo", False),
    "flac-cut": (None, "pass", True),
}
SUFFIX = {"mp3": ".mp3", "m4a": ".m4a", "mp4": ".mp4", "flac": ".flac"}


def _make(name, d):
    path = d / (name + SUFFIX[name.split("-")[0]])
    make = CASES[name][0]
    if make is not None:
        make(path)
        return path
    # built from others
    if name == "mp3-cover-id3v1":
        cover = d / "cover.png"
        tf.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=600x600",
                "-frames:v", "1", str(cover)])
        src = _make("mp3-vbr", d)
        tf.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(src), "-i", str(cover), "-map", "0",
                "-map", "1", "-c", "copy", "-id3v2_version", "3", "-write_id3v1", "1",
                "-metadata", "artist=Someone", str(path)])
        assert path.stat().st_size > src.stat().st_size + 10000  # the cover is there
    elif name == "mp3-ape-id3v1":
        data = _make("mp3-cbr320", d).read_bytes()
        path.write_bytes(data + _ape_tag([(b"Artist", "Ünïcode".encode()), (b"Title", b"T" * 300)]) + _id3v1())
    elif name == "mp3-short-padding":
        # padding under the decoder's delay (529 samples), which LAME never
        # writes: libavformat then discards nothing at the end
        data = bytearray(_make("mp3-cbr320", d).read_bytes())
        tag = data.find(b"Info")
        flags = struct.unpack(">I", data[tag + 4:tag + 8])[0]
        ext = tag + 8 + sum(n for bit, n in ((1, 4), (2, 4), (4, 100), (8, 4)) if flags & bit)
        assert data[ext:ext + 4] in (b"LAME", b"Lavf", b"Lavc")
        pads = int.from_bytes(data[ext + 21:ext + 24], "big")
        assert pads & 0xfff >= 529
        data[ext + 21:ext + 24] = ((pads & ~0xfff) | 100).to_bytes(3, "big")
        path.write_bytes(bytes(data))
    elif name == "mp3-cut":
        data = _make("mp3-cbr320", d).read_bytes()
        path.write_bytes(data[:len(data) * 3 // 5])
    elif name == "mp3-concatenated":
        path.write_bytes(_make("mp3-cbr320", d).read_bytes() + _make("mp3-vbr", d).read_bytes())
    elif name == "mp3-junk-after":
        path.write_bytes(_make("mp3-cbr320", d).read_bytes() + os.urandom(3000))
    elif name == "m4a-cut":
        data = _make("m4a-faststart", d).read_bytes()  # moov first: the cut leaves it whole
        path.write_bytes(data[:len(data) * 3 // 5])
    elif name == "flac-cut":
        data = _make("flac", d).read_bytes()
        path.write_bytes(data[:len(data) * 3 // 5])
    return path


def _measure(path, *extra):
    return json.loads(tf.run([TOOL, "measure", path] + list(extra)).stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} not built (make check builds it)")
    d = tmp_path_factory.mktemp("lengths")
    made = {}

    def get(name):
        if name not in made:
            made[name] = _make(name, d)
        return made[name]
    return get


@pytest.mark.parametrize("name", list(CASES))
def test_stated_length_is_the_pass_length(files, name):
    path = files(name)
    fast, slow = _measure(path), _measure(path, "--pass")
    _, how, truncated = CASES[name]
    assert slow["measured_by"] == "pass"
    assert fast["measured_by"] == how, (fast, slow)
    assert slow["truncated"] is truncated
    del fast["measured_by"], slow["measured_by"]
    assert fast == slow
    assert fast["samples"] > fast["sample_rate"] * 3  # a real length, not a stub


def test_cut_mp3_is_measured_to_what_it_holds(files):
    whole, cut = _measure(files("mp3-cbr320")), _measure(files("mp3-cut"))
    assert cut["truncated"] is True
    assert 0.55 < cut["samples"] / whole["samples"] < 0.65
