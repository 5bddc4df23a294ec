"""Who may see the dashboard, who may act from it, and which jobs each user may see.

A rule is ``"staff"`` (the default), ``"superuser"``, ``"authenticated"``, a permission
(``"app_label.codename"``), or a callable ``(request) -> bool`` given as an object or as a dotted
path with at least two dots (``"myproject.access.can_operate"``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.http import HttpRequest
from django.utils.module_loading import import_string

BUILTIN = ("staff", "superuser", "authenticated")


def _user(request: HttpRequest) -> Any:
    return getattr(request, "user", None)


def is_authenticated(request: HttpRequest) -> bool:
    user = _user(request)
    return bool(user is not None and user.is_authenticated and user.is_active)


def check(rule: Any, request: HttpRequest) -> bool:
    """Evaluate one rule for ``request``. Anonymous users never pass a built-in rule."""
    if callable(rule):
        return bool(rule(request))
    if not isinstance(rule, str) or not rule:
        raise ImproperlyConfigured(
            f"A dashboard access rule must be a string or a callable, got {rule!r}."
        )
    user = _user(request)
    if rule in BUILTIN:
        if not is_authenticated(request):
            return False
        if rule == "staff":
            return bool(user.is_staff or user.is_superuser)
        if rule == "superuser":
            return bool(user.is_superuser)
        return True
    if rule.count(".") >= 2:
        try:
            func = import_string(rule)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Dashboard access rule {rule!r} looks like a dotted path to a callable but cannot "
                "be imported. Use 'staff', 'superuser', 'authenticated', 'app_label.codename' or an "
                "importable callable."
            ) from exc
        return bool(func(request))
    if "." in rule:
        return bool(is_authenticated(request) and user.has_perm(rule))
    raise ImproperlyConfigured(
        f"Unknown dashboard access rule {rule!r}: use 'staff', 'superuser', 'authenticated', "
        "'app_label.codename' or a dotted path to a callable."
    )


def sees_everything(request: HttpRequest, own_only: bool) -> bool:
    """With ``OWN_TASKS_ONLY`` only staff see every job; everyone else sees their own."""
    if not own_only:
        return True
    user = _user(request)
    return bool(user is not None and (user.is_staff or user.is_superuser))


def owner_id(request: HttpRequest) -> str | None:
    """The viewer's primary key as stored on the jobs they launch (``None``: nobody's owner)."""
    user = _user(request)
    if user is None or not user.is_authenticated or user.pk is None:
        return None
    return str(user.pk)


def own_filter(request: HttpRequest, owner_field: str | None) -> Q:
    """The jobs the viewer launched, decided by the stored user id alone: a username or display
    name can be renamed, reused or shared, a primary key cannot. Without an owner column (or for
    anonymous viewers) it matches nothing."""
    pk = owner_id(request)
    if not owner_field or pk is None:
        return Q(pk__in=[])
    return Q(**{owner_field: pk})
