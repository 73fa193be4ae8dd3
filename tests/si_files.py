"""ScanImage-layout test files, written fast (numpy, no per-page Python loop) so a 100,000-page file takes
about a second: a BigTIFF whose pages share one IFD template, optionally after ScanImage's binary
metadata header (2016+: magic 0x07030301, version 3, the ``SI.*`` text, the ROI JSON).

``how``: ``"header"`` (the binary header, Software ``SI.LINE_``), ``"software"`` (the ``SI.*`` text in
the Software tag only) or ``"description"`` (ScanImage 5.1: ``scanimage.SI.*`` lines ending the
ImageDescription).
"""

import struct

import numpy as np

_TAG_TYPES = {"H": 3, "I": 4, "Q": 16, "A": 2}


def write_scanimage(path, pages, frame_data: str, how: str = "header") -> None:
    pages = np.ascontiguousarray(pages)
    n, h, w = pages.shape
    page_bytes = h * w * pages.dtype.itemsize
    head = b"II" + struct.pack("<HHHQ", 43, 8, 0, 0)
    if how == "header":
        fd = frame_data.encode() + b"\x00"
        roi = b"{}\x00"
        head += struct.pack("<IIII", 0x07030301, 3, len(fd), len(roi)) + fd + roi
        software, description = "SI.LINE_ScanImage", None
    elif how == "software":
        software, description = frame_data, None
    else:
        software, description = "ScanImage 5.1 test", "frameNumbers = 1\n" + frame_data.replace("SI.", "scanimage.SI.")
    strings = {}
    for key, text in (("software", software), ("description", description)):
        if text is not None:
            head += b"\x00" * (-len(head) % 8)
            strings[key] = (len(head), len(text) + 1)
            head += text.encode() + b"\x00" + b"\x00" * 8
    head += b"\x00" * (-len(head) % 8)
    sample_format = 2 if pages.dtype.kind == "i" else 1
    tags = [(256, "I", 1, w), (257, "I", 1, h), (258, "H", 1, pages.dtype.itemsize * 8), (259, "H", 1, 1),
            (262, "H", 1, 1)]
    if "description" in strings:
        tags.append((270, "A", strings["description"][1], strings["description"][0]))
    tags += [(273, "Q", 1, 0), (277, "H", 1, 1), (278, "I", 1, h), (279, "Q", 1, page_bytes)]
    if "software" in strings:
        tags.append((305, "A", strings["software"][1], strings["software"][0]))
    tags.append((339, "H", 1, sample_format))
    ifd = struct.pack("<Q", len(tags))
    for tag, typ, count, value in tags:
        val = struct.pack("<" + ("Q" if typ in "QA" else typ), value).ljust(8, b"\x00")
        ifd += struct.pack("<HHQ", tag, _TAG_TYPES[typ], count) + val
    strip_field = 8 + 20 * [t[0] for t in tags].index(273) + 12
    next_field = len(ifd)
    ifd += struct.pack("<Q", 0)
    block = len(ifd) + page_bytes
    block += -block % 8
    body = np.zeros((n, block), dtype=np.uint8)
    body[:, :len(ifd)] = np.frombuffer(ifd, np.uint8)
    starts = len(head) + block * np.arange(n, dtype=np.uint64)
    body[:, strip_field:strip_field + 8] = (starts + len(ifd)).astype("<u8").view(np.uint8).reshape(n, 8)
    nxt = np.where(np.arange(n) < n - 1, starts + block, 0).astype("<u8")
    body[:, next_field:next_field + 8] = nxt.view(np.uint8).reshape(n, 8)
    body[:, len(ifd):len(ifd) + page_bytes] = pages.astype(pages.dtype.newbyteorder("<")).view(np.uint8).reshape(n, -1)
    head = head[:8] + struct.pack("<Q", len(head)) + head[16:]
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(body.tobytes())
