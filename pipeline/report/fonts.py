"""The Japanese font for the charts: find one that has every glyph the labels need, or say so.

Reads the system's font files (matplotlib's font list plus the files in the system font folders:
a font installed after matplotlib built its cache is added to matplotlib's in-memory font list,
never to its settings); writes nothing. Called by
pipeline.report.charts (which fonts a figure draws with) and pipeline.report.reports (whether
Japanese chart labels are possible, and the warning when they are not).

On Debian the package is `fonts-ipaexfont-gothic` (IPAexGothic, 6 MB; `.ci/run` installs it);
`fonts-noto-cjk` (Noto Sans CJK JP) and the other fonts in PREFERRED work as well. Without any of
them the charts keep English labels (the page itself stays Japanese: the browser has its own
fonts) and `report` prints a warning naming the package, so a chart never shows tofu boxes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

DEBIAN_PACKAGE = "fonts-ipaexfont-gothic"
# Japanese gothic (sans-serif) fonts, best first.
PREFERRED = (
    "IPAexGothic", "IPAGothic", "IPAPGothic", "Noto Sans CJK JP", "Noto Sans JP",
    "Source Han Sans JP", "Source Han Sans", "TakaoGothic", "TakaoPGothic", "VL Gothic",
    "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic", "Meiryo", "MS Gothic",
)
# Characters a Japanese font must have to be used: kana, common kanji, full-width punctuation.
PROBE = "配信試行成功率宛先不明拒否停止リスト推移時間帯別週日月曜キャリアドコモソフトバンク全体（）〜÷・、。"
LATIN_FONT = "DejaVu Sans"   # matplotlib's own default, always present

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JapaneseFont:
    name: str   # the family name matplotlib knows it by
    path: str   # the font file


def _covers(path: str, text: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(path).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(ch) in charmap for ch in set(text))


@lru_cache(maxsize=1)
def japanese_font() -> JapaneseFont | None:
    """The best installed font that has every PROBE character, or None."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    known = {entry.fname for entry in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known:   # installed after matplotlib's font cache was built
            try:
                manager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    entries = [e for e in manager.ttflist if e.style == "normal"]
    rank = {name: i for i, name in enumerate(PREFERRED)}
    entries.sort(key=lambda e: (rank.get(e.name, len(PREFERRED)), e.weight != 400, e.name, e.fname))
    for entry in entries:
        if entry.name == LATIN_FONT:
            continue
        if _covers(entry.fname, PROBE):
            return JapaneseFont(entry.name, entry.fname)
    return None


def missing_glyphs(text: str, font: JapaneseFont | None = None) -> str:
    """The characters of `text` that neither the Japanese font nor DejaVu Sans can draw."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    paths = [font_manager.findfont(LATIN_FONT, fallback_to_default=True)]
    font = font or japanese_font()
    if font is not None:
        paths.append(font.path)
    maps = [FT2Font(p).get_charmap() for p in paths]
    return "".join(sorted({ch for ch in text if not ch.isspace()
                           and not any(ord(ch) in m for m in maps)}))


def chart_language(lang: str, font: JapaneseFont | None) -> tuple[str, str | None]:
    """(the language the charts can be drawn in, a warning or None), given the Japanese font
    found (`japanese_font()`). Japanese needs one; without it the charts fall back to English."""
    if lang != "ja" or font is not None:
        return lang, None
    warning = (f"no Japanese font found for the charts, so their labels are in English: install one "
               f"(Debian: apt-get install {DEBIAN_PACKAGE}; or fonts-noto-cjk)")
    log.warning(warning)
    return "en", warning


def rc_params(lang: str) -> dict:
    """matplotlib settings for drawing a chart in `lang`: the Japanese font first for Japanese,
    DejaVu Sans first otherwise, each falling back to the other glyph by glyph."""
    font = japanese_font()
    families = [LATIN_FONT] if font is None else (
        [font.name, LATIN_FONT] if lang == "ja" else [LATIN_FONT, font.name])
    return {"font.family": families}
