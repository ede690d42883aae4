from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from organizations.models import App
from telemetry import lifecycle


class Command(BaseCommand):
    help = (
        "Write an app's events in a date range as CSV or JSON Lines, in constant memory. "
        "Dates are whole UTC days, both included; RFC 3339 times are exact (--to excluded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_id", help="The app's public id (app_…).")
        parser.add_argument("--from", dest="first", help="First day (2026-11-01) or time; default: the oldest event.")
        parser.add_argument("--to", dest="last", help="Last day included (2026-11-30) or end time; default: now.")
        parser.add_argument("--format", choices=sorted(lifecycle.EXPORT_FORMATS), default="jsonl")
        parser.add_argument("--output", "-o", help="File to write; default: standard output.")
        parser.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")

    def handle(self, *, app_id: str, first, last, format: str, output, no_progress: bool, **options) -> str:
        app = App.objects.select_related("organization").filter(public_id=app_id).first()
        if app is None:
            raise CommandError(f"No app with id {app_id!r}.")
        try:
            time_range = lifecycle.parse_time_range(first, last)
        except lifecycle.LifecycleError as exc:
            raise CommandError(str(exc)) from None
        export_format = lifecycle.EXPORT_FORMATS[format]

        # The data owns stdout when no file is given, so progress goes to stderr.
        progress_stream = self.stderr if output is None else self.stdout
        total = lifecycle.count_events(app, time_range)
        bar = tqdm(
            total=total,
            unit=" events",
            file=progress_stream._out,  # the raw stream: OutputWrapper adds a newline to every write
            disable=no_progress,
            mininterval=0.5,
        )
        exported = 0

        def on_page(rows: int) -> None:
            nonlocal exported
            exported += rows
            bar.update(rows)

        lifecycle.record_export(app, time_range, export_format=export_format, via="command")
        try:
            with _binary_sink(output, self.stdout._out) as sink:
                for chunk in lifecycle.export_events(app, time_range, export_format=export_format, on_page=on_page):
                    sink.write(chunk)
        except OSError as exc:
            raise CommandError(f"Could not write {output or 'the output'}: {exc.strerror or exc}") from None
        finally:
            bar.close()
        summary = f"Exported {exported} events of {app.public_id} ({time_range.label()}) as {export_format.name}"
        if output is None:
            self.stderr.write(summary + ".")
            return ""
        return f"{summary} to {output}."


@contextmanager
def _binary_sink(path: str | None, stdout):
    """The named file, or standard output's bytes (a text stream, as in tests, gets decoded text)."""
    if path is not None:
        with open(path, "wb") as file:
            yield file
        return
    buffer = getattr(stdout, "buffer", None)
    if buffer is None:
        yield _TextSink(stdout)
        return
    yield buffer
    buffer.flush()


class _TextSink:
    def __init__(self, stream):
        self.stream = stream

    def write(self, chunk: bytes) -> None:
        self.stream.write(chunk.decode())
