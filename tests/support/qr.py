"""Read a QR code the way a phone's camera would: the SVG the API returns is drawn
as pixels and decoded by ZXing (zxing-cpp), a decoder independent of the encoder."""

from __future__ import annotations

import re
from dataclasses import dataclass

import zxingcpp

QUIET_ZONE = 4  # modules of margin on each side, as the QR standard asks
PIXELS_PER_MODULE = 3  # for the decoder's image; enough for ZXing to find the pattern


@dataclass(frozen=True)
class ScannedQr:
    text: str
    error_correction: str  # "L", "M", "Q" or "H"
    module_px: float  # the SVG's drawn size of one module


def scan_svg(svg: str) -> ScannedQr:
    """Decode an SVG QR code made of one path of horizontal runs (segno's drawing:
    ``M x y`` to start, ``h n`` for n dark modules, ``m dx dy`` to move)."""
    path = re.search(r' d="([^"]+)"', svg)
    width = re.search(r'<svg[^>]* width="([\d.]+)"', svg)
    assert path and width, "not a QR code drawn as one path"
    x = y = 0.0
    dark = set()
    for op, first, second in re.findall(r"([MmHh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if op == "M":
            x, y = float(first), float(second)
        elif op == "m":
            x, y = x + float(first), y + float(second)
        else:
            dark.update((int(x) + i, int(y)) for i in range(int(first)))
            x += int(first)
    modules = max(max(column, row) for column, row in dark) + 1 - QUIET_ZONE
    side = modules + 2 * QUIET_ZONE
    pixels = bytearray(b"\xff" * (side * PIXELS_PER_MODULE) ** 2)
    for column, row in dark:
        for dy in range(PIXELS_PER_MODULE):
            start = ((row * PIXELS_PER_MODULE + dy) * side + column) * PIXELS_PER_MODULE
            pixels[start : start + PIXELS_PER_MODULE] = bytes(PIXELS_PER_MODULE)
    image = memoryview(pixels).cast("B", shape=[side * PIXELS_PER_MODULE] * 2)
    (found,) = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return ScannedQr(found.text, found.ec_level, float(width.group(1)) / side)
