"""Release health: each version's commands, how often they fail, how long they take, and regressions.

Every figure is read from the segmented rollups (telemetry.rollups: `cmd`,
`cmd_exit`, `cmd_duration`, `cmd_flag`, `version_duration`) through
dashboard.segments, under the filter bar's OS, arch and CI filters. The
version filter picks which versions are shown; their comparisons still look
at the previous version (docs/insights.md, "Release health").

- A run is a `command_execution` event. The failure rate is failed runs over
  runs whose data says `success` true or false; runs without it are left
  out of the rate (they still count as runs).
- p50 and p90 are nearest-rank percentiles of `duration_ms`, read from the
  rollups' duration histogram (dashboard.stats.histogram_percentiles): the
  middle of the bucket holding that rank, within half a bucket's width of
  the exact value (exact below 6 ms, within about 12 % above 10 ms).
- A command regresses in a version when, against the previous version that
  ran it, it fails significantly more often (one-sided two-proportion
  z-test) or runs significantly slower (one-sided Mann–Whitney U test on the
  duration histograms, bucket by bucket, ties counted as such), with the
  minimum samples and effects below. The p50s compared for the minimum
  slowdown are the ones shown, the middles of their buckets.

Reads of closed days are kept in Django's cache under the version of the
daily rollups they came from (dashboard.stats.rollup_version, carried by the
period prepared by stats.with_daily_rollups), so a long range reads only its
current day from the database once its closed days have been read.
Times are UTC.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from django.db.models import Sum

from dashboard import segments, stats, versions
from dashboard.filters import Filters
from telemetry import replicas, rollups
from telemetry.periods import UTC

# --- What counts as a regression (docs/insights.md, "Release health") ---------------------

SIGNIFICANCE = 0.01  # one-sided p-value below which a difference is significant
MIN_RUNS = 30  # runs with an outcome (failures) or with a duration (slowness), in each version
MIN_FAILURE_RISE = 2  # percentage points the failure rate must rise by
MIN_SLOWDOWN = Fraction(1, 5)  # the p50 shown must grow by at least 20 %

PERCENTILES = (0.5, 0.9)
TOP_EXIT_CODES = 3  # exit codes listed per command and version on the release health page
SHOWN_VERSIONS = 10  # newest versions on the release health page (the version filter shows any other)
SHOWN_COMMANDS = 50  # commands per version on it, most run first (regressed ones always shown)
SHOWN_FLAGS = 50  # flags on a command's page, most used first


# --- Statistics --------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    z: float
    p_value: float  # one-sided: the chance of a difference this large in this direction if there were none

    @property
    def p_text(self) -> str:
        return "p < 0.0001" if self.p_value < 0.0001 else f"p = {self.p_value:.4f}"


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def two_proportion_test(failed_new: int, n_new: int, failed_old: int, n_old: int) -> TestResult:
    """One-sided two-proportion z-test (pooled variance) that the new failure share is higher."""
    if not n_new or not n_old:
        return TestResult(z=0.0, p_value=1.0)
    pooled = (failed_new + failed_old) / (n_new + n_old)
    variance = pooled * (1 - pooled) * (1 / n_new + 1 / n_old)
    if variance <= 0:  # nothing failed, or everything did: the two cannot differ
        return TestResult(z=0.0, p_value=1.0)
    z = (failed_new / n_new - failed_old / n_old) / math.sqrt(variance)
    return TestResult(z=z, p_value=normal_sf(z))


def rank_sum_test(new: Mapping[int, int], old: Mapping[int, int]) -> TestResult:
    """One-sided Mann–Whitney U test that durations in `new` tend to be longer than in `old`.

    Both are histograms ({bucket index: runs}); the runs of one bucket are
    ties (their order within the bucket is unknown), so U counts the pairs
    where the new run is in a higher bucket plus half the pairs in the same
    bucket. Normal approximation with the tie-corrected variance and a
    continuity correction of 1/2."""
    n1, n2 = sum(new.values()), sum(old.values())
    n = n1 + n2
    twice_u, below, ties = 0, 0, 0
    for bucket in sorted(set(new) | set(old)):
        a, b = new.get(bucket, 0), old.get(bucket, 0)
        twice_u += a * (2 * below + b)
        below += b
        ties += (a + b) ** 3 - (a + b)
    if not n1 or not n2:
        return TestResult(z=0.0, p_value=1.0)
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:  # every run in one bucket: no order to test
        return TestResult(z=0.0, p_value=1.0)
    z = (twice_u / 2 - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return TestResult(z=z, p_value=normal_sf(z))


# --- Figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    runs: int
    succeeded: int
    failed: int

    @property
    def with_outcome(self) -> int:
        """Runs whose data says `success` true or false: the failure rate's denominator."""
        return self.succeeded + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Percent of runs with an outcome that failed; None when none reported one."""
        return self.failed * 100 / self.with_outcome if self.with_outcome else None


@dataclass(frozen=True)
class Durations:
    histogram: dict[int, int]  # duration bucket (telemetry.rollups) -> timed runs
    timed: int
    p50: stats.BucketPercentile | None
    p90: stats.BucketPercentile | None


def durations_of(histogram: Mapping[int, int]) -> Durations:
    kept = {bucket: n for bucket, n in histogram.items() if n > 0}
    p50, p90 = stats.histogram_percentiles(kept, PERCENTILES)
    return Durations(histogram=kept, timed=sum(kept.values()), p50=p50, p90=p90)


NO_OUTCOMES = Outcomes(0, 0, 0)
NO_DURATIONS = Durations(histogram={}, timed=0, p50=None, p90=None)


@dataclass(frozen=True)
class Regression:
    kind: str  # "failures" or "duration"
    previous_version: str
    before: float  # the previous version's failure rate (%) or p50 (ms)
    after: float  # this version's
    test: TestResult

    @property
    def failures(self) -> bool:
        return self.kind == "failures"


@dataclass(frozen=True)
class Comparison:
    """A command in one version against the previous version that ran it."""

    previous_version: str | None
    regressions: tuple[Regression, ...] = ()
    # Why a test was not made ("failures: fewer than 30 runs reporting success in 1.2.0").
    not_tested: tuple[str, ...] = ()


def compare(
    *, outcomes: Outcomes, durations: Durations, previous_version: str | None,
    previous_outcomes: Outcomes, previous_durations: Durations,
) -> Comparison:  # fmt: skip
    """Whether the command regressed against the previous version (the module's docstring says how)."""
    if previous_version is None:
        return Comparison(previous_version=None)
    found, skipped = [], []
    new, old = outcomes, previous_outcomes
    if new.with_outcome >= MIN_RUNS and old.with_outcome >= MIN_RUNS:
        test = two_proportion_test(new.failed, new.with_outcome, old.failed, old.with_outcome)
        # The rise in percentage points, compared exactly: 100 (f1/n1 - f0/n0) >= MIN_FAILURE_RISE.
        rise = 100 * (new.failed * old.with_outcome - old.failed * new.with_outcome)
        if test.p_value < SIGNIFICANCE and rise >= MIN_FAILURE_RISE * new.with_outcome * old.with_outcome:
            found.append(Regression("failures", previous_version, old.failure_rate, new.failure_rate, test))
    else:
        skipped.append(f"failures: fewer than {MIN_RUNS} runs reporting success in {_fewer(new.with_outcome, old.with_outcome, previous_version)}")
    new_d, old_d = durations, previous_durations
    if new_d.timed >= MIN_RUNS and old_d.timed >= MIN_RUNS:
        test = rank_sum_test(new_d.histogram, old_d.histogram)
        # The p50s as the page shows them (the middle of their bucket), compared exactly.
        after, before = Fraction(new_d.p50.value), Fraction(old_d.p50.value)
        if test.p_value < SIGNIFICANCE and after > before and after >= before * (1 + MIN_SLOWDOWN):
            found.append(Regression("duration", previous_version, old_d.p50.value, new_d.p50.value, test))
    else:
        skipped.append(f"durations: fewer than {MIN_RUNS} timed runs in {_fewer(new_d.timed, old_d.timed, previous_version)}")
    return Comparison(previous_version=previous_version, regressions=tuple(found), not_tested=tuple(skipped))


def _fewer(new: int, old: int, previous_version: str) -> str:
    if new < MIN_RUNS and old < MIN_RUNS:
        return f"this version and {previous_version}"
    return "this version" if new < MIN_RUNS else previous_version


# --- Reading the rollups -----------------------------------------------------------------

def _newest_first(app_ids: Sequence[int], names: set[str]) -> list[str]:
    """Versions newest first (dashboard.versions); versions that do not parse are
    placed by when they were first seen, which is read only when there are any."""
    far = datetime.max.replace(tzinfo=UTC)
    first_seen = dict.fromkeys(names, far)
    unparsed = [name for name in names if versions.parse(name) is None]
    if unparsed:
        # Hours with events of these versions, over everything kept (the hourly counts'
        # deltas can sum an hour to zero after a deletion, so sum before taking the first).
        hours = (
            stats._hourly_rollups(app_ids).filter(dimension="version", value__in=unparsed)
            .values("value", "hour").annotate(n=Sum("events")).filter(n__gt=0).order_by()
            .values_list("value", "hour")
        )  # fmt: skip
        sql, params = hours.query.sql_with_params()
        # The first per version in the database: a nightly build has a row every hour.
        with replicas.read_connection(hours.model).cursor() as cursor:
            cursor.execute(f"SELECT value, min(hour) FROM ({sql}) AS hours GROUP BY value", params)
            for value, hour in cursor.fetchall():
                first_seen[value] = min(first_seen[value], segments.as_datetime(hour))
    return versions.newest_first(first_seen)


# --- Release health ------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandHealth:
    command: str  # as the rollups keep it ("" for runs without a name)
    version: str
    outcomes: Outcomes
    durations: Durations
    exit_codes: tuple[tuple[str, int], ...]  # the most frequent integer exit codes with their runs
    other_exit_codes: int  # runs with another integer exit code
    comparison: Comparison

    @property
    def regressed(self) -> bool:
        return bool(self.comparison.regressions)


@dataclass(frozen=True)
class VersionHealth:
    version: str
    runs: int
    commands: list[CommandHealth]  # shown: most run first, regressed ones always
    hidden_commands: int
    hidden_runs: int
    regressions: list[CommandHealth]


@dataclass(frozen=True)
class ReleaseHealth:
    versions: list[VersionHealth]  # newest first
    hidden_versions: int  # older versions with runs, not shown
    runs: int  # command runs of every version under the filters

    @property
    def empty(self) -> bool:
        return not self.runs


def release_health(
    app_ids: Sequence[int], *, period: stats.Period, filters: Filters = Filters(), exit_codes: bool = True,
    newest_only: bool = False,
) -> ReleaseHealth:  # fmt: skip
    """Each version's commands with runs, failure rate, p50/p90 and exit codes, and
    their regressions against the previous version that ran them."""
    others = filters.without("version")
    runs = segments.sums(app_ids, period, "cmd", ("version", "command"), filters=others)
    if not runs:
        return ReleaseHealth(versions=[], hidden_versions=0, runs=0)
    if others.active:
        timed = segments.sums(app_ids, period, "cmd_duration", ("version", "command", "bucket"), filters=others)
    else:
        # The same counts, from a dimension kept unfiltered because cmd_duration is large.
        timed = segments.sums(app_ids, period, "version_duration", ("version", "command", "bucket"))
    exits = segments.sums(app_ids, period, "cmd_exit", ("version", "command", "exit_code"), filters=others) if exit_codes else {}

    histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for (version, command, bucket), (n, _, _) in timed.items():
        histograms[(version, command)][int(bucket)] = n
    codes: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for (version, command, code), (n, _, _) in exits.items():
        if code and n > 0:
            codes[(version, command)].append((code, n))
    order = _newest_first(app_ids, {version for version, _ in runs})
    commands_of: dict[str, list[str]] = defaultdict(list)
    for version, command in runs:
        commands_of[version].append(command)

    wanted = _wanted_versions(order, filters, newest_only=newest_only)
    # The previous version of each (version, command): the next older version that ran it.
    previous: dict[tuple[str, str], str | None] = {}
    last_seen: dict[str, str] = {}
    for version in reversed(order):
        for command in commands_of[version]:
            previous[(version, command)] = last_seen.get(command)
            last_seen[command] = version

    def outcomes(version: str, command: str) -> Outcomes:
        numbers = runs.get((version, command))
        return Outcomes(*numbers) if numbers else NO_OUTCOMES

    shown = []
    for version in wanted:
        rows = []
        for command in commands_of[version]:
            before = previous[(version, command)]
            figures = outcomes(version, command)
            durations = durations_of(histograms.get((version, command), {}))
            comparison = compare(
                outcomes=figures, durations=durations, previous_version=before,
                previous_outcomes=outcomes(before, command) if before else NO_OUTCOMES,
                previous_durations=durations_of(histograms.get((before, command), {})) if before else NO_DURATIONS,
            )  # fmt: skip
            top = sorted(codes.get((version, command), []), key=lambda pair: (-pair[1], _code_order(pair[0])))
            rows.append(
                CommandHealth(
                    command=command, version=version, outcomes=figures, durations=durations,
                    exit_codes=tuple(top[:TOP_EXIT_CODES]), other_exit_codes=sum(n for _, n in top[TOP_EXIT_CODES:]),
                    comparison=comparison,
                )  # fmt: skip
            )
        rows.sort(key=lambda row: (-row.outcomes.runs, row.command))
        kept, hidden = [], []
        for index, row in enumerate(rows):
            (kept if index < SHOWN_COMMANDS or row.regressed else hidden).append(row)
        shown.append(
            VersionHealth(
                version=version, runs=sum(row.outcomes.runs for row in rows), commands=kept,
                hidden_commands=len(hidden), hidden_runs=sum(row.outcomes.runs for row in hidden),
                regressions=[row for row in rows if row.regressed],
            )  # fmt: skip
        )
    hidden_versions = 0 if filters.version is not None or newest_only else max(0, len(order) - SHOWN_VERSIONS)
    counted = set(wanted) if filters.version is not None else set(order)
    total = sum(numbers[0] for (version, _), numbers in runs.items() if version in counted)
    return ReleaseHealth(versions=shown, hidden_versions=hidden_versions, runs=total)


def _wanted_versions(order: list[str], filters: Filters, *, newest_only: bool) -> list[str]:
    if filters.version is not None:
        wanted = rollups.part("version", filters.version)
        return [version for version in order if version == wanted]
    return order[:1] if newest_only else order[:SHOWN_VERSIONS]


def _code_order(code: str) -> tuple[int, str]:
    try:
        return (int(code), code)
    except ValueError:
        return (0, code)


@dataclass(frozen=True)
class NewestRegressions:
    version: str | None
    commands: list[CommandHealth]


def newest_regressions(app_ids: Sequence[int], *, period: stats.Period, filters: Filters = Filters()) -> NewestRegressions:
    """The newest version with command runs in the period under the filters (the filtered
    version, with a version filter) and its regressed commands."""
    report = release_health(app_ids, period=period, filters=filters, exit_codes=False, newest_only=True)
    if not report.versions:
        return NewestRegressions(version=None, commands=[])
    newest = report.versions[0]
    return NewestRegressions(version=newest.version, commands=newest.regressions)


# --- One command ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendBucket:
    start: datetime
    outcomes: Outcomes


@dataclass(frozen=True)
class VersionRow:
    version: str
    outcomes: Outcomes
    durations: Durations
    comparison: Comparison


@dataclass(frozen=True)
class PlatformRow:
    os: str
    arch: str
    outcomes: Outcomes
    durations: Durations


@dataclass(frozen=True)
class CountRow:
    value: str
    runs: int
    share: float  # percent of the command's runs under the filters


@dataclass(frozen=True)
class CommandDetail:
    command: str
    outcomes: Outcomes
    durations: Durations
    trend: list[TrendBucket]
    by_version: list[VersionRow]  # newest first
    by_platform: list[PlatformRow]  # most runs first
    exit_codes: list[CountRow]  # most runs first; "" is runs without an integer exit code
    flags: list[CountRow]  # most used first, at most SHOWN_FLAGS
    hidden_flags: int

    @property
    def empty(self) -> bool:
        return not self.outcomes.runs


def command_name(text: str) -> str | None:
    """The command as the rollups keep it (telemetry.rollups.part), or None for text no
    stored command can be (a NUL: ingest refuses it, and PostgreSQL text cannot hold it)."""
    if not text or "\x00" in text:
        return None
    return rollups.part("command", text)


def command_detail(app_ids: Sequence[int], *, period: stats.Period, filters: Filters, command: str) -> CommandDetail:
    """One command under the filters: runs and failures per UTC hour or day, by version
    (with each version's regressions), by OS and arch, exit codes and flags."""
    others = filters.without("version")
    # Each figure is summed by just the parts it shows (CI is filtered as the rows are
    # read and shown nowhere): a few small groupings rather than one by the whole segment.
    # Versions are compared with each other, so they are read under the other filters;
    # the trend and the platforms under every filter.
    by_version_runs = segments.sums(app_ids, period, "cmd", ("version",), filters=others, command=command)
    runs = bool(by_version_runs)
    trend = segments.sums(app_ids, period, "cmd", (), filters=filters, command=command, per_bucket=True) if runs else {}
    platform_runs = segments.sums(app_ids, period, "cmd", ("os", "arch"), filters=filters, command=command) if runs else {}
    version_timed = segments.sums(app_ids, period, "cmd_duration", ("version", "bucket"), filters=others, command=command) if runs else {}
    platform_timed = segments.sums(app_ids, period, "cmd_duration", ("os", "arch", "bucket"), filters=filters, command=command) if runs else {}
    exits = segments.sums(app_ids, period, "cmd_exit", ("exit_code",), filters=filters, command=command) if runs else {}
    flags = segments.sums(app_ids, period, "cmd_flag", ("flag",), filters=filters, command=command) if runs else {}
    version_wanted = None if filters.version is None else rollups.part("version", filters.version)

    def shown(version: str) -> bool:
        return version_wanted is None or version == version_wanted

    per_bucket = {bucket: numbers for (bucket,), numbers in trend.items()}
    per_version = {version: numbers for (version,), numbers in by_version_runs.items()}
    per_platform = {(os, arch): numbers for (os, arch), numbers in platform_runs.items()}
    version_histograms: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for (version, bucket), (n, _, _) in version_timed.items():
        version_histograms[version][int(bucket)] += n
    platform_histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for (os, arch, bucket), (n, _, _) in platform_timed.items():
        platform_histograms[(os, arch)][int(bucket)] += n

    total = Outcomes(*map(sum, zip(*per_platform.values()))) if per_platform else NO_OUTCOMES
    everything: dict[int, int] = defaultdict(int)
    for histogram in platform_histograms.values():
        for bucket, n in histogram.items():
            everything[bucket] += n

    order = _newest_first(app_ids, set(per_version)) if per_version else []
    by_version = []
    for index, version in enumerate(order):
        if not shown(version):
            continue
        before = next((older for older in order[index + 1 :] if per_version[older][0] > 0), None)
        durations = durations_of(version_histograms.get(version, {}))
        by_version.append(
            VersionRow(
                version=version, outcomes=Outcomes(*per_version[version]), durations=durations,
                comparison=compare(
                    outcomes=Outcomes(*per_version[version]), durations=durations, previous_version=before,
                    previous_outcomes=Outcomes(*per_version[before]) if before else NO_OUTCOMES,
                    previous_durations=durations_of(version_histograms.get(before, {})) if before else NO_DURATIONS,
                ),
            )  # fmt: skip
        )
    by_platform = sorted(
        (
            PlatformRow(os=os, arch=arch, outcomes=Outcomes(*numbers), durations=durations_of(platform_histograms.get((os, arch), {})))
            for (os, arch), numbers in per_platform.items()
            if numbers[0] > 0
        ),
        key=lambda row: (-row.outcomes.runs, row.os, row.arch),
    )
    exit_counts = {code: n for (code,), (n, _, _) in exits.items()}
    flag_counts = {flag: n for (flag,), (n, _, _) in flags.items()}
    flag_rows = _count_rows(flag_counts, total.runs)
    return CommandDetail(
        command=command,
        outcomes=total,
        durations=durations_of(everything),
        trend=[TrendBucket(start=start, outcomes=Outcomes(*per_bucket.get(start, (0, 0, 0)))) for start in period.bucket_starts()],
        by_version=by_version,
        by_platform=by_platform,
        exit_codes=_count_rows(exit_counts, total.runs),
        flags=flag_rows[:SHOWN_FLAGS],
        hidden_flags=max(0, len(flag_rows) - SHOWN_FLAGS),
    )


def _count_rows(counts: Mapping[str, int], runs: int) -> list[CountRow]:
    rows = [(value, n) for value, n in counts.items() if n > 0]
    rows.sort(key=lambda pair: (-pair[1], pair[0]))
    return [CountRow(value=value, runs=n, share=n * 100 / runs if runs else 0.0) for value, n in rows]
