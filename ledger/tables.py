"""ORM tables. Kept apart from the wire schemas (schemas/) and from the API.

Log tables (append-only, enforced by triggers in the migrations):
  log_entries, checkpoints, cosignatures; merkle_tiles may only grow.
Projection tables are caches derived from the log; `alliance rebuild` recreates them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class LogEntry(Base):
    """One leaf of the log: the exact JCS bytes of a record under a gapless seq."""

    __tablename__ = "log_entries"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[str] = mapped_column(String(36), unique=True)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256 of JCS(entry)
    kind: Mapped[str] = mapped_column(String(32))  # no index: nothing selects by kind
    signer: Mapped[str] = mapped_column(String(32), index=True)
    logged: Mapped[str] = mapped_column(String(40))
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)


class MerkleTile(Base):
    """A C2SP tile: up to 256 concatenated hashes of tree level 8*level. Grows only."""

    __tablename__ = "merkle_tiles"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class MerkleTileNodes(Base):
    """The inner nodes of a full tile (sublevels 1..7, 254 hashes), written once when the
    tile fills, so proofs read stored hashes instead of hashing up (ledger/merkle.py)."""

    __tablename__ = "merkle_tile_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nodes: Mapped[bytes] = mapped_column(LargeBinary)


class Checkpoint(Base):
    """Every checkpoint the operator signed, as the signed note text."""

    __tablename__ = "checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    signed: Mapped[str] = mapped_column(String(40))


class Cosignature(Base):
    """A witness's tlog-cosignature/v1 line over the checkpoint of ``size``."""

    __tablename__ = "cosignatures"
    size: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("checkpoints.size"), primary_key=True, autoincrement=False
    )
    witness: Mapped[str] = mapped_column(String(128), primary_key=True)
    timestamp_s: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text, primary_key=True)


class NightReport(Base):
    """A business day's reconciliation report: the JCS bytes that the `reconciliation.closed`
    entry at ``seq`` commits to by its roots."""

    __tablename__ = "night_reports"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    report: Mapped[bytes] = mapped_column(LargeBinary)


LOG_TABLES = ("log_entries", "checkpoints", "cosignatures", "merkle_tile_nodes", "night_reports")
GROW_ONLY_TABLES = ("merkle_tiles",)
