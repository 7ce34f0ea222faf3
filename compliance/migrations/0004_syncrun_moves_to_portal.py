"""SyncRun now lives in portal (portal 0003); the table and its rows stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('compliance', '0003_reports_and_sync_runs'),
        ('portal', '0003_syncrun_moves_to_portal'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='SyncRun')],
            database_operations=[],
        ),
    ]
