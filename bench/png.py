"""A line chart as PNG in pure Python (zlib + struct): no matplotlib needed for one plot."""

from __future__ import annotations

import struct
import zlib

Color = tuple[int, int, int]

# 3x5 glyphs, rows top to bottom, "1" = ink: enough for axis labels and a legend.
GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", " ": "000000000000000",
    "m": "000000111111101", "s": "011100010001110", "p": "000111101111100", "t": "010111010010011",
    "a": "000011101101011", "e": "000111111100011", "n": "000110101101101", "c": "000011100100011",
    "y": "000101101011110", "l": "110010010010111", "i": "010000010010010", "o": "000111101101111",
    "d": "001011101101011", "r": "000011100100100", "u": "000101101101111", "x": "000101010101101",
    "(": "010100100100010", ")": "010001001001010", ",": "000000000010100", "/": "001001010100100",
    "-": "000000111000000", "b": "100110101101110", "g": "000111101011110", "k": "100101110101101",
}


class Canvas:
    """An RGB bitmap with the few drawing operations a chart needs."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width, self.height = width, height
        self.pixels = [bytearray(bytes(background) * width) for _ in range(height)]

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[y][3 * x:3 * x + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            x = round(x0 + (x1 - x0) * i / steps)
            y = round(y0 + (y1 - y0) * i / steps)
            for dx in range(width):
                for dy in range(width):
                    self.dot(x + dx, y + dy, color)

    def text(self, x: int, y: int, text: str, color: Color = (0, 0, 0), scale: int = 2) -> None:
        for n, char in enumerate(text.lower()):
            glyph = GLYPHS.get(char, GLYPHS[" "])
            for i, ink in enumerate(glyph):
                if ink == "1":
                    for dx in range(scale):
                        for dy in range(scale):
                            self.dot(x + n * 4 * scale + (i % 3) * scale + dx, y + (i // 3) * scale + dy, color)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def line_chart(series: dict[str, tuple[Color, list[tuple[float, float]]]], x_label: str, y_label: str,
               width: int = 900, height: int = 480) -> bytes:
    """Series of (x, y) points on shared axes, with ticks and a legend; PNG bytes."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 80, width - 20, 40, height - 60
    points = [p for _, pts in series.values() for p in pts] or [(0.0, 0.0), (1.0, 1.0)]
    x_max = max(x for x, _ in points) or 1.0
    y_max = max(y for _, y in points) * 1.1 or 1.0

    def at(x: float, y: float) -> tuple[int, int]:
        return (round(left + (right - left) * x / x_max), round(bottom - (bottom - top) * y / y_max))

    for i in range(6):  # grid and tick labels
        y = bottom - (bottom - top) * i // 5
        canvas.line(left, y, right, y, (225, 225, 225))
        canvas.text(5, y - 5, f"{y_max * i / 5:.0f}")
        x = left + (right - left) * i // 5
        canvas.line(x, top, x, bottom, (225, 225, 225))
        canvas.text(x - 10, bottom + 10, f"{x_max * i / 5:.0f}")
    canvas.line(left, bottom, right, bottom, (0, 0, 0))
    canvas.line(left, top, left, bottom, (0, 0, 0))
    canvas.text(left + (right - left) // 2 - 40, bottom + 35, x_label)
    canvas.text(5, 10, y_label)
    for n, (name, (color, pts)) in enumerate(series.items()):
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            canvas.line(*at(xa, ya), *at(xb, yb), color, width=2)
        canvas.line(right - 160, top + 10 + 20 * n + 4, right - 130, top + 10 + 20 * n + 4, color, width=3)
        canvas.text(right - 120, top + 10 + 20 * n, name)
    return canvas.png()
