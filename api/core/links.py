"""Absolute links the service hands out (QR codes, `trace_url`): one base URL, one place.

`TEALEDGER_PUBLIC_BASE_URL` names the address consumers reach the service at (behind a proxy,
the proxy's https address). Unset, links follow the address the request came to, so a service
on any port or host links to itself rather than to a fixed `127.0.0.1:8000`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.core.deps import SettingsDep


def base_url(request: Request, configured: str) -> str:
    """The configured public base URL, else the one this request was addressed to."""
    return (configured or str(request.base_url)).rstrip("/")


def request_base_url(request: Request, settings: SettingsDep) -> str:
    """Dependency: the base of every absolute link in this response."""
    return base_url(request, settings.public_base_url)


def served_over_https(request: Request, configured: str) -> bool:
    """Whether cookies must be Secure: the public address (or this request) is https."""
    return base_url(request, configured).startswith("https://")


BaseUrlDep = Annotated[str, Depends(request_base_url)]
