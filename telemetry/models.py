"""Stored events and the record of used nonces."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from organizations.models import App, Organization, Tier
from telemetry.databases import cascade_on_same_server


class EventQuerySet(models.QuerySet["Event"]):
    def for_app(self, app: App) -> EventQuerySet:
        return self.filter(app=app)


class Event(models.Model):
    """One SDK event. Column sizes are generous for anything the SDK sends
    (docs/protocol.md, Event fields); telemetry.ingest rejects longer values per event
    rather than letting the database refuse the whole batch."""

    app = models.ForeignKey(App, cascade_on_same_server, related_name="events")
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    schema_version = models.CharField(max_length=32)
    event_type = models.CharField(max_length=200)
    category = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=200)
    session_id = models.CharField(max_length=200, blank=True)
    service_name = models.CharField(max_length=200)
    service_version = models.CharField(max_length=100)
    service_language = models.CharField(max_length=100)
    service_language_version = models.CharField(max_length=100, blank=True)
    os = models.CharField(max_length=100)
    os_version = models.CharField(max_length=100, blank=True)
    arch = models.CharField(max_length=100, blank=True)
    ci = models.BooleanField(null=True)
    shell = models.CharField(max_length=100, blank=True)
    sdk_version = models.CharField(max_length=100)
    data = models.JSONField(default=dict)

    objects = EventQuerySet.as_manager()

    class Meta:
        # No unique key of its own: an event id is stored once per app through
        # EventKey (docs/storage.md, Idempotency). On PostgreSQL the table is
        # partitioned by time, and a partitioned table's keys must hold the
        # timestamp, which would let one id be stored again with another one.
        indexes = [
            # Analytics and the events explorer: one app's events in a time range.
            models.Index(fields=["app", "timestamp"], name="event_app_time"),
            # The explorer's user and session filters, and erasure: without them a
            # filter for a rare user reads every event of the app (seconds at millions).
            models.Index(fields=["app", "user_id", "timestamp"], name="event_app_user_time"),
            models.Index(fields=["app", "session_id", "timestamp"], name="event_app_session_time"),
        ]
        # On PostgreSQL, funnels read (app, event_type, STEP_NAME_SQL, user_id, timestamp):
        # event_funnel_step, made by migration 0014 (an expression index over jsonb that
        # SQLite, whose funnels read the (app, timestamp) index, has no use for).

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


# The name a funnel step can ask for (dashboard.funnels): a command_execution
# event's `command`, a feature_used event's `feature`, when it is a JSON string;
# NULL otherwise. On PostgreSQL the index event_funnel_step (migration 0014)
# holds it between the event type and the user, so a step's first event after
# a moment is one index probe per user. The text is cut to STEP_NAME_CUT
# characters to bound the index key (a key over about 2.7 kB would make the
# insert fail); names asked for are shorter than the cut (STEP_NAME_MAX), so an
# equality with one of them is still exact. Queries must spell the expression
# exactly so (the planner matches index expressions by their form).
STEP_NAME_MAX = 200
STEP_NAME_CUT = STEP_NAME_MAX + 1
STEP_NAME_SQL = (
    "CASE WHEN event_type = 'command_execution' AND jsonb_typeof(data -> 'command') = 'string' "
    f"THEN left(data ->> 'command', {STEP_NAME_CUT}) "
    "WHEN event_type = 'feature_used' AND jsonb_typeof(data -> 'feature') = 'string' "
    f"THEN left(data ->> 'feature', {STEP_NAME_CUT}) END"
)
STEP_NAMED_TYPES = {"command_execution": "command", "feature_used": "feature"}


def step_name(event_type: str, data) -> str | None:
    """What STEP_NAME_SQL gives for an event, uncut: the Python side of the same rule."""
    key = STEP_NAMED_TYPES.get(event_type)
    value = data.get(key) if key is not None and isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class UsedNonce(models.Model):
    """Nonces seen inside the replay window, shared by every worker and instance
    through the database (used when REDIS_URL is not set)."""

    app_id = models.BigIntegerField()
    nonce = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app_id", "nonce"], name="nonce_once_per_app"),
        ]
        indexes = [
            # Pruning expired nonces.
            models.Index(fields=["expires_at"], name="nonce_expiry"),
        ]

    def __str__(self) -> str:
        return f"nonce {self.nonce} for app #{self.app_id}"


# --- Plans and limits (telemetry.limits) ---------------------------------------------


class Plan(models.Model):
    """One tier's limits as edited in the admin. An empty field follows the
    CLACKS_PLAN_<TIER>_* setting, so the environment keeps supplying defaults
    until an operator decides otherwise for that tier."""

    tier = models.CharField(max_length=20, choices=Tier.choices, unique=True)
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Ingest requests each app may make per minute. Empty: the CLACKS_PLAN_<TIER>_REQUESTS_PER_MINUTE setting.",
    )
    monthly_events = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=(
            "New events the organization may store per calendar month (UTC); 0 means no quota. "
            "Empty: the CLACKS_PLAN_<TIER>_MONTHLY_EVENTS setting."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier"]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} plan"


class RequestCounter(models.Model):
    """Ingest requests of one app in its current one-minute window, when REDIS_URL
    is not set. One row per app, reset in place when a new window starts, so the
    table never grows. UNLOGGED on PostgreSQL: a count lost in a crash costs at
    most a minute of leniency, and skipping the WAL saves a disk flush per request."""

    app_id = models.BigIntegerField(primary_key=True)
    window_start = models.BigIntegerField(help_text="Unix seconds at which the counted minute began.")
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.count} requests for app #{self.app_id} since {self.window_start}"


class MonthlyUsage(models.Model):
    """New events an organization stored in one calendar month (UTC), when
    REDIS_URL is not set. It is what the monthly quota is checked against, and
    it does not go down when events are later deleted: they were ingested."""

    organization = models.ForeignKey(Organization, cascade_on_same_server, related_name="+")
    month = models.DateField(help_text="First day of the month.")
    events = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # The quota upsert's conflict target: one row per organization and month.
            models.UniqueConstraint(fields=["organization", "month"], name="usage_once_per_org_month"),
        ]

    def __str__(self) -> str:
        return f"{self.events} events in {self.month:%Y-%m} for org #{self.organization_id}"


# --- Pre-aggregated analytics (telemetry.rollups) -------------------------------------


# What the rollups count events by (telemetry.rollups.event_facts says how): the
# plain dimensions, one event field each, then the segmented ones, whose values
# join several fields (telemetry.rollups.SEGMENTED_DIMENSIONS).
ROLLUP_DIMENSIONS = (
    "total", "type", "category", "os", "arch", "version", "ci", "command", "duration",
    "segment", "seg_type", "cmd", "cmd_duration", "cmd_exit", "cmd_flag", "version_duration",
)  # fmt: skip


class RollupCounts(models.Model):
    """What the rollups count per app, period, dimension and value. The command
    fields (succeeded, failed, timed, duration sum) count command events only."""

    # No index of its own: each rollup's unique key leads with the app.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_index=False)
    # One of ROLLUP_DIMENSIONS.
    dimension = models.CharField(max_length=16)
    # Plain values are at most 200 characters, segmented ones at most 400 (telemetry.rollups.PART_LENGTHS).
    value = models.CharField(max_length=400)
    events = models.BigIntegerField(default=0)
    succeeded = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    timed = models.BigIntegerField(default=0)
    duration_ms_sum = models.BigIntegerField(default=0)  # whole milliseconds: sums stay exact

    class Meta:
        abstract = True


class HourlyRollup(RollupCounts):
    """Stored events of one app in one UTC hour, counted per value of one dimension.

    Kept in step with the events table by telemetry.rollups: ingest adds the
    rows a batch really inserted (duplicates are not counted), deletions
    subtract what they removed, and `rebuild_rollups` recomputes it all from
    raw events."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            # The upsert's conflict target, and the index every analytics read
            # uses: one app's rows of one dimension in an hour range. Leads with
            # the app (sharding).
            models.UniqueConstraint(fields=["app", "dimension", "hour", "value"], name="rollup_key"),
        ]

    def __str__(self) -> str:
        return f"{self.events} events for app #{self.app_id} at {self.hour:%Y-%m-%d %H}h, {self.dimension}={self.value!r}"


class DailyActor(models.Model):
    """That a user (kind 'u') or session (kind 's') sent at least one stored
    event to an app on a UTC day: distinct users and sessions are counted from
    here rather than from raw events."""

    # No index of its own: the unique key below leads with the app.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=1)
    actor = models.CharField(max_length=200)

    class Meta:
        constraints = [
            # ON CONFLICT DO NOTHING target; also serves "distinct actors of an app in a day range".
            models.UniqueConstraint(fields=["app", "kind", "day", "actor"], name="actor_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.actor} on {self.day} for app #{self.app_id}"


class UserDay(models.Model):
    """That a user sent at least one stored event to an app on a UTC day, with
    this version, OS, OS version, arch and CI setting (a user who upgraded that
    day has two rows). Written with the events by telemetry.storage, like
    DailyActor: the releases, retention and platform pages count users from
    here, filtered by the filter bar's fields. Column names follow Event's."""

    # No index of its own: the unique key below leads with the app.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_index=False)
    day = models.DateField()
    user_id = models.CharField(max_length=200)
    service_version = models.CharField(max_length=100)
    os = models.CharField(max_length=100)
    os_version = models.CharField(max_length=100, blank=True)
    arch = models.CharField(max_length=100, blank=True)
    # "true", "false" or "" (unknown): text, so the unique key below holds it without NULL semantics.
    ci = models.CharField(max_length=5, blank=True)

    class Meta:
        constraints = [
            # ON CONFLICT DO NOTHING target; also serves "an app's users in a day range".
            models.UniqueConstraint(
                fields=["app", "day", "user_id", "service_version", "os", "os_version", "arch", "ci"],
                name="user_day_once",
            ),
        ]
        indexes = [
            # Retention's "first seen" of every user of an app: (app, user, day) without sorting.
            models.Index(fields=["app", "user_id", "day"], name="user_day_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.day} ({self.service_version}) for app #{self.app_id}"


class DailySketch(models.Model):
    """A HyperLogLog sketch of an app's users (kind 'u') or sessions ('s') on
    one UTC day, built from its DailyActor rows (telemetry.sketches).

    Distinct counts over long ranges of large apps are merged from these
    instead of counting millions of DailyActor rows. A sketch is a cache: it
    records the day's stored events when it was built, is rebuilt when that
    number has changed, and is deleted with the events it summarises."""

    # No index of its own: the unique key below leads with the app.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_index=False)
    day = models.DateField()
    kind = models.CharField(max_length=1)
    actors = models.PositiveIntegerField(help_text="DailyActor rows summarised: the exact count that day.")
    events = models.BigIntegerField(help_text="The day's stored events when built; another number now means stale.")
    sketch = models.BinaryField()
    built_at = models.DateTimeField()

    class Meta:
        constraints = [
            # The build's upsert target and the range read's index; leads with the app (sharding).
            models.UniqueConstraint(fields=["app", "kind", "day"], name="sketch_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"sketch of {self.actors} {self.kind} on {self.day} for app #{self.app_id}"


class DailyRollup(RollupCounts):
    """HourlyRollup summed per UTC day, for the closed days of long ranges
    (telemetry.daily): a 90-day range reads 90 rows per value instead of 2,160.

    A cache of HourlyRollup, never written by ingest: a day is built once it
    is over, rebuilt when its hourly total no longer matches its `total` row
    (late events), and deleted with the events it summarises."""

    day = models.DateField()

    class Meta:
        constraints = [
            # The build's upsert target and the index of every read, like HourlyRollup's rollup_key.
            models.UniqueConstraint(fields=["app", "dimension", "day", "value"], name="daily_rollup_key"),
        ]

    def __str__(self) -> str:
        return f"{self.events} events for app #{self.app_id} on {self.day}, {self.dimension}={self.value!r}"


class EventKey(models.Model):
    """That an app has stored an event with this id: the idempotency key of
    ingest (docs/storage.md, Idempotency). One row per stored event, written
    and deleted with it by telemetry.storage; the timestamp is the event's, so
    dropping a time partition drops its keys too."""

    pk = models.CompositePrimaryKey("app_id", "event_id")
    # No database foreign key (a check per stored event for nothing) and no index of
    # its own (the primary key leads with the app). telemetry.storage deletes an
    # app's keys with its events; CASCADE covers deletions through the ORM.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_constraint=False, db_index=False)
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()

    # On PostgreSQL a BRIN index on the timestamp (migration 0011) finds the keys
    # of a dropped time partition: keys arrive roughly in time order, and it
    # costs next to nothing per insert. SQLite has no partitions to drop.

    def __str__(self) -> str:
        return f"key {self.event_id} of app #{self.app_id}"


class RollupDelta(RollupCounts):
    """What a batch (or a deletion) adds to HourlyRollup, appended and not yet folded in.

    Ingest appends one row per hour, dimension and value a batch touched, with
    no conflict and no lock on shared rows; deletions append negative rows.
    telemetry.storage.fold_rollup_deltas moves them into HourlyRollup every few
    seconds, and every read goes through HourlyCounts, which adds the rows not
    folded yet, so figures are exact at every moment (docs/storage.md, Rollups)."""

    hour = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            # HourlyCounts' reads of the unfolded tail: one app's rows of a dimension in an hour range.
            models.Index(fields=["app", "dimension", "hour"], name="rollupdelta_key"),
        ]

    def __str__(self) -> str:
        return f"{self.events:+d} events for app #{self.app_id} at {self.hour:%Y-%m-%d %H}h, {self.dimension}={self.value!r}"


class HourlyCounts(RollupCounts):
    """HourlyRollup plus the RollupDelta rows not folded into it yet: a database
    view (migration 0011), read-only. A key can appear more than once, so read
    it only through sums. Every read of hourly figures goes through here."""

    id = models.BigIntegerField(primary_key=True)  # not unique across the two tables: never fetch instances
    app = models.ForeignKey(App, models.DO_NOTHING, related_name="+", db_constraint=False)
    hour = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "telemetry_hourlycounts"

    def __str__(self) -> str:
        return f"{self.events} events for app #{self.app_id} at {self.hour:%Y-%m-%d %H}h, {self.dimension}={self.value!r}"


# --- Background jobs (telemetry.scheduler) -------------------------------------------


class ScheduledJob(models.Model):
    """One periodic job's lease and the record of its last run (telemetry.scheduler).

    A runner takes a run with one conditional UPDATE of this row (due, and no
    live lease), so of several runners exactly one gets each run, on SQLite and
    PostgreSQL alike, and through PgBouncer: no session state, no advisory lock."""

    name = models.CharField(max_length=100, primary_key=True)
    lease_owner = models.CharField(max_length=200, blank=True, help_text="host:pid:claim of the runner holding the lease.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="Past this, another runner may take the job.")
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_duration = models.DurationField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, help_text="Exception type and first line; empty after a success.")
    runs = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"job {self.name}"


# --- Property summaries (telemetry.properties, docs/insights.md "Properties") ----------


class PropertyBlock(models.Model):
    """The summary of one app's events' `data` over one UTC day (span "d") or
    hour ("h"), built from raw events by telemetry.property_summaries; its
    figures are the PropertyType, PropertyKey and PropertySplit rows.

    A cache of the raw events, never written by ingest: it records how many
    events its span had when built, is rebuilt when the hourly counts say
    that number changed (late events), and is deleted with any event of its
    day (telemetry.storage)."""

    DAY, HOUR = "d", "h"

    # No index of its own: the unique key below leads with the app.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_index=False)
    span = models.CharField(max_length=1)
    start = models.DateTimeField()
    events = models.BigIntegerField(help_text="Events of the span summarised (every type).")
    folded_events = models.BigIntegerField(
        default=0, help_text="Events of version/OS/arch/CI combinations past the cap: in unfiltered figures only."
    )
    other_type_events = models.BigIntegerField(default=0, help_text="Events of event types past the cap: in no figure.")
    built_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One summary per span; the build's replace target and every read's index.
            models.UniqueConstraint(fields=["app", "span", "start"], name="property_block_once"),
        ]

    def __str__(self) -> str:
        return f"properties of app #{self.app_id}, {self.span} {self.start:%Y-%m-%d %H}h ({self.events} events)"


class PropertyScope(models.Model):
    """Which events of a block a figure counts: all of them (`whole`), or one
    version/OS/arch/CI combination (columns named like Event's and UserDay's,
    so dashboard.filters.Filters.q(ci_as_text=True) selects them)."""

    # No index of its own: the child tables' indexes lead with the app.
    app = models.ForeignKey(App, cascade_on_same_server, related_name="+", db_index=False)
    # DO_NOTHING: telemetry.storage deletes a block's rows itself, through their
    # (app, block) indexes, before the block (an ORM cascade would look them up by block alone).
    block = models.ForeignKey(PropertyBlock, models.DO_NOTHING, related_name="+", db_index=False)
    whole = models.BooleanField()
    service_version = models.CharField(max_length=100, blank=True)
    os = models.CharField(max_length=100, blank=True)
    arch = models.CharField(max_length=100, blank=True)
    ci = models.CharField(max_length=5, blank=True)  # "true", "false" or ""
    event_type = models.CharField(max_length=200)

    class Meta:
        abstract = True


class PropertyType(PropertyScope):
    """Events of one type in a block's scope: the denominator of coverage."""

    events = models.BigIntegerField()
    keys_seen = models.IntegerField(default=0, help_text="Distinct keys seen (whole scope); more than kept: a cap was hit.")
    keys_kept = models.IntegerField(default=0)

    class Meta:
        indexes = [
            # A range's blocks, whole or filtered (whole=false, then the filters), one type or all.
            models.Index(fields=["app", "block", "event_type", "whole"], name="property_type_read"),
        ]

    def __str__(self) -> str:
        return f"{self.events} {self.event_type} events in block #{self.block_id}"


class PropertyKey(PropertyScope):
    """Events of one type in a block's scope whose data has the key with values of one JSON type."""

    # A path (telemetry.properties: a name, or parent SEP child; names at most 101 characters).
    path = models.CharField(max_length=210)
    json_type = models.CharField(max_length=7)
    events = models.BigIntegerField()
    number_sum = models.TextField(blank=True, help_text="Numbers: their exact sum, as decimal text.")
    histogram = models.JSONField(default=dict, help_text="Numbers: {bucket: events} (telemetry.properties.number_bucket).")
    values = models.JSONField(default=dict, help_text="Strings and booleans: {value: events} of the values kept.")
    other_values = models.BigIntegerField(default=0, help_text="Strings whose value was past the cap.")
    long_values = models.BigIntegerField(default=0, help_text="Strings cut to the value length cap.")

    class Meta:
        indexes = [
            # One type's keys in a range's blocks, whole or filtered (and one key of it).
            models.Index(fields=["app", "block", "event_type", "whole", "path"], name="property_key_read"),
        ]

    def __str__(self) -> str:
        return f"{self.events} {self.event_type} events with {self.path!r} ({self.json_type}) in block #{self.block_id}"


class PropertySplit(PropertyScope):
    """A number key's figures per value of a string key with few values, in a block's scope."""

    number_path = models.CharField(max_length=210)
    split_path = models.CharField(max_length=210)
    # [[value or null, events, exact sum text, {bucket: events}], ...]; null: the split key missing or not a string.
    values = models.JSONField(default=list)

    class Meta:
        indexes = [
            # A number key's splits in a range's blocks.
            models.Index(fields=["app", "block", "event_type", "whole", "number_path"], name="property_split_read"),
        ]

    def __str__(self) -> str:
        return f"{self.number_path!r} by {self.split_path!r} of {self.event_type} in block #{self.block_id}"
