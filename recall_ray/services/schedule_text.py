"""From text lines read off a photo (OCR / VLM) to schedule candidates and notes.

Dates and times in the forms people write on posters and whiteboards, Japanese and English:
``9月14日(土) 14:00〜18:00``, ``2025/9/14 14時``, ``Sep 14, 2-6pm``, ``来週土曜``, ``next Saturday 10am``.
Everything is resolved against a reference time in the user's time zone and returned in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

_CJK = r"\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_JA_WEEKDAYS = "月火水木金土日"
_EN_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_EN_WD_RE = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday|rsday)?"

_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ymd_ja", re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日")),
    ("ymd_num", re.compile(r"(?<!\d)(?P<y>\d{4})[/.\-](?P<m>\d{1,2})[/.\-](?P<d>\d{1,2})(?!\d)")),
    ("md_ja", re.compile(r"(?<!\d)(?P<m>\d{1,2})月(?P<d>\d{1,2})日")),
    (
        "md_en",
        re.compile(
            rf"\b(?P<mon>{_MONTH_RE})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{{4}}))?", re.I
        ),
    ),
    (
        "dm_en",
        re.compile(
            rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<mon>{_MONTH_RE})\.?(?:,?\s+(?P<y>\d{{4}}))?\b", re.I
        ),
    ),
    ("md_slash", re.compile(r"(?<![\d/])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])")),
    # A month name with one character misread ("SeD 26"), only where a day number follows.
    (
        "md_en_fuzzy",
        re.compile(r"\b(?P<mon>[A-Za-z]{3})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{4}))?"),
    ),
]
_WEEKDAY_JA = re.compile(rf"\s*[(（]\s*(?P<wd>[{_JA_WEEKDAYS}])\s*(?:曜日?)?\s*[)）]")
_WEEKDAY_EN_PAREN = re.compile(rf"\s*[(（]\s*(?P<wd>{_EN_WD_RE})\.?\s*[)）]", re.I)
_WEEKDAY_EN_BEFORE = re.compile(rf"\b(?P<wd>{_EN_WD_RE})\b\.?,?\s*$", re.I)
_RELATIVE_JA = re.compile(rf"(?P<which>今週|来週|再来週)の?(?P<wd>[{_JA_WEEKDAYS}])曜(?:日)?")
_RELATIVE_EN = re.compile(
    r"\b(?P<which>this|next)\s+(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I
)
_DAY_WORDS = {"今日": 0, "本日": 0, "明日": 1, "あした": 1, "明後日": 2, "today": 0, "tomorrow": 1}
_DAY_WORD_RE = re.compile(r"今日|本日|明後日|明日|あした|\btoday\b|\btomorrow\b", re.I)

# A range between two times; OCR reads the wave dash as "て" or "<" often enough to accept them there.
_DASH = r"(?:\s*(?:[~\-–—−‐ー〜～て<]|から|to)\s*|(?<=時)\s*(?=\d{1,2}時))"
_AMPM_JA = r"(?P<ap>午前|午後)?"
_TIME_RANGE = re.compile(
    rf"{_AMPM_JA}(?P<h1>\d{{1,2}})(?:[:.](?P<m1>\d{{2}})|時(?:(?P<jm1>\d{{1,2}})分|(?P<half1>半))?)?\s*(?P<ap1>am|pm|a\.m\.|p\.m\.)?"
    rf"(?:{_DASH}(?P<ap2ja>午前|午後)?(?P<h2>\d{{1,2}})(?:[:.](?P<m2>\d{{2}})|時(?:(?P<jm2>\d{{1,2}})分|(?P<half2>半))?)?\s*(?P<ap2>am|pm|a\.m\.|p\.m\.)?)?",
    re.I,
)
_LOCATION_MARK = re.compile(
    r"(?:場所|会場|集合場所|\blocation\b|\bvenue\b|\bplace\b|\bwhere\b|\bat\b|@|📍)\s*[:：@]?\s*(?P<loc>.+)$",
    re.I,
)
_LOCATION_WORDS = re.compile(
    r"(カフェ|喫茶|公園|駅|会館|ホール|会議室|教室|食堂|店|ビル|館|センター|広場|神社|寺|海岸|ビーチ|キャンプ場|体育館|"
    r"\bcafe\b|\bcafé\b|\bpark\b|\bstation\b|\bhall\b|\bcent(?:er|re)\b|\broom\b|\bbar\b|\brestaurant\b|"
    r"\blibrary\b|\bbeach\b|\bcampus\b|\bstudio\b|\bgym\b|\bpub\b)",
    re.I,
)
_NOTE_WORDS = re.compile(
    r"(\brsvp\b|\bdeadline\b|\bbring\b|\bfee\b|\bcost\b|\bcontact\b|\bnotes?\s*[:：]|\bfree\b|"
    r"締切|締め切り|〆切|申込|申し込み|持ち物|参加費|会費|問い合わせ|連絡|注意|※|¥|円|まで(?:に)?(?:返信|連絡|申込))",
    re.I,
)


@dataclass
class Line:
    text: str
    box: list[float]
    confidence: float | None

    @property
    def height(self) -> float:
        return max(1.0, self.box[3] - self.box[1]) if len(self.box) == 4 else 1.0


@dataclass
class DateHit:
    date: dt.date
    span: tuple[int, int]
    weekday_ok: bool | None  # None when no weekday was written
    explicit_year: bool


@dataclass
class TimeHit:
    start: dt.time
    end: dt.time | None
    span: tuple[int, int]


@dataclass
class Candidate:
    title: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    all_day: bool
    location: str | None
    confidence: float
    lines: list[int] = field(default_factory=list)


def normalise(text: str) -> str:
    """NFKC (full-width digits and colons become ASCII), spaces next to CJK removed, runs of spaces folded."""
    text = unicodedata.normalize("NFKC", text)
    text = _CJK_SPACE.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def _resolve_year(month: int, day: int, ref: dt.date) -> dt.date | None:
    """The next occurrence of month/day on or after ~2 months before the reference date."""
    for year in (ref.year, ref.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if candidate >= ref - dt.timedelta(days=60):
            return candidate
    return None


def find_dates(text: str, ref: dt.date) -> list[DateHit]:
    hits: list[DateHit] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            month = _month(m.group("mon")) if "mon" in pattern.groupindex else int(m.group("m"))
            if month is None:
                continue
            day, year = int(m.group("d")), m.groupdict().get("y")
            if name == "md_slash" and not (1 <= month <= 12 and 1 <= day <= 31):
                continue
            try:
                date = dt.date(int(year), month, day) if year else _resolve_year(month, day, ref)
            except ValueError:
                continue
            if date is None:
                continue
            end = m.end()
            weekday_ok = None
            written = _WEEKDAY_JA.match(text, end) or _WEEKDAY_EN_PAREN.match(text, end)
            if written:
                end = written.end()
            else:  # "Sat, Sep 14" / "Saturday 14 Sep"
                written = _WEEKDAY_EN_BEFORE.search(text[max(0, m.start() - 12) : m.start()])
            if written:
                weekday_ok = _weekday_index(written.group("wd")) == date.weekday()
            taken.append((m.start(), end))
            hits.append(DateHit(date, (m.start(), end), weekday_ok, bool(year)))
    for m in _RELATIVE_JA.finditer(text):
        week = {"今週": 0, "来週": 1, "再来週": 2}[m.group("which")]
        monday = ref - dt.timedelta(days=ref.weekday()) + dt.timedelta(weeks=week)
        hits.append(DateHit(monday + dt.timedelta(days=_weekday_index(m.group("wd"))), m.span(), None, False))
    for m in _RELATIVE_EN.finditer(text):
        week = 1 if m.group("which").lower() == "next" else 0
        monday = ref - dt.timedelta(days=ref.weekday()) + dt.timedelta(weeks=week)
        hits.append(DateHit(monday + dt.timedelta(days=_weekday_index(m.group("wd"))), m.span(), None, False))
    for m in _DAY_WORD_RE.finditer(text):
        if not any(a <= m.start() < b for a, b in (h.span for h in hits)):
            hits.append(
                DateHit(ref + dt.timedelta(days=_DAY_WORDS[m.group(0).lower()]), m.span(), None, False)
            )
    return sorted(hits, key=lambda h: h.span)


def _month(word: str) -> int | None:
    """A month from its English name, or from a 3-letter abbreviation with one letter misread by OCR."""
    word = word.lower()
    if word in _MONTHS:
        return _MONTHS[word]
    close = [
        n
        for m, n in _MONTHS.items()
        if len(m) == 3 == len(word) and sum(a != b for a, b in zip(m, word, strict=True)) == 1
    ]
    weekday_like = any(word[:2] == w[:2] for w in _EN_WEEKDAYS)  # "Sat 20" is a weekday, not "Sep"
    return close[0] if len(set(close)) == 1 and not weekday_like else None


def _weekday_index(word: str) -> int:
    """0 = Monday, for a Japanese weekday character or an English name or abbreviation."""
    if word in _JA_WEEKDAYS:
        return _JA_WEEKDAYS.index(word)
    return [w[:3] for w in _EN_WEEKDAYS].index(word.lower()[:3])


def _hour(h: int, ap: str | None, ap_ja: str | None) -> int | None:
    ap = (ap or "").lower().replace(".", "")
    if ap == "pm" or ap_ja == "午後":
        h = h + 12 if h < 12 else h
    elif (ap == "am" or ap_ja == "午前") and h == 12:
        h = 0
    return h if 0 <= h <= 23 else None


def find_times(text: str, exclude: list[tuple[int, int]]) -> list[TimeHit]:
    hits = []
    for m in _TIME_RANGE.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in exclude):
            continue
        g = m.groupdict()
        has_clock = g["m1"] is not None or "時" in m.group(0) or g["ap1"] or g["ap2"]
        if not has_clock:
            continue  # a bare number is not a time
        ap1 = g["ap1"] or (g["ap2"] if not g["ap1"] else None)  # "2-6pm": the pm belongs to both
        h1 = _hour(int(g["h1"]), ap1, g["ap"])
        m1 = int(g["m1"] or g["jm1"] or (30 if g["half1"] else 0))
        if h1 is None or m1 > 59:
            continue
        end = None
        if g["h2"] is not None:
            h2 = _hour(int(g["h2"]), g["ap2"], g["ap2ja"] or g["ap"])
            m2 = int(g["m2"] or g["jm2"] or (30 if g["half2"] else 0))
            if h2 is not None and m2 <= 59:
                if g["ap2"] is None and g["ap1"] is None and h2 < h1 and h2 + 12 <= 23 and not g["ap"]:
                    h2 += 12  # "14:00-6:00" reads as 14:00-18:00 on a poster, not an overnight event
                end = dt.time(h2, m2)
        hits.append(TimeHit(dt.time(h1, m1), end, m.span()))
    return hits


def _strip_spans(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for a, b in sorted(spans):
        out.append(text[last:a])
        last = max(last, b)
    out.append(text[last:])
    cleaned = re.sub(r"[\s,、・|/:：\-~〜()（）]+$|^[\s,、・|/:：\-~〜()（）]+", "", " ".join(out))
    return re.sub(r"\s+", " ", cleaned).strip()


def location_of(text: str) -> str | None:
    m = _LOCATION_MARK.search(text)
    if m and m.group("loc").strip():
        return m.group("loc").strip(" :：")
    if _LOCATION_WORDS.search(text):
        return text.strip()
    return None


def extract(lines: list[Line], reference: dt.datetime, timezone: str) -> tuple[list[Candidate], list[str]]:
    """Schedule candidates (best first) and notes from text lines."""
    tz = ZoneInfo(timezone)
    ref = reference.astimezone(tz).date()
    texts = [normalise(line.text) for line in lines]
    dates = [find_dates(t, ref) for t in texts]
    times = [find_times(t, [h.span for h in ds]) for t, ds in zip(texts, dates, strict=True)]
    notes = [t for t in texts if _NOTE_WORDS.search(t) and t]
    note_idx = {i for i, t in enumerate(texts) if t in notes}
    locations = {i: loc for i, t in enumerate(texts) if i not in note_idx and (loc := location_of(t))}

    date_lines = [i for i, ds in enumerate(dates) if ds and i not in note_idx]
    if not date_lines:
        return [], notes
    # A new event starts at each line with a date; its time, place and title come from nearby lines.
    candidates = []
    for n, i in enumerate(date_lines):
        hit = dates[i][0]
        group_end = date_lines[n + 1] if n + 1 < len(date_lines) else len(lines)
        group_start = date_lines[n - 1] + 1 if n > 0 else 0
        time_hit = next((t for j in [i, *range(i + 1, group_end)] for t in times[j]), None)
        location = next(
            (locations[j] for j in [i, *range(i + 1, group_end), *range(group_start, i)] if j in locations),
            None,
        )
        title = _title(lines, texts, dates, times, locations, note_idx, i, group_start, group_end)
        start, end, all_day = _when(hit.date, time_hit, tz)
        used = [j for j in range(group_start, group_end)]
        confidence = _confidence(lines, used, title, time_hit, location, hit)
        candidates.append(Candidate(title, start, end, all_day, location, confidence, used))
    candidates.sort(key=lambda c: -c.confidence)
    return candidates, [n for n in notes]


def _title(lines, texts, dates, times, locations, note_idx, i, start, end) -> str | None:  # noqa: ANN001
    """The most prominent (tallest) text of the event that is not only a date, time, place or note."""
    options = []
    for j in range(start, end):
        if j in note_idx or (j in locations and j != i):
            continue
        spans = [h.span for h in dates[j]] + [t.span for t in times[j]]
        rest = _strip_spans(texts[j], spans)
        if j in locations:
            rest = _strip_spans(rest, [m.span() for m in [_LOCATION_MARK.search(rest)] if m])
        if len(re.sub(r"\W", "", rest)) >= 2:
            options.append((-lines[j].height, j, rest))
    return min(options)[2] if options else None


def _when(
    date: dt.date, time_hit: TimeHit | None, tz: ZoneInfo
) -> tuple[dt.datetime, dt.datetime | None, bool]:
    if time_hit is None:
        return dt.datetime.combine(date, dt.time(0), tz).astimezone(dt.UTC), None, True
    start = dt.datetime.combine(date, time_hit.start, tz)
    end = None
    if time_hit.end is not None:
        end = dt.datetime.combine(date, time_hit.end, tz)
        if end <= start:
            end += dt.timedelta(days=1)
        end = end.astimezone(dt.UTC)
    return start.astimezone(dt.UTC), end, False


def _confidence(lines, used, title, time_hit, location, hit) -> float:  # noqa: ANN001
    confs = [lines[j].confidence for j in used if lines[j].confidence is not None]
    reading = sum(confs) / len(confs) if confs else 0.6
    completeness = (
        0.4 + 0.2 * (title is not None) + 0.2 * (time_hit is not None) + 0.2 * (location is not None)
    )
    if hit.weekday_ok is False:
        completeness *= 0.7  # the written weekday contradicts the date: something was misread
    return round(max(0.0, min(1.0, reading * completeness)), 3)
