"""`alliance bench`: the append benchmark (``append``) and the proof benchmark (``proofs``)."""
