"""Property summaries: per app and UTC day or hour, the keys of events' data
with their JSON types, number sums and histograms, string values and splits
(docs/insights.md, Properties; telemetry.properties).

They are caches of raw events and start empty: the `properties` background
job builds them for the days already stored, and the Properties page builds
what it needs within a budget meanwhile.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('organizations', '0001_initial'),
        ('telemetry', '0012_segmented_rollups_and_user_days'),
    ]

    operations = [
        migrations.CreateModel(
            name='PropertyBlock',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('span', models.CharField(max_length=1)),
                ('start', models.DateTimeField()),
                ('events', models.BigIntegerField(help_text='Events of the span summarised (every type).')),
                ('folded_events', models.BigIntegerField(default=0, help_text='Events of version/OS/arch/CI combinations past the cap: in unfiltered figures only.')),
                ('other_type_events', models.BigIntegerField(default=0, help_text='Events of event types past the cap: in no figure.')),
                ('built_at', models.DateTimeField()),
                ('app', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organizations.app')),
            ],
        ),
        migrations.CreateModel(
            name='PropertyKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('whole', models.BooleanField()),
                ('service_version', models.CharField(blank=True, max_length=100)),
                ('os', models.CharField(blank=True, max_length=100)),
                ('arch', models.CharField(blank=True, max_length=100)),
                ('ci', models.CharField(blank=True, max_length=5)),
                ('event_type', models.CharField(max_length=200)),
                ('path', models.CharField(max_length=210)),
                ('json_type', models.CharField(max_length=7)),
                ('events', models.BigIntegerField()),
                ('number_sum', models.TextField(blank=True, help_text='Numbers: their exact sum, as decimal text.')),
                ('histogram', models.JSONField(default=dict, help_text='Numbers: {bucket: events} (telemetry.properties.number_bucket).')),
                ('values', models.JSONField(default=dict, help_text='Strings and booleans: {value: events} of the values kept.')),
                ('other_values', models.BigIntegerField(default=0, help_text='Strings whose value was past the cap.')),
                ('long_values', models.BigIntegerField(default=0, help_text='Strings cut to the value length cap.')),
                ('app', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organizations.app')),
                ('block', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='telemetry.propertyblock')),
            ],
        ),
        migrations.CreateModel(
            name='PropertySplit',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('whole', models.BooleanField()),
                ('service_version', models.CharField(blank=True, max_length=100)),
                ('os', models.CharField(blank=True, max_length=100)),
                ('arch', models.CharField(blank=True, max_length=100)),
                ('ci', models.CharField(blank=True, max_length=5)),
                ('event_type', models.CharField(max_length=200)),
                ('number_path', models.CharField(max_length=210)),
                ('split_path', models.CharField(max_length=210)),
                ('values', models.JSONField(default=list)),
                ('app', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organizations.app')),
                ('block', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='telemetry.propertyblock')),
            ],
        ),
        migrations.CreateModel(
            name='PropertyType',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('whole', models.BooleanField()),
                ('service_version', models.CharField(blank=True, max_length=100)),
                ('os', models.CharField(blank=True, max_length=100)),
                ('arch', models.CharField(blank=True, max_length=100)),
                ('ci', models.CharField(blank=True, max_length=5)),
                ('event_type', models.CharField(max_length=200)),
                ('events', models.BigIntegerField()),
                ('keys_seen', models.IntegerField(default=0, help_text='Distinct keys seen (whole scope); more than kept: a cap was hit.')),
                ('keys_kept', models.IntegerField(default=0)),
                ('app', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organizations.app')),
                ('block', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='telemetry.propertyblock')),
            ],
        ),
        migrations.AddConstraint(
            model_name='propertyblock',
            constraint=models.UniqueConstraint(fields=('app', 'span', 'start'), name='property_block_once'),
        ),
        migrations.AddIndex(
            model_name='propertykey',
            index=models.Index(fields=['app', 'block', 'event_type', 'whole', 'path'], name='property_key_read'),
        ),
        migrations.AddIndex(
            model_name='propertysplit',
            index=models.Index(fields=['app', 'block', 'event_type', 'whole', 'number_path'], name='property_split_read'),
        ),
        migrations.AddIndex(
            model_name='propertytype',
            index=models.Index(fields=['app', 'block', 'event_type', 'whole'], name='property_type_read'),
        ),
    ]
