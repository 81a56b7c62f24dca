"""A region's own programs: its endorsement node and its witness.

They run on the region's machines, hold only the region's keys, and talk to the log
through ``nodes.client.LogClient`` (in-process now, HTTP with the API). They trust the log
key and witness keys of ``trust.json``, the leaves they verified against a checkpoint
signed by that key, and the keys those leaves declared: never the server's tables.
"""
