"""Logging pieces for settings.LOGGING."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A 4xx (a 403 for a page the user may not open, a 404) is the client's, not a bug: one line, no traceback.

    Django's request logger attaches the exception to every 4xx it logs; 5xx keep their traceback.
    """

    def filter(self, record):
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
