"""Proofs served from the database (Ledger.inclusion / consistency, issue 11): every tile
read probes the primary key on both backends, and what the ledger remembers between
proofs is only what it verified itself, so planted or altered rows are still caught."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text

from ledger import merkle, store
from ledger.app import Ledger
from ledger.maintenance import unguarded
from schemas.errors import NotFoundError, TamperedError
from signing.keys import b64encode
from tests.conftest import Alliance
from tests.dbtools import snapshot
from tests.ledger.test_trust import _insert_leaf, _leaf_of, _merchants

KEYS = 3  # tiles a statement asks for in the plan tests


def _plans(engine: Engine) -> list[str]:
    """The query plan of each statement DbTiles sends, one string each."""
    dialect = engine.dialect.name
    statements = [
        store.keyed_sql(dialect, "merkle_tiles", KEYS),
        store.keyed_sql(dialect, "merkle_tile_nodes", KEYS),
        store.proof_sql(dialect, KEYS),
        store.LEAF_SQL[dialect],
    ]
    keys = [(0, 0), (0, 1), (1, 0)]
    plans = []
    with engine.connect() as connection:
        for statement in statements:
            if dialect == "postgresql":
                flat: list[object] = [part for key in keys for part in key]
                copies = 2 if "UNION ALL" in statement else 1
                params = [7] if "log_entries" in statement else flat * copies
                rows = store.driver_rows(connection, "EXPLAIN " + statement, params)
            else:
                params = [str(keys).replace("(", "[").replace(")", "]")]
                if "log_entries" in statement:
                    params = ["7"]
                rows = store.driver_rows(connection, "EXPLAIN QUERY PLAN " + statement, params)
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def test_tile_and_leaf_reads_probe_the_primary_key(engine: Engine) -> None:
    """A full scan of merkle_tiles was issue 11's 4 ms a proof: each key must be one
    probe of the primary key (the planner's choice, read back with EXPLAIN)."""
    for plan in _plans(engine)[:-1]:
        if engine.dialect.name == "postgresql":
            assert "Seq Scan" not in plan and "Hash Join" not in plan, plan
            assert "merkle_tiles_pkey" in plan or "merkle_tile_nodes_pkey" in plan, plan
        else:
            scans = [line for line in plan.splitlines() if "SCAN" in line]
            assert all("VIRTUAL TABLE" in line for line in scans), plan  # the keys' JSON
            assert "USING INDEX sqlite_autoindex_merkle_tile" in plan, plan
    if engine.dialect.name == "postgresql":
        assert "log_entries_pkey" in _plans(engine)[-1]
    else:
        assert "SEARCH log_entries USING INDEX" in _plans(engine)[-1]


def _reader(alliance: Alliance) -> Ledger:
    """A read-only ledger, as the API or a replica holds one across requests."""
    return Ledger(alliance.engine, None, alliance.clock)


def test_a_planted_checkpoint_row_is_checked_not_remembered(alliance: Alliance) -> None:
    """The reader verified the genuine checkpoint and serves proofs from its memory of
    that verdict; a newer row planted with a bad signature (over a planted leaf with its
    tile) is read, checked and passed over on the next proof, never served."""
    _merchants(alliance)
    reader = _reader(alliance)
    genuine = reader.signed_checkpoint()
    first = reader.inclusion(1)
    assert reader.inclusion(1) == first  # the second one from the remembered verdict
    assert reader.consistency(1, genuine.size) == reader.consistency(1, genuine.size)
    leaf = reader.leaves(1, 2)[0]
    merkle.verify_inclusion(merkle.leaf_hash(leaf), 1, genuine.size, first.hashes, genuine.root)
    head = snapshot(alliance.engine).head
    _insert_leaf(alliance, _leaf_of(alliance, head, alliance.enroll_doc()), with_tile=True)
    with alliance.engine.begin() as connection:
        planted_root = merkle.root(head + 1, store.DbTiles(connection))
        body, signature = genuine.note.split("\n\n", 1)
        origin = body.split("\n")[0]
        line = signature.split("\n")[0]  # the operator's, over another body
        note = f"{origin}\n{head + 1}\n{b64encode(planted_root)}\n\n{line}\n"
        connection.execute(
            text("INSERT INTO checkpoints (size, root, note, signed) VALUES (:s, :r, :n, 'x')"),
            {"s": head + 1, "r": planted_root, "n": note},
        )
    served = reader.inclusion(1)
    assert (served.tree_size, served.root) == (genuine.size, genuine.root)
    with pytest.raises(NotFoundError):
        reader.inclusion(head)  # the planted leaf: beyond the verified checkpoint
    with pytest.raises(NotFoundError):
        reader.inclusion(1, head + 1)
    assert reader.consistency(1, genuine.size).new_root == genuine.root
    with pytest.raises(NotFoundError):
        reader.consistency(1, head + 1)
    assert reader.signed_checkpoint().size == genuine.size


def test_proofs_after_the_tiles_are_altered_raise_tampered(alliance: Alliance) -> None:
    """Proofs served (and the checkpoint, an older size's root, the right edge's nodes
    remembered) before the tiles are overwritten: the next proofs are still checked
    against the verified roots, and fail."""
    _merchants(alliance)
    reader = _reader(alliance)
    size = reader.signed_checkpoint().size
    assert reader.inclusion(1).tree_size == size
    assert reader.inclusion(0, 2).tree_size == 2  # the root of 2, proven and remembered
    assert reader.consistency(1, size).new == size
    with alliance.engine.begin() as connection, unguarded(connection, ["merkle_tiles"]):
        connection.execute(
            text("UPDATE merkle_tiles SET hashes = :h WHERE level = 0"),
            {"h": bytes(32 * size)},
        )
    with pytest.raises(TamperedError):
        reader.inclusion(1)
    with pytest.raises(TamperedError):
        reader.inclusion(0, 2)
    with pytest.raises(TamperedError):
        reader.consistency(1, size)
    with pytest.raises(TamperedError):
        _reader(alliance).inclusion(0, 1)  # a fresh reader: the older root is not proven


def test_a_proof_outlives_its_pooled_connection(alliance: Alliance) -> None:
    """On PostgreSQL proofs have a pool of their own that does not ping on checkout (a
    proof is one query): a connection the server ended is found dead on use, dropped,
    and the proof made again on a fresh one. SQLite has nothing to ping."""
    _merchants(alliance)
    reader = _reader(alliance)
    first = reader.inclusion(1)
    consistent = reader.consistency(1, first.tree_size)
    pool = reader._proof_engine()
    if alliance.engine.dialect.name != "postgresql":
        assert pool is reader.engine
        return
    assert pool is not reader.engine and not pool.pool._pre_ping  # type: ignore[attr-defined]
    with pool.connect() as pooled:  # the one idle connection the proofs used, back after
        pid = pooled.execute(text("SELECT pg_backend_pid()")).scalar()
    with alliance.engine.connect() as connection:
        ended = connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert ended.scalar() is True
    assert reader.inclusion(1) == first
    assert reader.consistency(1, first.tree_size) == consistent
    reader.close()


def test_a_proof_names_the_hash_of_the_stored_leaf(alliance: Alliance) -> None:
    """A proof takes its leaf's hash from the level-0 tile it reads (no read of the log's
    largest table: issue 11 at 10 M entries), proven by the root; it is the stored leaf's
    hash for every seq and tree size, the one-leaf tree too (no tile read: the row is)."""
    _merchants(alliance)
    reader = _reader(alliance)
    size = reader.signed_checkpoint().size
    leaves = reader.leaves(0, size)
    for seq in range(size):
        for tree_size in sorted({seq + 1, size}):
            proof = reader.inclusion(seq, tree_size)
            assert proof.leaf_hash == merkle.leaf_hash(leaves[seq]), (seq, tree_size)
    reader.close()


def _alter_leaf(alliance: Alliance, seq: int, leaf: bytes) -> None:
    """Rewrite leaf ``seq`` as whoever holds the file or owns the schema could (a hostile
    SQLite file, a restored dump, the schema owner): not an INSERT grant."""
    with alliance.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE log_entries DISABLE TRIGGER USER")
        else:
            saved = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type='trigger'"
                    " AND tbl_name='log_entries'"
                )
            ).all()
            for name, _ in saved:
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        connection.execute(
            text("UPDATE log_entries SET leaf = :l, leaf_hash = :h WHERE seq = :s"),
            {"l": leaf, "h": merkle.leaf_hash(leaf), "s": seq},
        )
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE log_entries ENABLE TRIGGER USER")
        else:
            for _, sql in saved:
                connection.exec_driver_sql(sql)


def test_an_altered_leaf_is_not_served_with_a_proof(alliance: Alliance) -> None:
    """/v1/entries/{seq} (api/log.py _entry) and the public member page (ledger/public.py
    _proofs) pair a leaf row with Ledger.inclusion(), whose leaf hash is the tile's:
    InclusionProof.require_leaf refuses a row altered since (TamperedError), as the
    proof did when it hashed the row itself."""
    _merchants(alliance)
    reader = _reader(alliance)
    size = reader.signed_checkpoint().size
    seq = 1
    record = json.loads(reader.leaves(seq, seq + 1)[0])
    record["entry"]["body"]["member"]["name"] = "Forged & Co."
    forged = json.dumps(record, separators=(",", ":")).encode()
    _alter_leaf(alliance, seq, forged)
    fresh = _reader(alliance)
    for ledger in (reader, fresh):
        leaf = ledger.leaves(seq, seq + 1)[0]
        assert leaf == forged
        proof = ledger.inclusion(seq, size)  # of the genuine leaf: the tiles are intact
        assert proof.leaf_hash != merkle.leaf_hash(leaf)
        with pytest.raises(TamperedError, match="not the one the log's tree holds"):
            proof.require_leaf(leaf)
        ledger.close()


def test_a_proof_at_a_remembered_older_size_reads_no_checkpoint(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose checkpoint lags the log asks for proofs at its older size. Once
    that size's root was proven consistent with the verified checkpoint, such a proof is
    one query: the tiles, checked against the remembered root, with no read of the
    newest checkpoint row (at 10 M entries the extra read doubled a proof's time). A
    size not yet proven still goes through the checkpoint."""
    _merchants(alliance)
    reader = _reader(alliance)
    assert reader.signed_checkpoint().size > 2
    first = reader.inclusion(0, 2)  # proves the root of 2 against the checkpoint
    reads: list[int] = []
    real = store.latest_checkpoint

    def counted(connection: object) -> object:
        reads.append(1)
        return real(connection)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "latest_checkpoint", counted)
    again = reader.inclusion(1, 2)
    assert (again.tree_size, again.root) == (2, first.root)
    merkle.verify_inclusion(again.leaf_hash, 1, 2, again.hashes, first.root)
    assert reads == []
    assert reader.inclusion(0, 1).tree_size == 1  # not remembered: the head is read
    assert reads == [1]
    # A newest row other than the remembered head (the log grew here; a database
    # replaced by a shorter log alike): the proof's own query sees it, and the head is
    # read and verified again before anything is served.
    alliance.ledger.submit(alliance.enroll_doc())
    reads.clear()
    served = reader.inclusion(1, 2)
    assert (served.tree_size, served.root) == (2, first.root)
    assert reads == [1]
