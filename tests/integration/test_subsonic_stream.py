"""Subsonic stream as apps use it: maxBitRate=128 on a FLAC is a 128 kbit/s
MP3 with an exact Content-Length on the first (uncached) request and byte
ranges in its middle; timeOffset starts where it says (a chirp source makes
the start measurable: the decoded body is matched against the source);
estimateContentLength=true on AAC announces a length the body then has
exactly, at several bitrates and lengths, and decodes cleanly; format=raw
is the original's bytes, with Range.

Real clients: python's http.client, ffmpeg and ffprobe to decode and
probe; the npm subsonic-api client for one stream. Sources are generated
with ffmpeg.
"""

import array
import hashlib
import json
import math
import subprocess

import pytest

import talas_fixtures as tf
from subsonic_fixtures import PASSWORDS, alice, error_code, node_client, rest, serve

FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
# a rising chirp, 100 Hz + 40 Hz/s: every moment has its own frequency
CHIRP = "aevalsrc=sin(2*PI*(100*t+20*t*t)):s=44100:d={d}"
LENGTHS = {"Chirp 90": 90, "Chirp 7": 7, "Chirp 23": 23.3}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("streamlib")
    for title, seconds in LENGTHS.items():
        tf.run(FF + ["-f", "lavfi", "-i", CHIRP.format(d=seconds), "-ac", "2", "-c:a", "flac",
                     "-metadata", f"title={title}", "-metadata", "artist=Stream", "-metadata", "album=Chirps",
                     str(d / f"{title.replace(' ', '_')}.flac")])
    return d


@pytest.fixture(scope="module")
def srv(tmp_path_factory, lib):
    yield from serve(tmp_path_factory.mktemp("streamsrv"), lib)


def tid(srv, title):
    return srv.tracks_by_title[title]["id"]


def src_path(lib, title):
    return lib / f"{title.replace(' ', '_')}.flac"


def stream(srv, title, headers=None, **params):
    return rest(srv, "stream", alice(id=tid(srv, title), **{k: str(v) for k, v in params.items()}),
                headers=headers)


def probe(tmp_path, body, name="b"):
    p = tmp_path / name
    p.write_bytes(body)
    return json.loads(tf.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,bit_rate,sample_rate",
                              "-of", "json", str(p)]).stdout)["streams"][0]


def pcm(path, seek=None, rate=8000):
    """PATH decoded to mono signed 16-bit samples at RATE."""
    args = FF + (["-ss", str(seek)] if seek is not None else []) + ["-i", str(path), "-ac", "1", "-ar", str(rate),
                                                                    "-f", "s16le", "-"]
    out = subprocess.run(args, capture_output=True, check=True, timeout=120).stdout
    a = array.array("h")
    a.frombytes(out)
    return a


def best_lag(body, source, at, window, search):
    """The lag (samples) that best aligns BODY[at:at+window] with SOURCE."""
    seg = body[at:at + window]
    e1 = math.sqrt(sum(x * x for x in seg)) or 1.0
    best, best_lag_ = -2.0, None
    for lag in range(-search, search + 1):
        s0 = at + lag
        if s0 < 0 or s0 + window > len(source):
            continue
        ref = source[s0:s0 + window]
        e2 = math.sqrt(sum(x * x for x in ref)) or 1.0
        c = sum(a * b for a, b in zip(seg, ref)) / (e1 * e2)
        if c > best:
            best, best_lag_ = c, lag
    return best_lag_, best


def test_max_bitrate_exact_length_and_ranges(srv, tmp_path):
    """maxBitRate=128 on a FLAC: an MP3 at 128 kbit/s whose Content-Length
    is exact on the very first request (nothing cached yet), and a range
    in its middle is those bytes of the full body."""
    st, hdrs, first = stream(srv, "Chirp 90", maxBitRate=128)
    assert st == 200 and hdrs["content-type"] == "audio/mpeg", hdrs
    assert int(hdrs["content-length"]) == len(first), hdrs
    p = probe(tmp_path, first)
    assert p["codec_name"] == "mp3" and p["bit_rate"] == "128000", p
    assert abs(tf.ffprobe_duration_ms(tmp_path / "b") - 90000) < 200
    # again, now cached: the same bytes
    st, hdrs, again = stream(srv, "Chirp 90", maxBitRate=128)
    assert st == 200 and again == first
    n = len(first)
    for lo, hi in ((n // 2, n // 2 + 99999), (n // 3 + 7, n // 3 + 7), (n - 1000, n - 1)):
        st, hdrs, part = stream(srv, "Chirp 90", headers={"Range": f"bytes={lo}-{hi}"}, maxBitRate=128)
        assert st == 206, (lo, hi, hdrs)
        assert hdrs["content-range"] == f"bytes {lo}-{hi}/{n}"
        assert part == first[lo:hi + 1]


def test_max_bitrate_range_on_a_cold_transcode(srv):
    """A range in the middle of a transcode nothing was cached for is the
    same bytes as the full body fetched after it."""
    st, hdrs, head = stream(srv, "Chirp 23", headers={"Range": "bytes=0-0"}, maxBitRate=128)
    assert st == 206
    n = int(hdrs["content-range"].split("/")[1])
    lo, hi = n // 2, n // 2 + 50000
    st, hdrs, part = stream(srv, "Chirp 23", headers={"Range": f"bytes={lo}-{hi}"}, maxBitRate=128)
    assert st == 206 and len(part) == hi - lo + 1
    st, hdrs, full = stream(srv, "Chirp 23", maxBitRate=128)
    assert st == 200 and len(full) == n and int(hdrs["content-length"]) == n
    assert full[lo:hi + 1] == part


@pytest.mark.parametrize("params", [{"maxBitRate": 128}, {"format": "mp3"}, {"format": "aac"}])
def test_time_offset_starts_there(srv, lib, tmp_path, params):
    """timeOffset=60: the decoded body is the source from 60 s, within one
    encoder frame (1152 samples at 44.1 kHz, 26 ms)."""
    st, hdrs, body = stream(srv, "Chirp 90", timeOffset=60, **params)
    assert st == 200
    (tmp_path / "off").write_bytes(body)
    rate = 8000
    got = pcm(tmp_path / "off", rate=rate)
    want = pcm(src_path(lib, "Chirp 90"), rate=rate)
    assert abs(len(got) / rate - 30) < 0.3, len(got) / rate
    frame = int(0.027 * rate)
    # a window a second in (past any decoder start-up), searched +-0.5 s
    lag, corr = best_lag(got, want[60 * rate:], rate, rate // 4, rate // 2)
    assert corr > 0.9, (lag, corr)
    assert abs(lag) <= frame, f"starts {lag / rate * 1000:.1f} ms off 60 s"


@pytest.mark.parametrize("max_bitrate", [64, 128, 256, 320])
@pytest.mark.parametrize("title", list(LENGTHS))
def test_estimate_content_length_aac(srv, tmp_path, title, max_bitrate):
    """estimateContentLength=true on AAC (nothing cached): a Content-Length
    the body has exactly, of whole ADTS frames that decode cleanly, about
    as long as the source."""
    st, hdrs, body = stream(srv, title, format="aac", maxBitRate=max_bitrate, estimateContentLength="true")
    assert st == 200 and hdrs["content-type"] == "audio/aac", hdrs
    assert "content-length" in hdrs, hdrs
    assert int(hdrs["content-length"]) == len(body)
    # whole ADTS frames, end to end
    pos = 0
    while pos < len(body):
        assert body[pos] == 0xFF and body[pos + 1] & 0xF6 == 0xF0, pos
        flen = ((body[pos + 3] & 3) << 11) | (body[pos + 4] << 3) | (body[pos + 5] >> 5)
        assert flen >= 7
        pos += flen
    assert pos == len(body)
    p = tmp_path / "e.aac"
    p.write_bytes(body)
    r = subprocess.run(FF[:-1] + ["-v", "error", "-i", str(p), "-f", "null", "-"], capture_output=True,
                       timeout=120)
    assert r.returncode == 0 and r.stderr.strip() == b"", r.stderr
    # as long as the source, give or take what the estimate cut or padded
    # (silent frames of 1024 samples, up to 1543 bytes each)
    decoded = len(pcm(p)) / 8000
    assert 0.9 * LENGTHS[title] - 0.2 <= decoded <= 1.6 * LENGTHS[title] + 1, decoded
    # the same request again (now cached or not): the same length
    st, hdrs2, body2 = stream(srv, title, format="aac", maxBitRate=max_bitrate, estimateContentLength="true")
    assert st == 200 and int(hdrs2["content-length"]) == len(body2)


def test_estimate_with_time_offset(srv, tmp_path):
    st, hdrs, body = stream(srv, "Chirp 90", format="aac", timeOffset=30, estimateContentLength="true")
    assert st == 200 and int(hdrs["content-length"]) == len(body)
    p = tmp_path / "o.aac"
    p.write_bytes(body)
    assert 54 <= len(pcm(p)) / 8000 <= 97


def test_raw_is_the_original(srv, lib):
    original = src_path(lib, "Chirp 7").read_bytes()
    st, hdrs, body = stream(srv, "Chirp 7", format="raw", maxBitRate=64)
    assert st == 200 and hashlib.sha256(body).hexdigest() == hashlib.sha256(original).hexdigest()
    assert int(hdrs["content-length"]) == len(original)
    n = len(original)
    for lo, hi in ((0, 0), (n // 2, n // 2 + 4095), (n - 10, n - 1)):
        st, hdrs, part = stream(srv, "Chirp 7", headers={"Range": f"bytes={lo}-{hi}"}, format="raw")
        assert st == 206 and part == original[lo:hi + 1]
        assert hdrs["content-range"] == f"bytes {lo}-{hi}/{n}"
    auth = {"username": "alice", "password": PASSWORDS["alice"]}
    r = node_client(srv, auth, [["stream", {"id": tid(srv, "Chirp 7"), "format": "raw"}]])
    assert r[0]["http_status"] == 200 and r[0]["sha256"] == hashlib.sha256(original).hexdigest()


def test_bad_stream_parameters(srv):
    for params in ({"maxBitRate": "abc"}, {"timeOffset": "-1"}, {"timeOffset": "x"}):
        st, _, body = stream(srv, "Chirp 7", f="json", **params)
        assert st == 200 and error_code(json.loads(body)["subsonic-response"]) == 0, (params, body)
    # an offset past the end is not a 200 of nothing
    st, _, body = stream(srv, "Chirp 7", timeOffset=3600)
    assert st != 200 or b"failed" in body
