"""Text rendered into images by the tests (a Japanese font from Debian's fonts-noto-cjk)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def render_text_image(
    lines: list[str], size: tuple[int, int] = (900, 400), font_size: int = 40
) -> Image.Image:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_size)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * int(font_size * 1.8)), line, font=font, fill="black")
    return img
