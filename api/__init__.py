"""The HTTP API (FastAPI): thin routes over the front door (ledger.app.Ledger), the typed
reads (ledger.reads, ledger.public) and the one read-scope check (ledger.access).

No SQL and no rules here. Every error is an ``AllianceError`` turned into RFC 9457
problem+json by one handler (api.problems), with the status its class declares.
"""
