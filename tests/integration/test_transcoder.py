"""Chunked transcoder (workers/media/transcoder.c) through its CLI, talas-transcode.

Acceptance criteria of the chunked transcode: every source format and every
profile decodes cleanly with the source's duration; chunks made in any order
give the same bytes; MP3 sizes are known before encoding; chunk boundaries
are inaudible (no click, gap or overlap) and the stream is sample-aligned
with the source; broken input fails cleanly; preview windows are exact.

Sources are made with ffmpeg's lavfi (a tone plus quiet pink noise), 20 s
each. Outputs are decoded with the ffmpeg CLI and compared as PCM with the
standard library only (array, statistics).
"""

import array
import json
import math
import statistics
import struct
import subprocess

import pytest

import talas_fixtures as tf

TOOL = tf.BUILDDIR / "tests" / "tools" / "talas-transcode"
SECONDS = 20
PROFILES = {  # name: (codec, output rate)
    "high": ("aac", 44100),
    "medium": ("aac", 44100),
    "low": ("mp3", 22050),
    "mobile": ("aac", 22050),
    "mp3": ("mp3", 44100),
}
SOURCES = {  # name: (file, encoder arguments, source rate)
    "mp3": ("src.mp3", ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k"], 44100),
    "flac48": ("src48.flac", ["-ar", "48000", "-ac", "2", "-c:a", "flac"], 48000),
    "wav96": ("src96.wav", ["-ar", "96000", "-ac", "2", "-c:a", "pcm_s24le"], 96000),
    "wav8": ("src8.wav", ["-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le"], 8000),
    "vorbis": ("src.ogg", ["-ar", "44100", "-ac", "2", "-c:a", "libvorbis", "-q:a", "4"], 44100),
    "opus": ("src.opus", ["-ar", "48000", "-ac", "2", "-c:a", "libopus", "-b:a", "96k"], 48000),
    "m4a": ("src.m4a", ["-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "160k"], 44100),
}


def _lavfi_source(out, seconds, args, freq=440):
    tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate=96000",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.05:r=96000:s=7",
            "-filter_complex",
            "[0]volume=0.6[a];[a][1]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo",
            "-metadata", "title=Transcoder fixture", "-metadata", "artist=Talas Tests"]
           + args + [str(out)], timeout=60)


@pytest.fixture(scope="module")
def tool():
    if not TOOL.exists():
        pytest.fail(f"{TOOL} is not built (set TALAS_BUILDDIR or run make)")
    return TOOL


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("transcoder-src")
    out = {}
    for name, (fname, args, _) in SOURCES.items():
        _lavfi_source(d / fname, SECONDS, args)
        out[name] = d / fname
    return out


@pytest.fixture(scope="module")
def encoded(tool, sources, tmp_path_factory):
    """encoded(source, profile) -> path of the whole stream, made once."""
    d = tmp_path_factory.mktemp("transcoder-out")
    cache = {}

    def get(src, profile, order="seq"):
        key = (src, profile, order)
        if key not in cache:
            out = d / f"{src}.{profile}.{order}"
            tf.run([tool, "encode", sources[src], profile, "--order", order, "--seed", "7",
                    "-o", out], timeout=120)
            cache[key] = out
        return cache[key]
    return get


def layout(tool, path, profile, *extra):
    return json.loads(tf.run([tool, "layout", path, profile] + list(extra)).stdout)


def measure(tool, path):
    return json.loads(tf.run([tool, "measure", path]).stdout)


def decode_pcm(path, rate, channels=1):
    """Decoded samples (s16) of PATH at RATE, as an array('h')."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", str(path),
                        "-ac", str(channels), "-ar", str(rate), "-f", "s16le", "-"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stderr == b"", f"decoding {path}: {p.stderr.decode(errors='replace')}"
    a = array.array("h")
    a.frombytes(p.stdout)
    return a


def assert_decodes_cleanly(path):
    cp = tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", path,
                 "-f", "null", "-"], check=False, timeout=60)
    assert cp.returncode == 0 and cp.stderr.strip() == "", f"{path}: {cp.stderr}"


def rms(a, start, end):
    end = min(end, len(a))
    if end <= start:
        return 0.0
    return math.sqrt(sum(a[i] * a[i] for i in range(start, end)) / (end - start))


def rms_diff(a, b, start, end, lag=0):
    end = min(end, len(a), len(b) - lag)
    return math.sqrt(sum((a[i] - b[i + lag]) ** 2 for i in range(start, end)) / max(1, end - start))


def mp3_frames(data):
    """Offsets of the MPEG audio frames of a raw MP3 stream (no ID3)."""
    bitrates = {1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
                0: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}
    rates = {1: [44100, 48000, 32000], 0: [22050, 24000, 16000]}
    offs, off = [], 0
    while off + 4 <= len(data):
        h = struct.unpack(">I", data[off:off + 4])[0]
        assert h >> 21 == 0x7FF, f"no frame sync at {off}"
        mpeg1 = 1 if (h >> 19) & 3 == 3 else 0
        br = bitrates[mpeg1][(h >> 12) & 15] * 1000
        sr = rates[mpeg1][(h >> 10) & 3]
        pad = (h >> 9) & 1
        size = (144 if mpeg1 else 72) * br // sr + pad
        offs.append(off)
        off += size
    assert off == len(data), "stream does not end on a frame boundary"
    return offs


# ---------------------------------------------------------- 1. decodes, duration

@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("src", list(SOURCES))
def test_every_source_and_profile_decodes_with_source_duration(tool, sources, encoded, src, profile):
    out = encoded(src, profile)
    assert_decodes_cleanly(out)
    codec, rate = PROFILES[profile]
    lay = layout(tool, sources[src], profile)
    pcm = decode_pcm(out, rate)
    # ADTS cannot carry the encoder delay: a decoder returns it as priming
    decoded = len(pcm) - (lay["encoder_delay"] if codec == "aac" else 0)
    m = measure(tool, sources[src])
    assert abs(m["samples"] / m["sample_rate"] - SECONDS) < 0.01, m
    assert abs(decoded / rate - SECONDS) < 0.050, (decoded, rate)
    if codec == "mp3":
        # gapless: exactly the source's length in output samples
        assert len(pcm) == lay["out_samples"]


# ---------------------------------------------------------- 2. any order, same bytes

@pytest.mark.parametrize("profile", ["mp3", "high"])
@pytest.mark.parametrize("src", ["mp3", "vorbis", "flac48"])
def test_chunk_order_does_not_change_a_byte(tool, sources, encoded, tmp_path, src, profile):
    seq = encoded(src, profile, "seq").read_bytes()
    assert encoded(src, profile, "reverse").read_bytes() == seq
    assert encoded(src, profile, "random").read_bytes() == seq
    # one chunk alone, in a fresh process, is the same slice of the stream
    lay = layout(tool, sources[src], profile)
    c = lay["chunks"] // 2
    tf.run([tool, "chunk", sources[src], profile, c, "-o", tmp_path / "c"])
    one = (tmp_path / "c").read_bytes()
    if lay["exact_size"]:
        off = lay["chunk_offsets"][c]
        assert seq[off:off + len(one)] == one
    else:
        assert len(one) > 0 and one in seq


# ---------------------------------------------------------- 3. exact sizes

@pytest.mark.parametrize("profile", ["mp3", "low"])
@pytest.mark.parametrize("src", ["flac48", "wav8", "opus"])
def test_mp3_sizes_are_known_before_encoding(tool, sources, encoded, tmp_path, src, profile):
    lay = layout(tool, sources[src], profile, "--frames")
    assert lay["exact_size"] is True
    data = encoded(src, profile).read_bytes()
    assert len(data) == lay["total_size"]
    assert sum(lay["chunk_sizes"]) + lay["header_size"] == lay["total_size"]
    for c in range(lay["chunks"]):
        tf.run([tool, "chunk", sources[src], profile, c, "-o", tmp_path / "c"])
        one = (tmp_path / "c").read_bytes()
        assert len(one) == lay["chunk_sizes"][c], f"chunk {c}"
        assert data[lay["chunk_offsets"][c]:lay["chunk_offsets"][c] + len(one)] == one, f"chunk {c}"
    offs = mp3_frames(data)
    # the Info frame, then exactly `frames` audio frames where the layout says
    assert offs[1] == lay["header_size"]
    assert offs[1:] == lay["frame_offsets"][:-1]
    assert lay["frame_offsets"][-1] == lay["total_size"]
    assert len(offs) - 1 == lay["frames"]
    info = data.find(b"Info")
    assert 0 < info < 40
    frames, size = struct.unpack(">II", data[info + 8:info + 16])
    assert (frames, size) == (lay["frames"], lay["total_size"])


# ---------------------------------------------------------- 4. seamless boundaries

@pytest.mark.parametrize("profile", ["mp3", "high"])
@pytest.mark.parametrize("src", ["flac48", "mp3", "vorbis", "m4a"])
def test_chunk_boundaries_are_seamless_and_aligned(tool, sources, encoded, src, profile):
    codec, rate = PROFILES[profile]
    lay = layout(tool, sources[src], profile)
    out = decode_pcm(encoded(src, profile), rate)
    if codec == "aac":
        out = out[lay["encoder_delay"]:]
    ref = decode_pcm(sources[src], rate)
    n = min(len(out), len(ref))
    assert n > rate * (SECONDS - 1)

    # alignment: the best lag of the difference over 2 s is 0 (+-1)
    seg = range(rate * 5, rate * 7)
    lags = {lag: sum((out[i] - ref[i + lag]) ** 2 for i in seg[::3]) for lag in range(-4, 5)}
    best = min(lags, key=lags.get)
    assert abs(best) <= 1, lags

    # the coding error around each boundary is like anywhere else
    w = rate // 50  # 20 ms
    spf = lay["frame_samples"]
    boundaries = [start * spf - lay["encoder_delay"] for start in lay["chunk_starts"][1:]]
    boundaries = [b for b in boundaries if w < b < n - 2 * w]
    assert boundaries
    windows = [rms_diff(out, ref, s, s + w) for s in range(w, n - 2 * w, w)]
    median = statistics.median(windows)
    signal = rms(ref, rate, rate * 3)
    assert median < signal / 4, (median, signal)  # the comparison is meaningful
    for b in boundaries:
        for s in (b - w // 2, b - w, b):
            e = rms_diff(out, ref, s, s + w)
            assert e <= 2 * median + 30, f"boundary at sample {b}: error {e:.1f} vs median {median:.1f}"


# ---------------------------------------------------------- 5. bad input

def test_truncated_flac_and_mp3_still_decode_and_say_so(tool, sources, tmp_path):
    for name in ("flac48", "mp3"):
        data = sources[name].read_bytes()
        cut = tmp_path / ("cut." + sources[name].suffix.lstrip("."))
        cut.write_bytes(data[:len(data) // 2])
        out = tmp_path / "out.mp3"
        cp = tf.run([tool, "encode", cut, "mp3", "-o", out], check=False, timeout=60)
        assert cp.returncode == 3, cp.stderr
        assert "truncated" in cp.stderr
        assert_decodes_cleanly(out)
        pcm = decode_pcm(out, 44100)
        assert SECONDS * 0.4 < len(pcm) / 44100 < SECONDS * 0.6


@pytest.mark.parametrize("content", [b"", b"this is not audio, just some text\n" * 50,
                                     b"fLaC" + bytes(range(256)) * 8])
def test_unreadable_input_is_a_clean_error(tool, tmp_path, content):
    bad = tmp_path / "bad.flac"
    bad.write_bytes(content)
    for argv in (["measure", bad], ["encode", bad, "mp3", "-o", tmp_path / "o"],
                 ["chunk", bad, "high", "0", "-o", tmp_path / "o"]):
        cp = tf.run([tool] + argv, check=False, timeout=30)
        assert cp.returncode == 1, (argv, cp.returncode, cp.stderr)
        assert "bad.flac" in cp.stderr and cp.stderr.count("\n") <= 3


# ---------------------------------------------------------- 6. preview windows

def test_window_is_exact_and_fades(tool, tmp_path):
    src = tmp_path / "long.flac"
    _lavfi_source(src, 45, ["-ar", "44100", "-ac", "2", "-c:a", "flac"])
    for profile in ("mp3", "medium"):
        out = tmp_path / f"win.{profile}"
        tf.run([tool, "encode", src, profile, "--window", "10", "30", "1", "-o", out], timeout=60)
        assert_decodes_cleanly(out)
        pcm = decode_pcm(out, 44100)
        if profile == "medium":
            pcm = pcm[layout(tool, src, profile, "--window", "10", "30", "1")["encoder_delay"]:]
        assert abs(len(pcm) / 44100 - 30) < 0.050, len(pcm)
        middle = rms(pcm, 44100 * 10, 44100 * 11)
        assert middle > 1000
        assert rms(pcm, 0, 441) < middle / 20        # first 10 ms
        assert rms(pcm, len(pcm) - 441, len(pcm)) < middle / 20
        assert rms(pcm, 22050, 22050 + 441) > middle / 4  # half-way up the fade
