"""transcript.pdf: transcript.html rendered by WeasyPrint, fetching nothing but the images the
page carries inline (data: URLs)."""

from __future__ import annotations

import logging

log = logging.getLogger("bridge.export.pdf")


def render(html: str) -> bytes:
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Only data: URLs: a page that named anything else (a remote image) renders without it.
    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns per unsupported CSS rule
    return bytes(HTML(string=html, url_fetcher=fetcher).write_pdf())
