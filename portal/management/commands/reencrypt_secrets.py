"""manage.py reencrypt_secrets: re-encrypt every stored secret with the newest encryption key."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "After putting a new key first in PORTAL_ENCRYPTION_KEYS, re-encrypt every secret with it; "
        "then the old key can be removed."
    )

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not names:
                continue
            count = 0
            with transaction.atomic():
                for obj in model._base_manager.select_for_update().only("pk", *names).iterator(chunk_size=500):
                    # Reading decrypted with any key; writing encrypts with the newest one.
                    model._base_manager.filter(pk=obj.pk).update(**{name: getattr(obj, name) for name in names})
                    count += 1
            self.stdout.write("%s: %d row(s) re-encrypted" % (model._meta.label, count))
            total += count
        self.stdout.write(self.style.SUCCESS("Done: %d row(s) re-encrypted with the newest key." % total))
