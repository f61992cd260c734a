"""Transcoding over HTTP: /stream/{id}?profile=, ?t=, /preview/{id} and the
LMDB chunk cache behind them (issue 3's acceptance criteria).

What a listener, a player or an operator would check: every profile decodes
with the source's duration; Range reads made while the transcode is still
being produced add up to the final bytes; 100 simultaneous first plays cost
one encode per chunk; the event loop keeps answering while encoders work;
a worker killed mid-encode leaves a usable cache; cache.max_size holds;
validators, ?t=, ?format=, errors; previews (window, fades, preview.start);
an abandoned encode stops; tokens are checked before anything is encoded.

Sources are made with ffmpeg's lavfi (tones, pink noise). Expected grids
(chunk counts, exact sizes, frame offsets) come from the engine's own CLI,
tests/tools/talas-transcode, which test_transcoder.py checks on its own.
Decoding is done by the ffmpeg CLI from a file (so that MP3's Info/LAME tag
is honoured: gapless length), PCM compared with the standard library only.
Servers with their own statistics (single flight, cancel, kill, max_size,
auth) are started per test; the rest share one module server.
"""

import array
import concurrent.futures as cf
import email.utils
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import talas_fixtures as tf

TOOL = tf.BUILDDIR / "tests" / "tools" / "talas-transcode"
JSON_TYPE = "application/json; charset=utf-8"

PROFILES = {  # name: (codec, output rate, content type)
    "high": ("aac", 44100, "audio/aac"),
    "medium": ("aac", 44100, "audio/aac"),
    "low": ("mp3", 22050, "audio/mpeg"),
    "mobile": ("aac", 22050, "audio/aac"),
    "mp3": ("mp3", 44100, "audio/mpeg"),
}
AAC_PRIMING = 1024
SECONDS = 15  # the per-format sources of test 1
FORMATS = {  # name: (file, encoder arguments)
    "mp3": ("f_mp3.mp3", ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k"]),
    "flac48": ("f_flac48.flac", ["-ar", "48000", "-ac", "2", "-c:a", "flac"]),
    "wav96": ("f_wav96.wav", ["-ar", "96000", "-ac", "2", "-c:a", "pcm_s24le"]),
    "wav8": ("f_wav8.wav", ["-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le"]),
    "vorbis": ("f_vorbis.ogg", ["-ar", "44100", "-ac", "2", "-c:a", "libvorbis", "-q:a", "4"]),
    "opus": ("f_opus.opus", ["-ar", "48000", "-ac", "2", "-c:a", "libopus", "-b:a", "96k"]),
    "m4a": ("f_m4a.m4a", ["-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "160k"]),
}
FLAC44 = ["-ar", "44100", "-ac", "2", "-c:a", "flac"]


# ------------------------------------------------------------------ helpers

def ffmpeg(args, timeout=120):
    tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error"] + list(args),
           timeout=timeout)


def make_source(out, seconds, args, title, freq=440, noise=0.05, tone=0.6):
    """A tone plus pink noise (NOISE 0: the tone alone), SECONDS long."""
    if noise > 0:
        ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate=96000",
                "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a={noise}:r=96000:s=7",
                "-filter_complex",
                f"[0]volume={tone}[a];[a][1]amix=inputs=2:normalize=0,"
                "aformat=channel_layouts=stereo",
                "-metadata", f"title={title}", "-metadata", "artist=Talas Tests"]
               + list(args) + [str(out)])
    else:
        ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
                "-metadata", f"title={title}", "-metadata", "artist=Talas Tests"]
               + list(args) + [str(out)])
    return out


def link_dir(d, files):
    """Directory D holding hard links to FILES (own servers' libraries)."""
    d.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.link(f, d / f.name)
    return d


def layout(path, profile, *extra):
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is not built (set TALAS_BUILDDIR or run make)")
    return json.loads(tf.run([TOOL, "layout", path, profile] + list(extra)).stdout)


def source_seconds(path):
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is not built (set TALAS_BUILDDIR or run make)")
    m = json.loads(tf.run([TOOL, "measure", path]).stdout)
    return m["samples"] / m["sample_rate"]


def decode(body, tmp_path, name="body", rate=None):
    """Decodes BODY (written to a file, so that MP3's Info frame is honoured)
    with ffmpeg -xerror; asserts a clean decode; returns mono s16 samples at
    the stream's own rate (or RATE)."""
    p = tmp_path / f"{name}-{hashlib.sha1(body).hexdigest()[:12]}"
    p.write_bytes(body)
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", str(p), "-ac", "1"]
    if rate:
        argv += ["-ar", str(rate)]
    cp = subprocess.run(argv + ["-f", "s16le", "-"], capture_output=True, timeout=120)
    assert cp.returncode == 0 and cp.stderr == b"", \
        f"{len(body)} bytes do not decode cleanly: {cp.stderr.decode(errors='replace')[:600]}"
    a = array.array("h")
    a.frombytes(cp.stdout)
    return a


def decode_pipe_clean(body):
    """The brief's check: ffmpeg -v error -xerror -i - -f null - on the body."""
    cp = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror",
                         "-i", "-", "-f", "null", "-"], input=body, capture_output=True, timeout=120)
    assert cp.returncode == 0 and cp.stderr == b"", cp.stderr.decode(errors="replace")[:600]


def rms(a, start, end, step=1):
    end = min(end, len(a))
    if end <= start:
        return 0.0
    idx = range(start, end, step)
    return math.sqrt(sum(a[i] * a[i] for i in idx) / len(idx))


def rms_diff(a, b, a0, b0, n, step=3):
    n = min(n, len(a) - a0, len(b) - b0)
    idx = range(0, n, step)
    return math.sqrt(sum((a[a0 + i] - b[b0 + i]) ** 2 for i in idx) / max(1, len(idx)))


def mp3_frame_offsets(data):
    """Offsets of the MPEG audio frames of a raw MP3 stream (no ID3), and the
    end offset last."""
    bitrates = {1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
                0: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}
    rates = {1: [44100, 48000, 32000], 0: [22050, 24000, 16000]}
    offs, off = [], 0
    while off + 4 <= len(data):
        h = struct.unpack(">I", data[off:off + 4])[0]
        assert h >> 21 == 0x7FF, f"no frame sync at byte {off}"
        mpeg1 = 1 if (h >> 19) & 3 == 3 else 0
        size = (144 if mpeg1 else 72) * bitrates[mpeg1][(h >> 12) & 15] * 1000 \
            // rates[mpeg1][(h >> 10) & 3] + ((h >> 9) & 1)
        offs.append(off)
        off += size
    assert off == len(data), "the stream does not end on a frame boundary"
    return offs + [off]


def get(srv, path, headers=None, method="GET", timeout=120):
    return srv.get(path, headers=headers, method=method, timeout=timeout)


def stats(srv):
    return srv.get_json("/api/stats")["cache"]


def settled_stats(srv, quiet=1.8, timeout=30):
    """/api/stats once it stopped changing for QUIET seconds (workers flush
    their counters about once a second)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        s = stats(srv)
        if s != last:
            last, since = s, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return s
        time.sleep(0.25)
    raise AssertionError(f"/api/stats kept changing for {timeout}s: {last}")


def ctl_stats(srv):
    """`talasctl cache stats` parsed: {bytes, max, evictions, started, ...}."""
    cp = srv.talasctl("cache", "stats", check=True)
    out = cp.stdout
    m = re.search(r"^bytes: (\d+) bytes.* of (\d+) ", out, re.M)
    assert m, out
    t = re.search(r"^transcodes: (\d+) started, (\d+) completed, (\d+) cancelled, (\d+) failed",
                  out, re.M)
    assert t, out
    return {"bytes": int(m.group(1)), "max": int(m.group(2)),
            "entries": int(re.search(r"^entries: (\d+)", out, re.M).group(1)),
            "evictions": int(re.search(r"^evictions: (\d+)", out, re.M).group(1)),
            "started": int(t.group(1)), "completed": int(t.group(2)),
            "cancelled": int(t.group(3)), "failed": int(t.group(4)), "text": out}


def ctl_stats_settled(srv, quiet=1.8, timeout=30):
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        s = ctl_stats(srv)
        s.pop("text")
        if s != last:
            last, since = s, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return s
        time.sleep(0.3)
    raise AssertionError(f"talasctl cache stats kept changing for {timeout}s: {last}")


def error_json(body):
    return json.loads(body)["error"]


def content_range(h):
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", h["Content-Range"] or "")
    assert m, h["Content-Range"]
    return tuple(int(x) for x in m.groups())


def worker_cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def ids_by_title(srv):
    return {t["title"]: t["id"] for t in srv.tracks()}


def cache_yaml(max_size="64MiB", threads=1, extra=""):
    return f"transcode:\n  threads: {threads}\ncache:\n  max_size: {max_size}\n" + extra


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Every source file, by name; "main" is the shared server's library."""
    base = tmp_path_factory.mktemp("tmedia")
    main = base / "main"
    main.mkdir()
    long_ = base / "long"
    long_.mkdir()
    m = {"main": main}
    for i, (name, (fname, args)) in enumerate(FORMATS.items()):
        m[name] = make_source(main / fname, SECONDS, args, f"Format {name}", freq=330 + 40 * i)
    m["range"] = make_source(main / "range.flac", 40, FLAC44, "Range source", freq=500)
    m["seek"] = make_source(main / "seek.flac", 20, FLAC44, "Seek source", freq=600)
    m["preview"] = make_source(main / "preview.flac", 100, FLAC44, "Preview source",
                               freq=700, noise=0.3, tone=0.2)
    m["short"] = make_source(main / "short.flac", 10, FLAC44, "Short source", freq=800)
    m["change"] = make_source(main / "change.flac", 8, FLAC44, "Change source", freq=900)
    m["aacrange"] = make_source(main / "aacrange.flac", 12, FLAC44, "AAC range source", freq=950)
    # a FLAC cut in the middle of its audio: probes, decodes up to the cut
    full = make_source(base / "full.flac", 20, FLAC44, "Truncated source", freq=1000)
    data = full.read_bytes()
    (main / "trunc.flac").write_bytes(data[:len(data) // 2])
    m["trunc"] = main / "trunc.flac"
    # a WAV whose header announces MP3 (probes: codec, rate, channels) over
    # bytes that are not MP3 at all: nothing decodes
    rnd = random.Random(5)
    n = 200000
    junk = bytes(rnd.getrandbits(8) for _ in range(n))
    fmt = struct.pack("<HHIIHH", 0x55, 2, 44100, 44100, 1, 0)
    (main / "garbage.wav").write_bytes(
        b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + n) + b"WAVE" + b"fmt "
        + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", n) + junk)
    m["garbage"] = main / "garbage.wav"
    # long tones for the own servers (fast to make, realistic to encode)
    mono = ["-ar", "44100", "-ac", "1", "-c:a", "flac"]
    m["long10"] = make_source(long_ / "long10.flac", 600, mono, "Long ten", noise=0)
    m["long5"] = make_source(long_ / "long5.flac", 300, mono, "Long five", freq=550, noise=0)
    for i in range(4):
        m[f"busy{i}"] = make_source(long_ / f"busy{i}.flac", 180, mono, f"Busy {i}",
                                    freq=300 + 70 * i, noise=0)
    m["sf"] = make_source(long_ / "sf.flac", 30, FLAC44, "Single flight", freq=450)
    m["base"] = base
    return m


@pytest.fixture(scope="module")
def tsrv(tmp_path_factory, media):
    srv = tf.TalasServer(tmp_path_factory.mktemp("tsrv"), [media["main"]], workers=2,
                         extra_yaml=cache_yaml("64MiB"))
    srv.start(wait_scan=True)
    try:
        srv.ids = ids_by_title(srv)
        yield srv
    finally:
        srv.kill()


def tid(srv, title):
    assert title in srv.ids, f"{title!r} is not in the catalog: {sorted(srv.ids)}"
    return srv.ids[title]


# ------------------------------------------------ 1. every source x profile

@pytest.fixture(scope="module")
def first_plays(tsrv, media):
    """The first (uncached) GET of every (format, profile), four at a time:
    {(format, profile): (status, headers, body)}."""
    jobs = [(f, p) for f in FORMATS for p in PROFILES]

    def one(job):
        f, p = job
        return job, get(tsrv, f"/stream/{tid(tsrv, f'Format {f}')}?profile={p}", timeout=180)

    with cf.ThreadPoolExecutor(4) as ex:
        return dict(ex.map(one, jobs))


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_and_profile_decodes_with_source_duration(tsrv, media, first_plays, tmp_path,
                                                               fmt, profile):
    codec, rate, ctype = PROFILES[profile]
    st, h, body = first_plays[(fmt, profile)]
    assert st == 200, (st, body[:300])
    assert h["Content-Type"] == ctype
    if codec == "mp3":
        # exact size on the very first play, and it is the engine's size
        assert h["Content-Length"] is not None, "no Content-Length on a first MP3 play"
        assert int(h["Content-Length"]) == len(body)
        assert len(body) == layout(media[fmt], profile)["total_size"]
        assert h["Accept-Ranges"] == "bytes"
    else:
        assert h["Content-Length"] is None, "an uncached AAC transcode announced a length"
        assert h["Accept-Ranges"] == "none"
    decode_pipe_clean(body)
    pcm = decode(body, tmp_path, rate=None)
    decoded = len(pcm) - (AAC_PRIMING if codec == "aac" else 0)
    want = source_seconds(media[fmt])
    assert abs(decoded / rate - want) < 0.050, \
        f"{fmt} -> {profile}: decoded {decoded / rate:.4f} s, source {want:.4f} s"


def test_aac_once_cached_has_length_and_ranges(tsrv, media, first_plays):
    """After a full first play, an AAC transcode is served from the cache:
    exact Content-Length, the same bytes, Range."""
    _, _, first = first_plays[("flac48", "high")]
    path = f"/stream/{tid(tsrv, 'Format flac48')}?profile=high"

    def cached():
        st, h, _ = get(tsrv, path, method="HEAD")
        return h if st == 200 and h["Content-Length"] is not None else None
    h = tf.wait_for(cached, 10, interval=0.2, what="the AAC transcode to be fully cached")
    assert int(h["Content-Length"]) == len(first)
    assert h["Accept-Ranges"] == "bytes"
    st, h, body = get(tsrv, path)
    assert st == 200 and body == first
    st, h, part = get(tsrv, path, headers={"Range": "bytes=1000-4999"})
    assert st == 206, st
    assert content_range(h) == (1000, 4999, len(first))
    assert part == first[1000:5000]


def test_aac_first_play_ignores_range(tsrv, media):
    path = f"/stream/{tid(tsrv, 'AAC range source')}?profile=mobile"
    st, h, body = get(tsrv, path, headers={"Range": "bytes=0-99"})
    assert st == 200, f"uncached AAC answered {st} to a Range request"
    assert h["Content-Range"] is None
    assert h["Accept-Ranges"] == "none"
    assert len(body) > 1000
    decode_pipe_clean(body)


# ------------------------------------------------ 2. Range reads while encoding

def _ranges(total, rnd):
    out, off = [], 0
    while off < total:
        n = rnd.randint(16 * 1024, 64 * 1024)
        out.append((off, min(total, off + n) - 1))
        off += n
    rnd.shuffle(out)
    return out


@pytest.mark.parametrize("profile", ["mp3", "low"])
def test_random_ranges_on_first_play_add_up_to_the_stream(tsrv, media, profile):
    path = f"/stream/{tid(tsrv, 'Range source')}?profile={profile}"
    st, h, _ = get(tsrv, path, method="HEAD")
    assert st == 200
    assert h["Accept-Ranges"] == "bytes"
    assert h["Content-Length"] is not None, "no Content-Length on a first MP3 HEAD"
    total = int(h["Content-Length"])
    assert total == layout(media["range"], profile)["total_size"]
    rnd = random.Random(f"ranges-{profile}")
    ranges = _ranges(total, rnd)
    assert len(ranges) >= 8

    def one(r):
        a, b = r
        st, h, body = get(tsrv, path, headers={"Range": f"bytes={a}-{b}"})
        return r, st, h, body

    parts = {}
    with cf.ThreadPoolExecutor(4) as ex:
        for (a, b), st, h, body in ex.map(one, ranges):
            assert st == 206, f"bytes={a}-{b}: status {st}"
            assert content_range(h) == (a, b, total)
            assert len(body) == b - a + 1 == int(h["Content-Length"])
            parts[a] = body
    joined = b"".join(parts[a] for a in sorted(parts))
    assert len(joined) == total
    st, h, full = get(tsrv, path)
    assert st == 200 and int(h["Content-Length"]) == total
    assert joined == full, "Range bytes read during the encode differ from the cached stream"


def test_range_near_the_end_of_a_cold_transcode_starts_encoding_there(talas_server, media, tmp_path):
    """A seek to 95% of a 10-minute track on its very first play: the answer
    needs about one chunk, not the 95 before it."""
    lib = link_dir(tmp_path / "lib", [media["long10"]])
    srv = talas_server([lib], workers=2, extra_yaml=cache_yaml("128MiB"))
    path = f"/stream/{tid_of(srv, 'Long ten')}?profile=mp3"
    lay = layout(media["long10"], "mp3")
    total = lay["total_size"]
    a = total * 95 // 100
    t0 = time.monotonic()
    st, h, body = get(srv, path, headers={"Range": f"bytes={a}-{a + 65535}"})
    took = time.monotonic() - t0
    assert st == 206, st
    assert content_range(h) == (a, a + 65535, total)
    t1 = time.monotonic()
    st, _, full = get(srv, path)
    whole = time.monotonic() - t1
    assert st == 200 and len(full) == total and full[a:a + 65536] == body
    assert took < max(0.5, whole / 8), \
        f"a Range at 95% took {took:.2f} s on first play; the whole transcode took {whole:.2f} s"



def test_a_cold_range_reads_two_chunks_ahead_and_a_cached_one_none(talas_server, media, tmp_path):
    """A range of a transcode not yet made encodes its chunk and has the two
    after it started (read ahead), so that the player's next ranges find
    them; once the whole transcode is cached, a range at any chunk starts no
    encode: the look-up that tells whether a range must encode also finds
    the chunks ahead cached, and claims none of them."""
    lib = link_dir(tmp_path / "lib", [media["sf"]])
    srv = talas_server([lib], workers=1, extra_yaml=cache_yaml("64MiB"))
    path = f"/stream/{tid_of(srv, 'Single flight')}?profile=mp3"
    lay = layout(media["sf"], "mp3")
    offs = lay["chunk_offsets"]
    assert lay["chunks"] >= 5, lay["chunks"]
    base = ctl_stats_settled(srv)["started"]
    a = offs[2] + 1000
    st, h, cold = get(srv, path, headers={"Range": f"bytes={a}-{a + 9999}"})
    assert st == 206 and len(cold) == 10000 and content_range(h) == (a, a + 9999, lay["total_size"])
    assert ctl_stats_settled(srv)["started"] - base == 3, "chunk 2, then 3 and 4 ahead"
    st, _, full = get(srv, path)
    assert st == 200 and len(full) == lay["total_size"] and full[a:a + 10000] == cold
    made = ctl_stats_settled(srv)["started"]
    for c in range(lay["chunks"]):
        a = offs[c] + 1000
        st, h, body = get(srv, path, headers={"Range": f"bytes={a}-{a + 9999}"})
        assert st == 206 and body == full[a:a + 10000], (c, st)
    assert ctl_stats_settled(srv)["started"] == made, "a range of a cached transcode encoded"


def crossings_hz(samples, rate):
    """The frequency of a pure tone from its zero crossings."""
    n = sum(1 for i in range(1, len(samples)) if (samples[i - 1] < 0) != (samples[i] < 0))
    return n / 2 / (len(samples) / rate)


def test_a_file_replaced_under_a_request_is_not_cached_as_the_old_one(talas_server, tmp_path):
    """A worker takes a track file's identity (size, modification time)
    from a descriptor it keeps for up to a second. A file replaced inside
    that second is asked for as the old one, but its encode reads the new
    one: its measure and chunks are served and not kept, since under the
    old identity they would later be the old file's. When the old file
    comes back (same bytes, same time), its transcode is the old file's
    sound and length."""
    lib = tmp_path / "lib"
    lib.mkdir()
    a, b = tmp_path / "a.flac", tmp_path / "b.flac"
    make_source(a, 8, FLAC44, "Swapped", freq=440, noise=0)
    make_source(b, 6, FLAC44, "Swapped", freq=1320, noise=0)
    assert a.stat().st_size != b.stat().st_size
    t_a = 1700000000
    track = lib / "swapped.flac"

    def put(src, mtime=None):
        tmp = lib / ".swap.tmp"
        shutil.copyfile(src, tmp)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.rename(tmp, track)

    put(a, t_a)
    rates = (96, 112, 128, 160, 192, 224, 256, 320, 80, 64)
    profiles = "".join(f"    - {{name: s{k}, codec: mp3, bitrate: {k}, sample_rate: 44100}}\n" for k in rates)
    srv = talas_server([lib], workers=1,
                       extra_yaml=f"transcode:\n  threads: 1\n  profiles:\n{profiles}cache:\n  max_size: 64MiB\n")
    tid = tid_of(srv, "Swapped")
    size_a = f"-{a.stat().st_size:x}-"
    hit = False
    for attempt, kbps in enumerate(rates):
        put(a, t_a)
        time.sleep(1.2)  # the worker's descriptor of the file before is gone
        st, _, _ = get(srv, f"/stream/{tid}", headers={"Range": "bytes=0-0"})
        assert st == 206
        put(b)
        # a bitrate never asked before: this encodes, from what the path is now
        st, h, body = get(srv, f"/stream/{tid}?profile=s{kbps}")
        assert st == 200, st
        if size_a in h["ETag"]:
            hit = True  # asked as A, encoded from B
            heard = decode(body, tmp_path, f"b{attempt}")
            assert crossings_hz(heard, 44100) > 1000 and abs(len(heard) / 44100 - 6) < 0.1
            put(a, t_a)
            time.sleep(1.2)
            st, h2, again = get(srv, f"/stream/{tid}?profile=s{kbps}")
            assert st == 200 and h2["ETag"] == h["ETag"]
            heard = decode(again, tmp_path, f"a{attempt}")
            hz, seconds = crossings_hz(heard, 44100), len(heard) / 44100
            assert 400 < hz < 480, f"the old file's transcode sounds at {hz:.0f} Hz: the new file's, cached"
            assert abs(seconds - 8) < 0.1, f"the old file's transcode lasts {seconds:.2f} s: the new file's measure"
            break
    assert hit, "no request fell in the second a replaced file is still seen as the old one"


# ------------------------------------------------ 3. single flight

def test_hundred_concurrent_first_plays_cost_one_encode_per_chunk(talas_server, media, tmp_path):
    lib = link_dir(tmp_path / "lib", [media["sf"]])
    srv = talas_server([lib], workers=2, extra_yaml=cache_yaml("64MiB"))
    track = tid_of(srv, "Single flight")
    lay = layout(media["sf"], "mp3")
    before = settled_stats(srv, quiet=1.5)
    n = 100
    barrier = threading.Barrier(n)
    results = [None] * n

    def client(i):
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=120)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            conn.request("GET", f"/stream/{track}?profile=mp3")
            r = conn.getresponse()
            body = r.read()
            results[i] = (r.status, r.getheader("Content-Length"), len(body),
                          hashlib.sha256(body).hexdigest())
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = ("error", repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    errors = [r for r in results if r is None or r[0] != 200]
    assert not errors, f"{len(errors)} of {n} failed, e.g. {errors[:3]}"
    assert {r[1] for r in results} == {str(lay["total_size"])}
    assert {r[2] for r in results} == {lay["total_size"]}
    assert len({r[3] for r in results}) == 1, "clients got different bytes"
    after = settled_stats(srv)
    started = after["transcodes_started"] - before["transcodes_started"]
    print(f"\nsingle flight: {started} encodes for {lay['chunks']} chunks, 100 clients")
    assert started == lay["chunks"], \
        f"{started} encodes for a transcode of {lay['chunks']} chunks (100 concurrent clients)"
    assert after["chunks"] == lay["chunks"]


def tid_of(srv, title):
    srv.ids = ids_by_title(srv)
    return tid(srv, title)


# ------------------------------------------------ 4. the loop stays responsive

class SlowReader(threading.Thread):
    """GET PATH on a small receive buffer, reading 8 KiB every 50 ms."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.got = 0
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.settimeout(30)
            s.connect(("127.0.0.1", self.port))
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            while not self.stop.is_set():
                d = s.recv(8192)
                if not d:
                    break
                self.got += len(d)
                time.sleep(0.05)
            s.close()
        except Exception as e:  # noqa: BLE001
            self.error = e


def test_health_answers_fast_while_eight_cold_transcodes_stream(talas_server, media, tmp_path):
    files = [media[f"busy{i}"] for i in range(4)]
    lib = link_dir(tmp_path / "lib", files)
    srv = talas_server([lib], workers=2, extra_yaml=cache_yaml("128MiB"))
    ids = ids_by_title(srv)
    paths = [f"/stream/{ids[f'Busy {i}']}?profile={p}" for i in range(4) for p in ("mp3", "high")]
    readers = [SlowReader(srv.port, p) for p in paths]
    for r in readers:
        r.start()
    try:
        tf.wait_for(lambda: sum(1 for r in readers if r.got > 0) >= 2, 20,
                    what="the slow clients to receive bytes")
        workers = srv.worker_pids()
        cpu0, t0 = worker_cpu_seconds(workers), time.monotonic()
        lat = []
        for _ in range(200):
            a = time.perf_counter()
            st, _, body = srv.get("/api/health", timeout=5)
            lat.append(time.perf_counter() - a)
            assert st == 200, st
            time.sleep(0.01)
        busy = (worker_cpu_seconds(workers) - cpu0) / (time.monotonic() - t0)
    finally:
        for r in readers:
            r.stop.set()
    lat.sort()
    p99 = lat[math.ceil(0.99 * len(lat)) - 1]
    print(f"\n/api/health during 8 cold transcodes: p99 {p99 * 1000:.1f} ms, median "
          f"{lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms; workers' CPU {busy:.2f}")
    # the measure means something only if the encoders were working
    assert busy > 0.5, f"workers used {busy:.2f} CPU while measuring: no encode was running"
    assert p99 < 0.050, (f"/api/health p99 {p99 * 1000:.1f} ms (median "
                         f"{lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms) "
                         f"during 8 cold transcodes")
    errors = [r.error for r in readers if r.error]
    assert not errors, errors


# ------------------------------------------------ 5. kill -9 mid-encode

def test_worker_killed_mid_encode_leaves_a_usable_cache(talas_server, media, tmp_path):
    lib = link_dir(tmp_path / "lib", [media["long5"]])
    srv = talas_server([lib], workers=2, extra_yaml=cache_yaml("128MiB"))
    track = tid_of(srv, "Long five")
    lay = layout(media["long5"], "mp3")
    path = f"/stream/{track}?profile=mp3"
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    got = b""
    while len(got) < 100 * 1024:
        d = s.recv(65536)
        assert d, "connection closed early"
        got += d
    old = srv.worker_pids()
    assert len(old) == 2
    for p in old:
        os.kill(p, signal.SIGKILL)
    rest = b""
    try:
        s.settimeout(10)
        while True:
            d = s.recv(65536)
            if not d:
                break
            rest += d
    except OSError:
        pass
    s.close()
    assert len(got) + len(rest) < lay["total_size"], "the encode had finished before the kill"
    srv.wait_worker_pids(2, timeout=15, exclude=old)
    tf.wait_for(srv._health_ok, 10, what="health after the respawn")
    st, h, body = get(srv, path)
    assert st == 200, (st, body[:300])
    assert int(h["Content-Length"]) == len(body) == lay["total_size"]
    pcm = decode(body, tmp_path)
    assert len(pcm) == lay["out_samples"], (len(pcm), lay["out_samples"])
    cp = srv.talasctl("cache", "verify")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "cache: clean" in cp.stdout, cp.stdout
    # the cache survives a restart: the same bytes, no encode
    s0 = settled_stats(srv)
    assert s0["chunks"] == lay["chunks"], s0
    srv.stop()
    srv.start(wait_scan=True)
    st, h, again = get(srv, path)
    assert st == 200 and again == body
    s1 = settled_stats(srv)
    assert s1["transcodes_started"] == s0["transcodes_started"], \
        "a cached transcode was encoded again after a restart"


# ------------------------------------------------ 6. cache.max_size holds

def test_cache_max_size_holds_under_three_times_the_load(talas_server, media, tmp_path):
    files = [media[f"busy{i}"] for i in range(3)]
    lib = link_dir(tmp_path / "lib", files)
    max_size = 4 * 1024 * 1024
    srv = talas_server([lib], workers=2, extra_yaml=cache_yaml("4MiB"))
    ids = ids_by_title(srv)
    jobs = [(i, p) for p in ("mp3", "low") for i in range(3)]
    written = sum(layout(files[i], p)["total_size"] for i, p in jobs)
    assert written >= 3 * max_size, written

    def one(job):
        i, p = job
        st, h, body = get(srv, f"/stream/{ids[f'Busy {i}']}?profile={p}", timeout=180)
        return job, st, h, body

    first = {}
    with cf.ThreadPoolExecutor(3) as ex:
        for (i, p), st, h, body in ex.map(one, jobs):
            want = layout(files[i], p)["total_size"]
            assert st == 200, ((i, p), st, body[:200])
            assert int(h["Content-Length"]) == len(body) == want, ((i, p), len(body), want)
            first[(i, p)] = hashlib.sha256(body).hexdigest()
    # the first transcode was evicted by now: made again, identical
    _, st, h, body = one(jobs[0])
    assert st == 200 and hashlib.sha256(body).hexdigest() == first[jobs[0]]
    s = settled_stats(srv)
    c = ctl_stats(srv)
    assert s["bytes"] <= max_size, f"/api/stats bytes {s['bytes']} > max_size {max_size}"
    assert c["bytes"] <= max_size, c["text"]
    assert s["max_size"] == max_size, s
    assert s["evictions"] > 0 and c["evictions"] > 0, (s, c["text"])
    assert s["transcodes_failed"] == 0, s
    cp = srv.talasctl("cache", "verify")
    assert cp.returncode == 0, cp.stdout + cp.stderr


# ------------------------------------------------ 7. validators, ?t=, errors

def test_etag_last_modified_and_304(tsrv, media):
    track = tid(tsrv, "Seek source")
    path = f"/stream/{track}?profile=mp3"
    st, h_first, _ = get(tsrv, path, method="HEAD")  # uncached
    assert st == 200
    etag = h_first["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag or ""), etag
    st, h, body = get(tsrv, path)
    assert st == 200 and h["ETag"] == etag, (etag, h["ETag"])
    mtime = media["seek"].stat().st_mtime
    assert h["Last-Modified"] == email.utils.formatdate(int(mtime), usegmt=True)
    st, h304, b304 = get(tsrv, path, headers={"If-None-Match": etag})
    assert st == 304 and b304 == b"", st
    assert h304["ETag"] == etag
    st, _, b = get(tsrv, path, headers={"If-None-Match": '"something-else"'})
    assert st == 200 and b == body
    others = {get(tsrv, f"/stream/{track}?profile={p}", method="HEAD")[1]["ETag"]
              for p in ("low", "high")}
    original = get(tsrv, f"/stream/{track}", method="HEAD")[1]["ETag"]
    assert len(others | {etag, original}) == 4, (etag, others, original)


def test_cached_transcode_costs_no_encode(tsrv, media):
    track = tid(tsrv, "Seek source")
    path = f"/stream/{track}?profile=mp3"
    st, _, full = get(tsrv, path)
    assert st == 200
    s0 = settled_stats(tsrv)
    for rng in (None, "bytes=5000-70000", "bytes=-2000"):
        st, h, body = get(tsrv, path, headers={"Range": rng} if rng else None)
        assert st == (206 if rng else 200) and body in full
    s1 = settled_stats(tsrv)
    assert s1["transcodes_started"] == s0["transcodes_started"], (s0, s1)
    assert s1["hits"] > s0["hits"], (s0, s1)


def test_no_parameter_is_the_original_file(tsrv, media):
    st, h, body = get(tsrv, f"/stream/{tid(tsrv, 'Seek source')}")
    assert st == 200 and body == media["seek"].read_bytes()
    assert h["Content-Type"] == "audio/flac"


def test_t_offset_mp3_is_the_stream_from_the_frame_holding_t(tsrv, media, tmp_path):
    track = tid(tsrv, "Seek source")
    lay = layout(media["seek"], "mp3", "--frames")
    st, _, full = get(tsrv, f"/stream/{track}?profile=mp3")
    assert st == 200 and len(full) == lay["total_size"]
    t = 7.3
    st, h, body = get(tsrv, f"/stream/{track}?profile=mp3&t={t}")
    assert st == 200, (st, body[:200])
    assert h["Content-Type"] == "audio/mpeg"
    assert h["Content-Length"] is not None and int(h["Content-Length"]) == len(body)
    assert b"Info" not in body[:64] and b"Xing" not in body[:64], "?t= kept the Info frame"
    start = len(full) - len(body)
    assert full[start:] == body, "?t= is not the tail of the stream"
    offsets = lay["frame_offsets"]
    assert start in offsets, f"?t= starts at byte {start}, not at a frame"
    j = offsets.index(start)
    spf, rate = lay["frame_samples"], 44100
    lo = int(t * rate) // spf
    hi = (int(t * rate) + lay["encoder_delay"]) // spf + 1
    assert lo <= j <= hi, f"?t={t} starts at frame {j}; the frame holding t is in [{lo}, {hi}]"
    pcm = decode(body, tmp_path)
    want = source_seconds(media["seek"]) - t
    # a frame-aligned start is within one frame (26 ms) of t
    assert abs(len(pcm) / rate - want) < 0.050 + spf / rate, (len(pcm) / rate, want)


def test_t_offset_aac_is_the_stream_from_the_frame_holding_t(tsrv, media, tmp_path):
    track = tid(tsrv, "Seek source")
    path = f"/stream/{track}?profile=medium"
    st, _, full = get(tsrv, path)
    assert st == 200
    t = 9.0
    st, h, body = get(tsrv, path + f"&t={t}")
    assert st == 200, (st, body[:200])
    assert h["Content-Type"] == "audio/aac"
    assert full.endswith(body), "?t= is not the tail of the AAC stream"
    pcm = decode(body, tmp_path)
    want = source_seconds(media["seek"]) - t
    assert abs(len(pcm) / 44100 - want) < 0.050 + 2 * 1024 / 44100, (len(pcm) / 44100, want)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("profile", ["mp3", "medium"])
@pytest.mark.parametrize("t", ["20", "20.0001", "20.5", "3600"])
def test_t_at_or_past_the_end_is_416_start_past_end(tsrv, media, t, profile, method):
    """Seek source lasts exactly 20 s: a start there or later has nothing
    to play, and says how long the track is."""
    track = tid(tsrv, "Seek source")
    assert source_seconds(media["seek"]) == 20.0
    st, h, body = get(tsrv, f"/stream/{track}?profile={profile}&t={t}", method=method)
    assert st == 416, (t, profile, st, len(body), body[:100])
    assert h["Content-Type"] == JSON_TYPE
    assert h["Content-Range"] is None, "a ?t= past the end is no byte range"
    if method == "GET":
        err = error_json(body)
        assert err["code"] == "start_past_end", err
        assert "20.000 s" in err["message"], err
    # just before the end there is still the last frame to hear
    st, h, body = get(tsrv, f"/stream/{track}?profile={profile}&t=19.9", method=method)
    assert st == 200, (st, body[:200])


@pytest.mark.parametrize("t", ["-1", "-0.5", "nan", "NaN", "inf", "-inf", "abc", "", "1e999",
                               "0x10", "%205", "5s", "1,5", "--1", "+3", "1e2"])
def test_malformed_t_is_400(tsrv, t):
    track = tid(tsrv, "Seek source")
    for m in ("GET", "HEAD"):
        st, h, body = get(tsrv, f"/stream/{track}?profile=mp3&t={t}", method=m)
        assert st == 400, (t, m, st, body[:200])
        assert h["Content-Type"] == JSON_TYPE
        if m == "GET":
            err = error_json(body)
            assert err["code"] == "invalid_parameter" and err["message"].startswith("t:"), err
    for good in ("0", "3", "3.", ".5", "19.25"):
        st, _, body = get(tsrv, f"/stream/{track}?profile=mp3&t={good}", method="HEAD")
        assert st == 200, (good, st)


def test_format_and_bitrate_map_to_profiles(tsrv):
    track = tid(tsrv, "Seek source")
    _, _, a = get(tsrv, f"/stream/{track}?profile=mp3")
    st, h, b = get(tsrv, f"/stream/{track}?format=mp3&bitrate=192")
    assert st == 200 and a == b and h["Content-Type"] == "audio/mpeg"
    _, _, c = get(tsrv, f"/stream/{track}?profile=low")
    st, _, d = get(tsrv, f"/stream/{track}?format=mp3&bitrate=128")
    assert st == 200 and c == d
    st, h, e = get(tsrv, f"/stream/{track}?format=aac&bitrate=320")
    _, _, f = get(tsrv, f"/stream/{track}?profile=high")
    assert st == 200 and e == f and h["Content-Type"] == "audio/aac"
    for q in ("format=mp3&bitrate=100", "format=ogg&bitrate=192", "format=aac&bitrate=abc"):
        st, h, body = get(tsrv, f"/stream/{track}?{q}")
        assert st == 400, (q, st)
        assert h["Content-Type"] == JSON_TYPE
        assert error_json(body)["message"]


def test_unknown_profile_and_unknown_id(tsrv):
    track = tid(tsrv, "Seek source")
    for m in ("GET", "HEAD"):
        st, h, body = get(tsrv, f"/stream/{track}?profile=ultra", method=m)
        assert st == 400, (m, st)
        assert h["Content-Type"] == JSON_TYPE
        if m == "GET":
            assert error_json(body)["code"] == "unknown_profile"
    for path in ("/stream/AAAAAAAAAAAAAAAA?profile=mp3", "/preview/AAAAAAAAAAAAAAAA"):
        st, h, body = get(tsrv, path)
        assert st == 404, (path, st)
        assert error_json(body)["code"] == "not_found"


def test_multi_range_and_unsatisfiable_range(tsrv):
    path = f"/stream/{tid(tsrv, 'Seek source')}?profile=low"
    st, _, full = get(tsrv, path)
    assert st == 200
    st, h, body = get(tsrv, path, headers={"Range": "bytes=0-9,100-199"})
    assert st == 200 and body == full, st
    st, h, body = get(tsrv, path, headers={"Range": f"bytes={len(full)}-"})
    assert st == 416, st
    assert h["Content-Range"] == f"bytes */{len(full)}"
    st, h, body = get(tsrv, path, headers={"Range": "bytes=-1000"})
    assert st == 206 and body == full[-1000:]


def test_truncated_source_streams_what_decodes_and_is_not_cached_whole(tsrv, media, tmp_path):
    track = tid(tsrv, "Truncated source")
    path = f"/stream/{track}?profile=mp3"
    log_before = len(tf.read_text(tsrv.error_log, limit=10 ** 7))
    s0 = settled_stats(tsrv)
    st, h, body = get(tsrv, path)
    assert st == 200, (st, body[:300])
    assert int(h["Content-Length"]) == len(body)
    pcm = decode(body, tmp_path)
    assert 0.4 * 20 < len(pcm) / 44100 < 0.6 * 20, len(pcm) / 44100
    s1 = settled_stats(tsrv)
    assert s1["transcodes_started"] > s0["transcodes_started"]
    new_log = tf.read_text(tsrv.error_log, limit=10 ** 7)[log_before:]
    assert track in new_log or "trunc.flac" in new_log, f"no error logged: {new_log[-2000:]!r}"
    st, h, again = get(tsrv, path)
    assert st == 200 and again == body
    s2 = settled_stats(tsrv)
    assert s2["transcodes_started"] > s1["transcodes_started"], \
        "the chunk that did not decode fully was served from the cache"
    cp = tsrv.talasctl("cache", "verify")
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_undecodable_source_is_422_and_not_cached(tsrv, media):
    # garbage.wav has no tags: the one track of codec mp3 in a WAV container
    cands = [t for t in tsrv.tracks() if t.get("codec") == "mp3" and t.get("container") == "wav"]
    assert len(cands) == 1, f"garbage.wav is not a track: {tsrv.tracks()}"
    track = cands[0]["id"]
    s0 = settled_stats(tsrv)
    for _ in range(2):
        try:
            st, h, body = get(tsrv, f"/stream/{track}?profile=mp3")
        except http.client.IncompleteRead as e:
            raise AssertionError(f"not a 422: a response whose body was cut after "
                                 f"{len(e.partial)} bytes ({e.expected} more announced)") from None
        assert st == 422, (st, body[:300])
        assert h["Content-Type"] == JSON_TYPE
        assert error_json(body)["message"]
    s1 = settled_stats(tsrv)
    assert s1["entries"] == s0["entries"], "a failed transcode left a cache entry"
    assert s1["transcodes_failed"] > s0["transcodes_failed"]


def test_changed_source_invalidates_its_transcodes(tsrv, media, tmp_path):
    track = tid(tsrv, "Change source")
    path = f"/stream/{track}?profile=mp3"
    st, h, old = get(tsrv, path)
    assert st == 200
    old_etag = h["ETag"]
    # same length and tags, another tone: another file (size or mtime differs)
    tmp = make_source(tmp_path / "new.flac", 8, FLAC44, "Change source", freq=1200)
    time.sleep(1.1)
    os.replace(tmp, media["change"])
    st, h, body = get(tsrv, path)
    assert st != 200 or body != old, "the old transcode was served for a changed file (no rescan)"
    r = tsrv.talasctl("scan", timeout=60)
    assert r.returncode == 0, r.stderr
    st, h, body = get(tsrv, path)
    assert st == 200, st
    assert body != old and h["ETag"] != old_etag
    assert int(h["Content-Length"]) == len(body)
    decode(body, tmp_path)


# ------------------------------------------------ 8. previews

RATE = 44100


def _check_preview_window(pcm, ref, start_s, length_s):
    """PCM is REF[start_s : start_s + length_s] with 1 s fades."""
    assert abs(len(pcm) / RATE - length_s) < 0.050, f"preview of {len(pcm) / RATE:.4f} s"
    mid = len(pcm) // 2
    middle = rms(pcm, mid, mid + RATE // 2)
    assert middle > 1000, middle
    # aligned on the source at START_S (search a few samples either way)
    s0 = int(start_s * RATE)
    seg, n = mid - RATE // 4, RATE // 2
    errs = {lag: rms_diff(pcm, ref, seg, s0 + seg + lag, n) for lag in range(-6, 7)}
    best = min(errs, key=errs.get)
    assert errs[best] < middle / 4, f"no match at {start_s} s: errors {errs}, signal {middle:.0f}"
    assert abs(best) <= 2, f"off by {best} samples: {errs}"
    off = rms_diff(pcm, ref, seg, s0 + seg + RATE // 2 + 13, n)
    assert off > middle / 2, "the comparison cannot tell 0.5 s apart"
    # fades: the first and last 50 ms quiet, half-way up at 0.5 s
    edge = RATE // 20
    assert rms(pcm, 0, edge) < middle / 10, (rms(pcm, 0, edge), middle)
    assert rms(pcm, len(pcm) - edge, len(pcm)) < middle / 10
    assert rms(pcm, RATE * 45 // 100, RATE * 55 // 100) > middle / 4, "silence, not a fade"


def pcm_of(path):
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                        "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
                       capture_output=True, timeout=60, check=True)
    a = array.array("h")
    a.frombytes(p.stdout)
    return a


@pytest.fixture(scope="module")
def preview_ref(media):
    return pcm_of(media["preview"])


def test_preview_is_thirty_seconds_from_thirty_percent_with_fades(tsrv, media, preview_ref, tmp_path):
    path = f"/preview/{tid(tsrv, 'Preview source')}"
    st, h, body = get(tsrv, path)
    assert st == 200, (st, body[:300])
    assert h["Content-Type"] == "audio/mpeg"
    assert h["Content-Length"] is not None and int(h["Content-Length"]) == len(body)
    assert h["Accept-Ranges"] == "bytes"
    assert len(body) == layout(media["preview"], "mp3", "--window", "30", "30", "1")["total_size"]
    pcm = decode(body, tmp_path)
    _check_preview_window(pcm, preview_ref, 30.0, 30.0)
    st, h, part = get(tsrv, path, headers={"Range": "bytes=1000-2999"})
    assert st == 206 and part == body[1000:3000]
    assert content_range(h) == (1000, 2999, len(body))
    etag = h["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag or ""), etag
    st, _, b304 = get(tsrv, path, headers={"If-None-Match": etag})
    assert st == 304 and b304 == b""
    stream_etag = get(tsrv, f"/stream/{tid(tsrv, 'Preview source')}?profile=mp3", method="HEAD")[1]["ETag"]
    assert stream_etag != etag, "the preview and the whole transcode share an ETag"


def test_preview_of_a_short_track_is_the_whole_track(tsrv, media, tmp_path):
    """A 10 s track is shorter than a 30 s preview: the preview is what there
    is, all 10 s of it (from 0, not from the 30% start), with its fades."""
    st, h, body = get(tsrv, f"/preview/{tid(tsrv, 'Short source')}")
    assert st == 200, (st, body[:300])
    assert int(h["Content-Length"]) == len(body)
    _check_preview_window(decode(body, tmp_path), pcm_of(media["short"]), 0.0, 10.0)


def test_preview_start_and_duration_are_honoured(talas_server, media, preview_ref, tmp_path):
    lib = link_dir(tmp_path / "lib", [media["preview"]])
    srv = talas_server([lib], workers=1,
                       extra_yaml=cache_yaml("64MiB", extra="preview:\n  start: 5s\n  duration: 12s\n"))
    st, h, body = get(srv, f"/preview/{tid_of(srv, 'Preview source')}")
    assert st == 200, (st, body[:300])
    assert int(h["Content-Length"]) == len(body)
    _check_preview_window(decode(body, tmp_path), preview_ref, 5.0, 12.0)


# ------------------------------------------------ 9. an abandoned encode stops

def test_encode_stops_when_the_last_listener_leaves(talas_server, media, tmp_path):
    lib = link_dir(tmp_path / "lib", [media["long10"]])
    srv = talas_server([lib], workers=2, extra_yaml=cache_yaml("128MiB"))
    track = tid_of(srv, "Long ten")
    lay = layout(media["long10"], "high")
    workers = srv.worker_pids()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s.sendall(f"GET /stream/{track}?profile=high HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    got = 0
    while got < 100 * 1000:
        d = s.recv(65536)
        assert d, "closed early"
        got += len(d)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    closed = time.monotonic()
    time.sleep(1.5)
    c0 = worker_cpu_seconds(workers)
    time.sleep(1.0)
    cpu = worker_cpu_seconds(workers) - c0
    print(f"\ncancel: {cpu:.2f} s CPU from 1.5 to 2.5 s after the client left")
    assert cpu < 0.15, f"workers used {cpu:.2f} s of CPU from 1.5 to 2.5 s after the client left"
    a = settled_stats(srv)
    time.sleep(1.5)
    b = stats(srv)
    assert b["transcodes_started"] == a["transcodes_started"], (a, b)
    assert a["transcodes_cancelled"] >= 1, a
    assert 1 <= a["chunks"] < lay["chunks"], (a, lay["chunks"])
    assert time.monotonic() - closed < 30
    cp = srv.talasctl("cache", "verify")
    assert cp.returncode == 0, cp.stdout + cp.stderr


# ------------------------------------------------ 10. tokens before encodes

def test_tokens_are_checked_before_any_encode(talas_server, media, tmp_path):
    import auth_keys as ak  # PyJWT, python3-cryptography
    keys = ak.Keys(tmp_path / "keys")
    lib = link_dir(tmp_path / "lib", [media["seek"], media["short"]])
    srv = talas_server([lib], start=False, workers=2)
    text = ak.config_with_auth(srv, ak.auth_yaml(keys)) + cache_yaml("64MiB")
    srv.write_config(text=text)
    srv.start(wait_scan=True)
    ids = ids_by_title(srv)  # the listing needs no token (it has no URLs then)
    a, b = ids["Seek source"], ids["Short source"]

    def tok(track, scope):
        return ak.pyjwt_token(keys, "HS256", ak.claims(track, scope=scope), kid="k2")

    refused = [
        (f"/stream/{a}?profile=mp3", 401),
        (f"/preview/{a}", 401),
        (f"/stream/{a}?profile=mp3&token={tok(a, 'preview')}", 403),
        (f"/stream/{a}?profile=mp3&token={tok(b, 'stream')}", 403),
        (f"/preview/{a}?token={tok(a, 'stream')}", 403),
        (f"/preview/{a}?token={tok(b, 'preview')}", 403),
        (f"/stream/{a}?profile=high&token=not.a.token", 401),
    ]
    for path, want in refused:
        for m in ("GET", "HEAD"):
            st, _, _ = get(srv, path, method=m)
            assert st == want, (m, path.split("token=")[0], st)
    time.sleep(2.5)  # a worker flushes its counters about once a second
    s = ctl_stats(srv)
    assert s["started"] == 0 and s["entries"] == 0, "a refused request started an encode:\n" + s["text"]
    st, h, body = get(srv, f"/stream/{a}?profile=mp3&token={tok(a, 'stream')}")
    assert st == 200, (st, body[:200])
    assert int(h["Content-Length"]) == len(body) == layout(media["seek"], "mp3")["total_size"]
    st, h, body = get(srv, f"/preview/{a}?token={tok(a, 'preview')}")
    assert st == 200, (st, body[:200])
    s = ctl_stats_settled(srv)
    assert s["started"] > 0 and s["entries"] == 2, s
