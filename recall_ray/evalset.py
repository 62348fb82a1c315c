"""The project's own evaluation set for schedule extraction: posters and whiteboards rendered with a
Japanese font from Debian (fonts-noto-cjk), in Japanese and English, with known title, date, time and place;
some noisy, rotated or low in contrast. The tests hold accuracy on it; the demo shows one of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/opentype/noto")
REFERENCE = dt.datetime(2025, 9, 2, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))  # a Tuesday in Tokyo
TIMEZONE = "Asia/Tokyo"
FIELDS = ("title", "date", "start", "end", "location")


@dataclass(frozen=True)
class Poster:
    name: str
    lines: list[str]  # the first is the title, drawn large
    title: str
    date: str  # YYYY-MM-DD, local
    start: str | None  # HH:MM, local
    end: str | None
    location: str | None
    style: str = "poster"  # poster, whiteboard
    noise: float = 0.0  # std of Gaussian pixel noise
    rotate: float = 0.0  # degrees
    contrast: float = 1.0  # < 1 washes the text out
    notes: list[str] = field(default_factory=list)


POSTERS: list[Poster] = [
    Poster(
        "ja-boardgames",
        ["週末ボードゲーム会", "9月13日(土) 14:00〜18:00", "場所: 渋谷カフェ", "RSVP by Sep 10"],
        "週末ボードゲーム会",
        "2025-09-13",
        "14:00",
        "18:00",
        "渋谷カフェ",
        notes=["RSVP by Sep 10"],
    ),
    Poster(
        "en-gamenight",
        ["Board Game Night", "Sep 14, 2-6pm", "Shibuya Cafe", "Bring your favourite game"],
        "Board Game Night",
        "2025-09-14",
        "14:00",
        "18:00",
        "Shibuya Cafe",
        notes=["Bring your favourite game"],
    ),
    Poster(
        "ja-hanami",
        ["お花見ピクニック", "2025/9/20 11時", "代々木公園"],
        "お花見ピクニック",
        "2025-09-20",
        "11:00",
        None,
        "代々木公園",
    ),
    Poster(
        "ja-bbq-relative",
        ["河原でバーベキュー", "来週土曜 11:00-15:00", "@ 多摩川河川敷", "参加費 1500円"],
        "河原でバーベキュー",
        "2025-09-13",
        "11:00",
        "15:00",
        "多摩川河川敷",
        notes=["参加費 1500円"],
    ),
    Poster(
        "en-picnic-next",
        ["Autumn Picnic", "next Saturday 10am", "Ueno Park"],
        "Autumn Picnic",
        "2025-09-13",
        "10:00",
        None,
        "Ueno Park",
    ),
    Poster(
        "en-lunch",
        ["Team Lunch", "Fri, Sep 12 12:30", "at Ramen Shop Ichiran"],
        "Team Lunch",
        "2025-09-12",
        "12:30",
        None,
        "Ramen Shop Ichiran",
    ),
    Poster(
        "ja-meeting-ampm",
        ["定例ミーティング", "9月24日(水) 午後2時〜午後4時", "会議室A"],
        "定例ミーティング",
        "2025-09-24",
        "14:00",
        "16:00",
        "会議室A",
    ),
    Poster(
        "en-concert",
        ["Jazz Evening", "September 27, 2025", "7:00 PM - 9:30 PM", "Venue: Blue Note Hall"],
        "Jazz Evening",
        "2025-09-27",
        "19:00",
        "21:30",
        "Blue Note Hall",
    ),
    Poster(
        "ja-festival",
        ["秋祭り", "10月5日(日) 17:00〜21:00", "会場: 浅草神社"],
        "秋祭り",
        "2025-10-05",
        "17:00",
        "21:00",
        "浅草神社",
    ),
    Poster(
        "en-hike",
        ["Mt. Takao Hike", "Sat 20 Sep, 8:00am", "Meet at Takaosanguchi Station"],
        "Mt. Takao Hike",
        "2025-09-20",
        "08:00",
        None,
        "Takaosanguchi Station",
    ),
    Poster(
        "ja-study",
        ["Python勉強会", "2025年9月18日 19:00-21:00", "場所: 渋谷ヒカリエ 8F"],
        "Python勉強会",
        "2025-09-18",
        "19:00",
        "21:00",
        "渋谷ヒカリエ 8F",
    ),
    Poster(
        "en-birthday",
        ["Mika's Birthday Party", "Oct 3, 7pm", "at Cafe Lumiere", "RSVP by Sep 30"],
        "Mika's Birthday Party",
        "2025-10-03",
        "19:00",
        None,
        "Cafe Lumiere",
        notes=["RSVP by Sep 30"],
    ),
    Poster(
        "ja-karaoke",
        ["カラオケ大会", "9月19日(金) 20時〜23時", "新宿カラオケ館"],
        "カラオケ大会",
        "2025-09-19",
        "20:00",
        "23:00",
        "新宿カラオケ館",
    ),
    Poster(
        "en-movie-noise",
        ["Movie Night", "Sep 26, 6:30-9pm", "Room 302"],
        "Movie Night",
        "2025-09-26",
        "18:30",
        "21:00",
        "Room 302",
        noise=18.0,
    ),
    Poster(
        "ja-camp-rotated",
        ["キャンプ合宿", "10月11日(土) 9:00〜", "場所: 道志川キャンプ場"],
        "キャンプ合宿",
        "2025-10-11",
        "09:00",
        None,
        "道志川キャンプ場",
        rotate=4.0,
    ),
    Poster(
        "en-run-lowcontrast",
        ["Morning Run", "Sun, Sep 21 7:00am", "Komazawa Park"],
        "Morning Run",
        "2025-09-21",
        "07:00",
        None,
        "Komazawa Park",
        contrast=0.35,
    ),
    Poster(
        "ja-izakaya-noise",
        ["歓迎会", "9月25日(木) 19:00〜21:00", "会場: 居酒屋 鳥貴族 渋谷店"],
        "歓迎会",
        "2025-09-25",
        "19:00",
        "21:00",
        "居酒屋 鳥貴族 渋谷店",
        noise=15.0,
    ),
    Poster(
        "wb-en-retro",
        ["Sprint Retro", "Thu Sep 18 3pm-4pm", "Room Kiwi"],
        "Sprint Retro",
        "2025-09-18",
        "15:00",
        "16:00",
        "Room Kiwi",
        style="whiteboard",
    ),
    Poster(
        "wb-ja-lunch",
        ["ランチ会", "9/16 12:00-13:00", "社員食堂"],
        "ランチ会",
        "2025-09-16",
        "12:00",
        "13:00",
        "社員食堂",
        style="whiteboard",
    ),
    Poster(
        "wb-ja-relative-rot",
        ["飲み会", "今週金曜 19:00", "場所: 神田"],
        "飲み会",
        "2025-09-05",
        "19:00",
        None,
        "神田",
        style="whiteboard",
        rotate=-3.0,
    ),
    Poster(
        "en-market",
        ["Flea Market", "October 12", "10am to 4pm", "Yoyogi Park Event Square"],
        "Flea Market",
        "2025-10-12",
        "10:00",
        "16:00",
        "Yoyogi Park Event Square",
    ),
    Poster(
        "ja-fireworks-low",
        ["花火大会", "9月28日(日) 19:00〜20:30", "会場: 隅田川"],
        "花火大会",
        "2025-09-28",
        "19:00",
        "20:30",
        "隅田川",
        contrast=0.45,
    ),
    Poster(
        "en-yoga-rot",
        ["Sunset Yoga", "Sep 17, 6pm", "at Odaiba Beach"],
        "Sunset Yoga",
        "2025-09-17",
        "18:00",
        None,
        "Odaiba Beach",
        rotate=-5.0,
    ),
    Poster(
        "ja-tea",
        ["茶道体験", "2025.10.4 13時半", "会場: 浜離宮恩賜庭園"],
        "茶道体験",
        "2025-10-04",
        "13:30",
        None,
        "浜離宮恩賜庭園",
    ),
]


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "NotoSansCJK-Bold.ttc" if bold else "NotoSansCJK-Regular.ttc"
    path = FONT_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the Debian package fonts-noto-cjk")
    return ImageFont.truetype(str(path), size)


def render(poster: Poster, seed: int = 0) -> Image.Image:
    """The poster as a photo would show it: layout, style, then noise, rotation and contrast."""
    width, height = 1000, 700
    whiteboard = poster.style == "whiteboard"
    background = (236, 238, 240) if whiteboard else (252, 250, 244)
    ink = (20, 40, 140) if whiteboard else (25, 25, 25)
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    if not whiteboard:
        draw.rectangle([20, 20, width - 20, height - 20], outline=(190, 60, 60), width=6)
    y = 70
    for i, line in enumerate(poster.lines):
        size = 76 if i == 0 else 46
        draw.text((70, y), line, font=font(size, bold=i == 0), fill=ink)
        y += int(size * 1.7)
    if poster.contrast < 1.0:
        arr = np.asarray(img, np.float32)
        arr = 255 - (255 - arr) * poster.contrast
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    if poster.rotate:
        img = img.rotate(poster.rotate, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=background)
    if poster.noise:
        rng = np.random.default_rng(seed)
        arr = np.asarray(img, np.float32) + rng.normal(0, poster.noise, (img.height, img.width, 1))
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return img


def expected(poster: Poster) -> dict[str, str | None]:
    return {f: getattr(poster, f) for f in FIELDS}


def found(candidate: dict | None) -> dict[str, str | None]:
    """A candidate's fields in the evaluation's terms (local date and times, whitespace-free text)."""
    from zoneinfo import ZoneInfo

    if candidate is None:
        return dict.fromkeys(FIELDS)
    tz = ZoneInfo(TIMEZONE)
    start = candidate.get("start")
    end = candidate.get("end")
    local_start = start.astimezone(tz) if start else None
    return {
        "title": candidate.get("title"),
        "date": local_start.date().isoformat() if local_start else None,
        "start": local_start.strftime("%H:%M") if local_start and not candidate.get("all_day") else None,
        "end": end.astimezone(tz).strftime("%H:%M") if end else None,
        "location": candidate.get("location"),
    }


def same(a: str | None, b: str | None) -> bool:
    from recall_ray.services.schedule_text import normalise

    def key(v: str | None) -> str | None:
        return None if v is None else normalise(v).replace(" ", "").lower()

    return key(a) == key(b)


def evaluate(read: Callable[[Image.Image], dict | None]) -> dict[str, object]:
    """Field accuracy over the set; ``read`` turns an image into its best schedule candidate (or None)."""
    hits = dict.fromkeys(FIELDS, 0)
    rows = []
    for i, poster in enumerate(POSTERS):
        got = found(read(render(poster, seed=i)))
        want = expected(poster)
        ok = {f: same(got[f], want[f]) for f in FIELDS}
        for f in FIELDS:
            hits[f] += ok[f]
        rows.append({"poster": poster.name, "ok": ok, "got": got})
    n = len(POSTERS)
    accuracy = {f: hits[f] / n for f in FIELDS}
    return {
        "n": n,
        "accuracy": accuracy,
        "all_fields": sum(all(r["ok"].values()) for r in rows) / n,
        "rows": rows,
    }
