"""The console's words in zh-CN (first) and English: one dict, looked up by key.

A page's language is ``?lang=`` when given (and then remembered in a cookie), else the
cookie, else zh-CN. A key missing from English falls back to the Chinese text, so a
page never shows a bare key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

LANGS: Final = ("zh-CN", "en")
DEFAULT_LANG: Final = "zh-CN"
LANG_COOKIE: Final = "lang"

Translate = Callable[[str], str]

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "site.title": {"zh-CN": "长三角消费联盟账本", "en": "YRD Consumer Alliance Ledger"},
    "nav.lookup": {"zh-CN": "一站式查询", "en": "Lookup"},
    "nav.transparency": {"zh-CN": "透明度", "en": "Transparency"},
    "nav.label": {"zh-CN": "主导航", "en": "Main navigation"},
    "nav.skip": {"zh-CN": "跳到正文", "en": "Skip to content"},
    "lang.switch": {"zh-CN": "English", "en": "中文"},
    "footer.trust": {"zh-CN": "信任根指纹", "en": "Trust root fingerprint"},
    "footer.offline": {
        "zh-CN": "本页所有资源随系统发布，不依赖互联网。",
        "en": "Every asset of this page ships with the system; no internet needed.",
    },
}


def normalize(lang: str | None) -> str | None:
    """``lang`` as one of LANGS, or None (``en-US`` → ``en``, ``zh`` → ``zh-CN``)."""
    if not lang:
        return None
    lowered = lang.strip().lower()
    if lowered.startswith("en"):
        return "en"
    if lowered.startswith("zh"):
        return "zh-CN"
    return None


def translator(lang: str) -> Translate:
    def translate(key: str) -> str:
        entry = MESSAGES.get(key)
        if entry is None:
            return key
        return entry.get(lang) or entry[DEFAULT_LANG]

    return translate


def register(messages: dict[str, dict[str, str]]) -> None:
    """Add a page's words (each key once: a clash is a programming mistake)."""
    for key, entry in messages.items():
        if key in MESSAGES:
            raise ValueError(f"i18n key {key} is defined twice")
        if DEFAULT_LANG not in entry:
            raise ValueError(f"i18n key {key} has no {DEFAULT_LANG} text")
        MESSAGES[key] = entry
