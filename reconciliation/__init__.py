"""Nightly reconciliation (DESIGN §5, issue 8): the pure core, no I/O.

* ``reconciliation.netting``: ``Obligation``, ``positions()``, ``instructions()`` (the
  deterministic greedy), ``payment_reference()`` / ``check_reference()``.
* ``reconciliation.report``: ``build_report()``, ``report_bytes()`` (the stored JCS
  report), ``closed_body()`` (the body of ``reconciliation.closed``, with three RFC 6962
  roots), ``instruction_proof()`` / ``instruction_proofs()`` and
  ``verify_instruction()``.
* ``reconciliation.bench``: the synthetic night and raw baseline of
  ``alliance bench reconcile``.

Which obligations are eligible, the cutoff, and writing the entry and the report belong
to the ledger; docs/PROTOCOL.md §5 states every byte this package produces.
"""
