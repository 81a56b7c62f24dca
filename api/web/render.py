"""Jinja2 over api/web/templates, with the page's language, its words and formatters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.web import format as fmt
from api.web import i18n

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ONE_YEAR_S = 365 * 24 * 3600

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters["yuan"] = fmt.yuan
templates.env.filters["local_time"] = fmt.local_time
templates.env.filters["local_day"] = fmt.local_day
templates.env.filters["unix_time"] = fmt.unix_time
templates.env.globals["age_parts"] = fmt.age_parts


def page_lang(request: Request) -> str:
    """``?lang=`` first, then the cookie, then zh-CN."""
    return (
        i18n.normalize(request.query_params.get("lang"))
        or i18n.normalize(request.cookies.get(i18n.LANG_COOKIE))
        or i18n.DEFAULT_LANG
    )


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """``template`` in the request's language; an explicit ``?lang=`` is remembered."""
    lang = page_lang(request)
    other = "en" if lang == i18n.DEFAULT_LANG else i18n.DEFAULT_LANG
    toggle = request.url.include_query_params(lang=other)
    full = {
        "lang": lang,
        "t": i18n.translator(lang),
        "toggle_url": f"{toggle.path}?{toggle.query}",
        "path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    response.headers["Content-Language"] = lang
    response.headers["Cache-Control"] = "no-cache"
    if i18n.normalize(request.query_params.get("lang")):
        response.set_cookie(
            i18n.LANG_COOKIE, lang, max_age=ONE_YEAR_S, samesite="strict", httponly=True
        )
    return response
