"""The dashboard's page handlers, one module per page or family of pages.

Each handler is ``(view, request, **url_kwargs) -> response``; ``..routing.Page`` names them. The
view passed in is the ``TaskDashboardMixin`` serving the request: it owns access, visibility,
URLs and rendering, so a handler only gathers its page's context.
"""
