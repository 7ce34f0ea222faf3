"""Cursor pagination with a capped page size (stable under inserts, cheap at any depth)."""

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError


class CursorPagination(pagination.CursorPagination):
    """``?page_size=`` up to ``API_MAX_PAGE_SIZE``; the view's ``ordering`` (a unique or near-unique field)."""

    page_size_query_param = "page_size"
    ordering = "-id"

    def __init__(self, ordering=None):
        self.page_size = settings.API_PAGE_SIZE
        self.max_page_size = settings.API_MAX_PAGE_SIZE
        self.fixed_ordering = ordering  # for a list an action serves (a computer's history)

    def get_ordering(self, request, queryset, view):
        if self.fixed_ordering:
            return (self.fixed_ordering,)
        if getattr(view, "ordering", None) and not any(
            hasattr(backend, "get_ordering") for backend in getattr(view, "filter_backends", [])
        ):
            ordering = view.ordering
            return (ordering,) if isinstance(ordering, str) else tuple(ordering)
        return super().get_ordering(request, queryset, view)

    def decode_cursor(self, request):
        # A cursor that does not decode is a bad parameter (400), not a missing page.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError):
            # A cursor position that does not fit the ordering field (a hand-made cursor).
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from None
