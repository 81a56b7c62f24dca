"""Alliance Ledger: the shared return and credit ledger of the YRD consumer alliance.

Every command takes --db URL (env ALLIANCE_DB, else sqlite:///alliance.db). A mistake
prints one line, `error <type>: <detail>`, and exits 1."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from ledger import merkle, store
from ledger.db import db_url_from_env, make_engine
from ledger.schema import is_initialized
from schemas.canonical import parse_json
from schemas.errors import AllianceError, ConfigError, NotFoundError
from schemas.limits import check_limits
from signing.keys import PrivateKey, b64encode

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)
proof_app = typer.Typer(no_args_is_help=True, help="Inclusion and consistency proofs.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks, reported as ratios.")
app.add_typer(proof_app, name="proof")
app.add_typer(bench_app, name="bench")

err = Console(stderr=True, soft_wrap=True)  # soft_wrap: an error stays on one line
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL [env ALLIANCE_DB, sqlite:///alliance.db]")
]
KeysOption = Annotated[
    Path, typer.Option("--keys", envvar="ALLIANCE_KEYS", help="Folder of key files")
]
F = TypeVar("F", bound=Callable[..., Any])


def friendly(function: F) -> F:
    """Turn a user's mistake into one line on stderr and exit status 1."""

    def fail(message: str) -> typer.Exit:
        # The message is user data (paths, JSON keys): never Rich markup, one line.
        err.print("[bold red]error[/] " + escape(" ".join(message.split())), highlight=False)
        return typer.Exit(1)

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except AllianceError as exc:
            raise fail(f"{exc.type_slug}: {exc.detail}") from None
        except OperationalError as exc:
            raise fail(f"database unreachable: {exc.orig}") from None
        except ProgrammingError as exc:
            raise fail(f"database not initialized? {exc.orig}") from None

    return wrapper  # type: ignore[return-value]


def open_engine(db: str | None, *, must_exist: bool = True) -> Engine:
    url = db_url_from_env(db)
    engine = make_engine(url)  # validates the URL; connects lazily
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if must_exist and database and database != ":memory:" and not Path(database).exists():
        # Connecting would create an empty SQLite file: a read must write nothing.
        raise NotFoundError(f"no ledger at {database}: run `alliance init` first")
    if must_exist and not is_initialized(engine):
        raise NotFoundError("no ledger in this database: run `alliance init` first")
    return engine


def emit(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, sort_keys=True))


def operator_key(keys: Path) -> PrivateKey:
    return PrivateKey.load(keys / "operator.pem")


@app.command()
@friendly
def init(
    db: DbOption = None,
    keys: KeysOption = Path("keys"),
    config: Annotated[Path | None, typer.Option(help="Alliance config (regions, policy)")] = None,
) -> None:
    """Create the schema and a genesis, with fresh keys for every principal in --keys."""
    from ops.service import initialize

    engine = open_engine(db, must_exist=False)
    result = initialize(engine, keys, config, datetime.now(UTC))
    emit(result)


@app.command()
@friendly
def submit(
    file: Annotated[str, typer.Argument(help="A `submitted` JSON file, or - for stdin")],
    db: DbOption = None,
    keys: KeysOption = Path("keys"),
) -> None:
    """Append one signed entry; prints {"seq", "leaf_hash"}."""
    from ledger.sequencer import Sequencer

    data = sys.stdin.buffer.read() if file == "-" else _read(Path(file))
    document = parse_json(data)
    engine = open_engine(db)
    appended = Sequencer(engine, operator_key(keys)).submit(document)
    emit(appended.wire())


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror}") from exc


def _tree_size(engine: Engine, requested: int | None) -> tuple[int, bytes]:
    with engine.connect() as connection:
        latest = store.latest_checkpoint(connection)
        if latest is None:
            raise NotFoundError("the log has no checkpoint yet")
        if requested is None or requested == latest.size:
            return latest.size, latest.root
        if requested > latest.size:
            raise NotFoundError(f"tree size {requested} is beyond the checkpoint {latest.size}")
        return requested, merkle.root(requested, store.DbTiles(connection))


@proof_app.command("inclusion")
@friendly
def proof_inclusion(
    seq: int,
    tree_size: Annotated[int | None, typer.Option("--tree-size")] = None,
    db: DbOption = None,
) -> None:
    """Inclusion proof of SEQ in the tree of --tree-size (default: latest checkpoint)."""
    engine = open_engine(db)
    size, root = _tree_size(engine, tree_size)
    with engine.connect() as connection:
        entry = store.read_entry(connection, seq)
        if entry is None or seq >= size:
            raise NotFoundError(f"seq {seq} is not in the tree of size {size}")
        hashes = merkle.inclusion_proof(seq, size, store.DbTiles(connection))
    emit(
        {
            "seq": seq,
            "tree_size": size,
            "leaf_hash": b64encode(entry.leaf_hash),
            "hashes": [b64encode(h) for h in hashes],
            "root": b64encode(root),
        }
    )


@proof_app.command("consistency")
@friendly
def proof_consistency(old: int, new: int, db: DbOption = None) -> None:
    """Consistency proof between tree sizes OLD and NEW."""
    engine = open_engine(db)
    new_size, new_root = _tree_size(engine, new)
    old_size, old_root = _tree_size(engine, old)
    with engine.connect() as connection:
        hashes = merkle.consistency_proof(old_size, new_size, store.DbTiles(connection))
    emit(
        {
            "old": old_size,
            "new": new_size,
            "hashes": [b64encode(h) for h in hashes],
            "old_root": b64encode(old_root),
            "new_root": b64encode(new_root),
        }
    )


@app.command()
@friendly
def checkpoint(db: DbOption = None) -> None:
    """Print the latest signed checkpoint note, with its cosignatures."""
    from ledger.export import signed_checkpoint

    with open_engine(db).connect() as connection:
        _, note, _ = signed_checkpoint(connection)
    typer.echo(note, nl=False)


@app.command()
@friendly
def export(directory: Path, db: DbOption = None) -> None:
    """Write checkpoint, entries.jsonl and trust.json to DIRECTORY."""
    from ledger.export import export as run_export

    result = run_export(open_engine(db), directory)
    emit(
        {
            "dir": str(directory),
            "size": result.size,
            "root": b64encode(result.root),
            "cosignatures": result.cosignatures,
        }
    )


@app.command()
@friendly
def audit(
    source: Annotated[str, typer.Argument(help="An export directory")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify an export from the log alone; exit 0 only when everything holds."""
    from ops.report import print_audit

    if "://" in source:
        raise ConfigError("auditing a live URL needs the HTTP API; export it and audit the folder")
    from ledger.audit import audit_directory

    report = audit_directory(Path(source))
    print_audit(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@friendly
def rebuild(db: DbOption = None) -> None:
    """Drop the projections, rebuild them from the log and prove them identical."""
    from ops.service import rebuild_projections

    result = rebuild_projections(open_engine(db))
    emit(result)
    if not result["identical"]:
        raise typer.Exit(1)  # the projections were stale; they are now rebuilt from the log


@app.command()
@friendly
def endorse(
    region: Annotated[str, typer.Option(help="Region code, e.g. 31")],
    key: Annotated[Path, typer.Option(help="The region's PEM key")],
    db: DbOption = None,
    keys: KeysOption = Path("keys"),
) -> None:
    """Run a region's endorsement node once: approve what awaits its decision."""
    from ops.service import run_endorse

    emit(run_endorse(open_engine(db), region, PrivateKey.load(key), operator_key(keys)))


@app.command()
@friendly
def witness(
    region: Annotated[str, typer.Option(help="Region code, e.g. 31")],
    key: Annotated[Path, typer.Option(help="The region's witness PEM key")],
    db: DbOption = None,
) -> None:
    """Cosign the latest checkpoint as a region's witness, after a consistency check."""
    from ops.service import run_witness

    emit(run_witness(open_engine(db), region, PrivateKey.load(key)))


@app.command()
@friendly
def demo(
    days: int = 7,
    merchants: int = 200,
    seed: int = 1,
    keys: Annotated[Path | None, typer.Option("--keys")] = None,
    out: Annotated[Path, typer.Option("--out", help="Export folder")] = Path("demo-export"),
    db: DbOption = None,
) -> None:
    """A simulated alliance end to end on the embedded default, then an audit."""
    from ops.demo import run_demo

    ok = run_demo(
        db_url_from_env(db), days=days, merchants=merchants, seed=seed, keys=keys, out=out
    )
    if not ok:
        raise typer.Exit(1)


@bench_app.command("append")
@friendly
def bench_append(
    entries: int = 20_000,
    db: DbOption = None,
    kind: Annotated[str, typer.Option(help="member (log only) or return (full rules)")] = "member",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Append throughput as a ratio to the raw loop on the same backend."""
    from ops.bench_append import bench_append as run

    emit(run(db, entries=entries, kind=kind))


@bench_app.command("proofs")
@friendly
def bench_proofs(
    entries: int = 1_000_000,
    samples: int = 2000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Proof latency at ENTRIES leaves, against pymerkle in the same run."""
    from ops.bench_proofs import bench_proofs as run

    emit(run(entries=entries, samples=samples))


# The writer keeps every projection row in memory; with CPython's default threshold
# (700 allocations) the young generation is collected every few entries and the old one
# rescans that whole state. Ledger rows hold no reference cycles (refcounting frees them),
# so a larger young generation costs little memory and saves ~10 % of append time.
GC_YOUNG_THRESHOLD = 50_000


def main() -> None:
    check_limits()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    app()


if __name__ == "__main__":
    main()
