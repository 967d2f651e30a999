from django.core.management.base import BaseCommand

from streams.broadcast.poller import listeners_poll


class Command(BaseCommand):
    help = (
        "Poll every Icecast/Shoutcast encoder once (the 30 s beat job): listener snapshots, "
        "listener sessions, plays from title changes and the stream_down alert."
    )

    def handle(self, *args, **options):
        summary = listeners_poll()
        if summary.skipped:
            self.stdout.write(self.style.WARNING(f"Skipped: {summary.skipped}."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Polled {summary.encoders} encoders in {summary.seconds:.2f} s: "
                f"{summary.sources_up} sources up, {summary.failures} servers failing, "
                f"{summary.listeners} listeners; {summary.sessions_started} listener sessions "
                f"started; {summary.plays_started} plays started, {summary.plays_ended} ended; "
                f"{summary.alerts_opened} alerts opened, {summary.alerts_resolved} resolved."
            )
        )
