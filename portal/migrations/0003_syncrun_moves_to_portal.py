"""SyncRun moves from compliance to portal: shared run bookkeeping that devices and compliance both record.

State only: the table keeps its name (compliance_syncrun) and its rows; compliance 0004 drops the model from
compliance's state.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('portal', '0002_evaluation_results'),
        ('compliance', '0003_reports_and_sync_runs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='SyncRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('evaluate', 'Evaluate and queue reports'), ('deliver', 'Deliver reports'), ('status', "Read back Intune's status"), ('provision', 'Provision or deprovision'), ('jamf_pull', 'Jamf Pro pull')], max_length=12)),
                        ('status', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('partial', 'Partly failed'), ('failed', 'Failed')], default='running', max_length=12)),
                        ('started_at', models.DateTimeField()),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('counters', models.JSONField(blank=True, default=dict)),
                        ('error', models.TextField(blank=True)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='sync_runs', to='portal.tenant')),
                    ],
                    options={
                        'verbose_name': 'sync run',
                        'verbose_name_plural': 'sync runs',
                        'ordering': ['-started_at', '-id'],
                        'db_table': 'compliance_syncrun',
                        'indexes': [models.Index(fields=['tenant', 'kind', '-started_at'], name='syncrun_tenant_kind')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
