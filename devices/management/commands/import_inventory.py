"""manage.py import_inventory <tenant-slug> <file|->: import Jamf Pro computers-inventory records."""

import io
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices.importer import import_records, iter_records
from portal.models import Tenant


class Command(BaseCommand):
    help = (
        "Import Jamf Pro computers-inventory records (one record, a list, or a page with totalCount and results) "
        "from a file or standard input. Idempotent: importing the same file twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("path", help="a JSON file, or - for standard input")
        parser.add_argument("--batch-size", type=int, default=settings.IMPORT_BATCH_SIZE)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")

    def handle(self, *args, **options):
        try:
            tenant = Tenant.objects.get(slug=options["tenant"])
        except Tenant.DoesNotExist:
            raise CommandError("No tenant with the slug %r." % options["tenant"]) from None
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")

        path = options["path"]
        # A child process reads and maps while this one writes (devices/importer.py): an import uses two cores.
        reader = "process"
        try:
            stream = open(path, "rb") if path != "-" else _stdin()  # noqa: SIM115
        except OSError as exc:
            raise CommandError("Cannot open %s: %s" % (path, exc.strerror)) from None
        if stream is None:  # standard input without a file descriptor (call_command in a test): read it here
            stream, reader = sys.stdin.buffer, "thread"

        bar = None
        if not options["no_progress"] and self.stdout.isatty():
            from tqdm import tqdm

            bar = tqdm(unit=" computers", desc="Importing", file=sys.stderr)
        try:
            result = import_records(
                tenant, iter_records(stream), batch_size=options["batch_size"], progress=bar.update if bar else None,
                reader=reader,
            )
        finally:
            if bar:
                bar.close()
            if stream is not sys.stdin.buffer:
                stream.close()
        self.print_summary(result)
        if result.input_error:
            raise CommandError("%s: %s. Nothing after that point was imported." % (path, result.input_error))
        if result.rejected:
            raise CommandError("%d record(s) rejected; the others were imported." % len(result.rejected))

    def print_summary(self, result):
        s = result.summary()
        self.stdout.write(
            "Created {created}, updated {updated}, unchanged {unchanged}, older than stored {stale}, "
            "rejected {rejected}.".format(**s)
        )
        for rejection in result.rejected[:100]:
            self.stdout.write(
                "  record %d%s: %s"
                % (rejection.index, " (Jamf ID %s)" % rejection.jamf_id if rejection.jamf_id else "", rejection.reason)
            )
        if len(result.rejected) > 100:
            self.stdout.write("  ... and %d more rejected records." % (len(result.rejected) - 100))


def _stdin():
    """Standard input as a binary stream of its own: a duplicate of its file descriptor (None if it has none).

    The reader process is started by multiprocessing, which closes ``sys.stdin`` in the child before it runs
    (and with it ``sys.stdin.buffer`` and descriptor 0); the duplicate stays open there.
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None
    return os.fdopen(os.dup(fd), "rb")
