from django.core.management.base import BaseCommand, CommandError

from faults.errors import FaultInjectionOff
from faults.models import STEPS
from faults.selectors import active_rules, fault_injection_allowed, stored_rules
from faults.services import clear_faults, set_fault


class Command(BaseCommand):
    help = (
        "Switch faults on and off while the shop runs: every process applies a change within 2 s. "
        "Refused (exit 1) unless DEBUG is on or MALL_ALLOW_FAULT_INJECTION=1."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        set_parser = actions.add_parser("set", help="switch a fault on for one step (replaces its rule)")
        set_parser.add_argument("step", choices=STEPS)
        kind = set_parser.add_mutually_exclusive_group(required=True)
        kind.add_argument("--error", action="store_true", help="the step fails (503 for a checkout)")
        kind.add_argument("--delay-ms", type=int, metavar="N", help="the step sleeps N ms inside its span")
        kind.add_argument("--hold-ms", type=int, metavar="N", help="the step keeps its row locks N ms longer")
        set_parser.add_argument("--rate", type=int, default=100, metavar="PERCENT", help="share of calls hit")
        set_parser.add_argument("--for", dest="for_seconds", type=float, metavar="SECONDS", help="expires after")
        actions.add_parser("list", help="print the rules in force")
        clear_parser = actions.add_parser("clear", help="switch off one step's rule, or all of them")
        clear_parser.add_argument("step", nargs="?", choices=STEPS)

    def handle(self, *args, action, **options):
        if action == "set":
            self._set(**options)
        elif action == "clear":
            removed = clear_faults(step=options["step"])
            self.stdout.write(f"cleared {removed} rule(s)")
        else:
            self._list()

    def _set(self, *, step, error, delay_ms, hold_ms, rate, for_seconds, **_):
        kind, milliseconds = (
            ("error", 0) if error else ("delay", delay_ms) if delay_ms is not None else ("hold", hold_ms)
        )
        try:
            rule = set_fault(step=step, kind=kind, milliseconds=milliseconds, rate=rate, for_seconds=for_seconds)
        except FaultInjectionOff as off:
            raise CommandError(f"refused: {off.detail}") from off
        except ValueError as invalid:
            raise CommandError(str(invalid)) from invalid
        until = f" until {rule.expires_at:%H:%M:%S} UTC" if rule.expires_at else ""
        self.stdout.write(f"set {rule}{until} (every process within 2 s)")

    def _list(self):
        if not fault_injection_allowed():
            ignored = len(stored_rules())
            self.stdout.write(
                f"fault injection is off (DEBUG off, no MALL_ALLOW_FAULT_INJECTION): {ignored} stored rule(s) ignored"
            )
            return
        rules = active_rules()
        if not rules:
            self.stdout.write("no fault rules")
        for rule in rules:
            until = f" until {rule.expires_at:%H:%M:%S} UTC" if rule.expires_at else ""
            origin = " (CHECKOUT_FAIL_STEP)" if rule.source == "CHECKOUT_FAIL_STEP" else ""
            self.stdout.write(f"{rule}{until}{origin}")
