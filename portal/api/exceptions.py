"""JSON errors for what DRF leaves to Django: protected rows (409) and model validation (400)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, (ProtectedError, RestrictedError)):
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in list(exc.protected_objects)[:100]})
        return Response(
            {"detail": "Other records still refer to this one (%s); remove them first." % ", ".join(kinds)},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
