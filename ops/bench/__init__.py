"""`alliance bench`: append throughput (``append``), proof latency (``proofs``) and the
writer's memory (``memory``); each report carries the machine and date it ran on
(``machine``)."""
