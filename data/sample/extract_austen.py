#!/usr/bin/env python3
"""Extracts Jane Austen's six novels from Debian's r-cran-janeaustenr package
into JSON lines, one chapter per line: {"book": ..., "chapter": n, "text": ...}.

Standard library only. The package stores each novel as an R character
vector (one element per line of the Project Gutenberg text) in R's lazy-load
database `data/Rdata.rdb`: zlib blocks, each a 4-byte big-endian length and a
zlib stream holding an R serialization (format "X", version 3) of a STRSXP of
CHARSXPs. This script reads exactly that and fails loudly on anything else.

Lines of a paragraph are joined with spaces; paragraphs are separated by a
blank line. Text before a book's first chapter heading (title page, preface)
is kept at the start of chapter 1.

Usage: extract_austen.py r-cran-janeaustenr_1.0.0-1_all.deb > austen.jsonl
"""

import io
import json
import lzma
import re
import struct
import sys
import tarfile
import zlib

RDB_PATH = "./usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"
# The objects in Rdata.rdb, in file order (alphabetical by R name).
BOOKS = ["Emma", "Mansfield Park", "Northanger Abbey", "Persuasion",
         "Pride and Prejudice", "Sense and Sensibility"]
CHAPTER = re.compile(r"^(CHAPTER|Chapter) ([0-9]+|[IVXLC]+)\.?$")


def deb_member(deb, name):
    """A member of a Debian package's data.tar.xz (the .deb is an ar archive)."""
    if deb[:8] != b"!<arch>\n":
        raise SystemExit("not a .deb (ar) file")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos:pos + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = deb[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if member == "data.tar.xz":
            with tarfile.open(fileobj=io.BytesIO(lzma.decompress(body))) as tar:
                return tar.extractfile(name).read()
    raise SystemExit("data.tar.xz not found in the package")


def r_strings(blob):
    """The STRSXP in one R serialization (version 3, XDR)."""
    if blob[:2] != b"X\n":
        raise SystemExit("not an XDR R serialization")
    i = 2
    version, _, _ = struct.unpack(">iii", blob[i:i + 12])
    i += 12
    if version != 3:
        raise SystemExit("unexpected R serialization version %d" % version)
    (n,) = struct.unpack(">i", blob[i:i + 4])
    i += 4 + n  # native encoding name
    flags, length = struct.unpack(">ii", blob[i:i + 8])
    i += 8
    if flags & 0xFF != 16:
        raise SystemExit("object is not a character vector")
    lines = []
    for _ in range(length):
        flags, n = struct.unpack(">ii", blob[i:i + 8])
        i += 8
        if flags & 0xFF != 9:
            raise SystemExit("element is not a CHARSXP")
        if n == -1:
            lines.append("")
            continue
        lines.append(blob[i:i + n].decode("utf-8"))
        i += n
    if i != len(blob):
        raise SystemExit("trailing bytes after the character vector")
    return lines


def rdb_objects(rdb):
    pos, out = 0, []
    while pos < len(rdb):
        (size,) = struct.unpack(">I", rdb[pos:pos + 4])
        d = zlib.decompressobj()
        blob = d.decompress(rdb[pos + 4:])
        if len(blob) != size:
            raise SystemExit("zlib block length mismatch")
        pos = len(rdb) - len(d.unused_data)
        out.append(blob)
    return out


def paragraphs(lines):
    paras, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(paras)


def chapters(lines):
    """(chapter number, text) for each chapter; front matter joins chapter 1."""
    starts = [i for i, line in enumerate(lines) if CHAPTER.match(line.strip())]
    if not starts:
        raise SystemExit("no chapter headings found")
    bounds = [0] + starts[1:] + [len(lines)]
    return [(n + 1, paragraphs(lines[a:b])) for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with open(sys.argv[1], "rb") as f:
        deb = f.read()
    objects = rdb_objects(deb_member(deb, RDB_PATH))
    if len(objects) != len(BOOKS):
        raise SystemExit("expected %d novels, found %d objects" % (len(BOOKS), len(objects)))
    out = sys.stdout
    for book, blob in zip(BOOKS, objects):
        for number, text in chapters(r_strings(blob)):
            out.write(json.dumps({"book": book, "chapter": number, "text": text}) + "\n")


if __name__ == "__main__":
    main()
