"""Entry kinds. Importing this package registers every kind's handler with ledger.state."""

from ledger.kinds import credit, members, money, regions, settlement  # noqa: F401
