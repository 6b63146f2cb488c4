"""``manage.py check_stock``: verify the stock ledger and the orders against it; exit 1 on any problem."""

from django.core.management.base import BaseCommand, CommandError

from orders.invariants import check_invariants


class Command(BaseCommand):
    help = (
        "Check the shop's invariants: stock == Σ adjust + Σ return − Σ sell per goods, order lines == sell "
        "moves, one return per line of closed/cancelled orders and none for pending/paid ones. "
        "Prints every problem and exits non-zero when there is any."
    )

    def handle(self, *args, **options):
        problems = check_invariants()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} invariant violation(s)", returncode=1)
        self.stdout.write(self.style.SUCCESS("stock ledger and orders are consistent"))
