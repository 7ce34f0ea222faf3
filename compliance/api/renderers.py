"""A CSV renderer, so ``reports/compliance.csv`` (or ``Accept: text/csv``) negotiates like any format."""

import csv
import io

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Renders what is not already streamed: error bodies, as ``field,message`` rows."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["field", "message"])
        items = data.items() if isinstance(data, dict) else [("detail", data)]
        for key, value in items:
            for message in value if isinstance(value, list) else [value]:
                writer.writerow([key, str(message)])
        return out.getvalue().encode(self.charset)
