"""The architecture, checked against the tree and the built programs.

Each test states one rule of the layout that the README and STYLE.md
promise, and fails with the files that break it:

- the master side (src/) never sees a worker header, and the two programs
  of that side link no worker code;
- handlers get the worker's context, they do not look it up;
- the media routes reach chunks through the media layer, not the cache;
- one record codec: no other file writes little-endian helpers of its own;
- every source file opens with a comment naming itself, and README's map of
  the tree lists exactly the files there are;
- every source file is named in Makefile.am, so the tarball builds.
"""
import re
import subprocess

import pytest

import talas_fixtures as tf

SRC = tf.SRCDIR
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(*tops, exts=(".c", ".h")):
    out = []
    for top in tops:
        out += sorted(p for p in (SRC / top).rglob("*") if p.suffix in exts)
    assert out, f"no sources under {tops}"
    return out


def rel(p):
    return str(p.relative_to(SRC))


def test_src_includes_no_worker_header():
    """src/ is compiled with -I src only: every quoted include of a file
    under src/ must resolve beside it or under src/."""
    bad = []
    for f in sources("src"):
        for inc in INCLUDE.findall(f.read_text()):
            if not ((f.parent / inc).exists() or (SRC / "src" / inc).exists()):
                bad.append(f"{rel(f)}: {inc}")
            if inc.startswith("workers/") or (SRC / "workers" / inc).exists():
                bad.append(f"{rel(f)}: {inc} (a worker header)")
    assert not bad, "src/ includes what it cannot see:\n" + "\n".join(bad)


def defined_symbols(binary):
    out = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("program", ["talas-master", "talasctl"])
def test_master_side_links_no_worker_code(program):
    """Neither program of the master side carries a function of the worker
    layer, nor h2o, nor the worker archive's entry point."""
    binary = tf.BUILDDIR / program
    assert binary.exists(), f"{binary} is not built"
    syms = defined_symbols(binary)
    worker_fns = set()
    for f in sources("workers", exts=(".c",)):
        # definitions start in column 0 and are not static (h2o's style)
        worker_fns |= set(re.findall(r"^(?!static\b|return\b)[A-Za-z_][\w \t*]*?\b(talas_\w+)\s*\([^;]*$",
                                     f.read_text(), re.M))
    assert worker_fns, "no public functions found under workers/"
    leaked = sorted(worker_fns & syms)
    assert not leaked, f"{program} links worker code: {leaked[:20]}"
    assert not [s for s in syms if s.startswith("h2o_")], f"{program} links h2o"


def test_worker_program_is_separate():
    """The workers run their own program, beside talas-master in the build."""
    assert (tf.BUILDDIR / "talas-worker").exists()
    assert "talas_worker_main" in defined_symbols(tf.BUILDDIR / "talas-worker")


def test_handlers_do_not_look_up_the_worker():
    lookups = re.compile(r"\btalas_worker_(config|storage|auth|slot|generation)\s*\(")
    bad = [rel(f) for f in sources("workers", "src") if lookups.search(f.read_text())]
    assert not bad, "global look-ups of the worker remain in: " + ", ".join(bad)


@pytest.mark.parametrize("route", ["http_hls.c", "http_transcode.c", "http_peaks.c"])
def test_media_routes_do_not_read_the_cache(route):
    text = (SRC / "workers" / "http" / route).read_text()
    assert "store/cache.h" not in INCLUDE.findall(text), f"{route} includes store/cache.h"


# What a hand-written little-endian helper looks like: a shift by a
# multiple of 8 inside a loop over bytes, or a function named after it.
LE_HELPER = re.compile(r"\b(put|get|read|write|load|store)_?(le|u16le|u32le|u64le|le16|le32|le64)\s*\(")
LE_SHIFT = re.compile(r">>\s*\(?\s*8\s*\*\s*\w+\s*\)?")


def test_one_record_codec():
    codec = SRC / "src" / "core" / "record.c"
    assert codec.exists(), "src/core/record.c, the record codec, is missing"
    bad = []
    for f in sources("src", "workers", exts=(".c",)):
        if f == codec:
            continue
        text = f.read_text()
        for m in LE_HELPER.finditer(text):
            if re.search(r"^static\b[^;{]*" + re.escape(m.group(0)), text, re.M):
                bad.append(f"{rel(f)}: defines {m.group(0).rstrip('(').strip()}")
        if LE_SHIFT.search(text):
            bad.append(f"{rel(f)}: shifts bytes by 8*i")
    assert not bad, "little-endian helpers outside src/core/record.c:\n" + "\n".join(bad)


def test_playback_stores_no_raw_struct():
    """No record is written as a C struct (reading the previous layout, to
    migrate it, is the one place the old structs may appear)."""
    text = (SRC / "src" / "store" / "playback.c").read_text()
    raw = re.findall(r"memcpy\(\s*\w+(?:\.|->)mv_data\s*,[^;]*|"
                     r"mv_size\s*=\s*sizeof\s*\(\s*(?:struct\s+)?\*?\w+\s*\)", text)
    assert not raw, f"playback.c writes structs to LMDB: {raw}"


def test_every_source_opens_with_its_name():
    bad = []
    for f in sources("src", "workers"):
        head = f.read_text()[:400]
        if not re.match(r"/\*\s*\n?\s*\*?\s*" + re.escape(f.name) + r"\b", head):
            bad.append(rel(f))
    assert not bad, "files whose opening comment does not name them: " + ", ".join(bad)


def test_every_source_is_in_the_tarball():
    """A header no Makefile.am line names is left out of `make dist`, and
    the tarball's build then fails on its #include."""
    am = (SRC / "Makefile.am").read_text()
    names = set(re.findall(r"[\w./-]+\.[ch]\b", am))
    missing = [rel(f) for f in sources("src", "workers") if rel(f) not in names]
    assert not missing, "sources Makefile.am does not name: " + ", ".join(missing)


def test_readme_map_is_exact():
    """Every .c under src/ and workers/ has a row in README's map of the tree,
    one only, in the table of its own folder; every file the map names
    exists."""
    readme = (SRC / "README.md").read_text()
    named = set(re.findall(r"`((?:src|workers)/[\w/]+\.[ch])`", readme))
    missing = [rel(f) for f in sources("src", "workers", exts=(".c",)) if rel(f) not in named]
    assert not missing, "README's map lacks: " + ", ".join(missing)
    gone = sorted(p for p in named if not (SRC / p).exists())
    assert not gone, "README names files that do not exist: " + ", ".join(gone)
    # one row per file, in its own folder's table
    tree = readme.split("### The tree", 1)[1].split("\n## ", 1)[0]
    bad, folder = [], None
    seen = {}
    for line in tree.splitlines():
        m = re.match(r"^\*\*`((?:src|workers)/[\w/]+/)`\*\*", line)
        if m:
            folder = m.group(1)
        elif line.startswith("**"):
            folder = None
        m = re.match(r"^\| `((?:src|workers)/[\w/]+\.[ch])` \|", line)
        if m:
            path = m.group(1)
            seen[path] = seen.get(path, 0) + 1
            if folder is None or not path.startswith(folder) or "/" in path[len(folder):]:
                bad.append(f"{path} (under {folder})")
    bad += [f"{p} ({n} rows)" for p, n in sorted(seen.items()) if n > 1]
    assert not bad, "README's map: rows out of place or repeated: " + ", ".join(bad)
