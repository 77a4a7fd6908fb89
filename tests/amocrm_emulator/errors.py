"""Error responses in the shapes amoCRM really sends (reference §2, §8).

Handlers raise :class:`ApiError`; the server turns it into a response. Keeping the
bodies here means every error shape is defined once.
"""

from __future__ import annotations

from typing import Any, Dict, List, Union

PROBLEM = "application/problem+json"
HTML = "text/html"
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"

Body = Union[Dict[str, Any], List[Any], str, None]


class ApiError(Exception):
    """An HTTP error answer: status, body and content type."""

    def __init__(self, status: int, body: Body, content_type: str = PROBLEM) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.content_type = content_type


def problem(status: int, title: str, detail: str, **extra: Any) -> ApiError:
    body: Dict[str, Any] = {
        "title": title,
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return ApiError(status, body)


def bad_request(detail: str) -> ApiError:
    return problem(400, "Bad Request", detail)


def not_found() -> ApiError:
    return problem(404, "Not Found", "Route not found")


def method_not_allowed() -> ApiError:
    return problem(405, "Method Not Allowed", "Method not allowed")


def unauthorized() -> ApiError:
    return problem(401, "Unauthorized", "Неверный логин или пароль")


def payment_required() -> ApiError:
    return problem(402, "Payment Required", "Аккаунт не оплачен")


def validation_failed(items: List[Dict[str, Any]]) -> ApiError:
    """``validation-errors``: per item ``request_id`` and ``errors[{code,path,detail}]``."""
    body = {
        "validation-errors": items,
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Request validation failed",
    }
    return ApiError(400, body)


def invalid_body(errors: Dict[str, str]) -> ApiError:
    """The second 400 shape, for business rules: ``errors{<entity id or index>: message}``."""
    body = {
        "errors": errors,
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Invalid request body",
    }
    return ApiError(400, body)


def oauth_request_error(hint: str, status: int = 400) -> ApiError:
    return ApiError(
        status,
        {
            "hint": hint,
            "title": "Некорректный запрос",
            "type": OAUTH_PROBLEM_TYPE,
            "status": status,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
        },
    )


def oauth_client_error() -> ApiError:
    return ApiError(
        401,
        {
            "title": "Некорректный клиент",
            "type": OAUTH_PROBLEM_TYPE,
            "status": 401,
            "detail": "Авторизация клиента не прошла",
        },
    )


_REASONS = {
    402: "Payment Required",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def nginx_page(status: int) -> str:
    """The HTML page nginx answers with (429 rate limit, 403 block, 5xx gateway errors)."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


def html_error(status: int) -> ApiError:
    return ApiError(status, nginx_page(status), HTML)


def fault_error(status: int) -> ApiError:
    """An injected failure: gateways answer HTML, the application answers problem+json."""
    if status in (429, 403, 502, 503, 504):
        return html_error(status)
    if status == 402:
        return payment_required()
    return problem(status, _REASONS.get(status, "Error"), "Injected fault")
