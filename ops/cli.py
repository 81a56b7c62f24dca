"""Alliance Ledger: the shared return and credit ledger of the YRD consumer alliance.

Every command takes --db URL (env ALLIANCE_DB, else sqlite:///alliance.db). A mistake
prints one line, `error <type>: <detail>`, and exits 1."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ops.inputs import read_input
from ops.settings import Settings
from schemas.canonical import parse_json
from schemas.errors import AllianceError, ConfigError, LimitError, MalformedError
from schemas.limits import (
    BENCH_APPEND_ENTRIES_MAX,
    BENCH_AUDIT_ENTRIES_MAX,
    BENCH_HTTP_CLIENTS_MAX,
    BENCH_MEMORY_ENTRIES_MAX,
    BENCH_PROOF_ENTRIES_MAX,
    BENCH_RECONCILE_MEMBERS_MAX,
    BENCH_RECONCILE_OBLIGATIONS_MAX,
    BENCH_SAMPLES_MAX,
    DEMO_DAYS_MAX,
    DEMO_MERCHANTS_MAX,
    GC_YOUNG_THRESHOLD,
    PROOF_TREE_SIZE_MAX,
    SERVE_KEEP_ALIVE_S,
    SERVE_PORT_DEFAULT,
    SUBMISSION_BYTES_MAX,
    check_limits,
)
from signing.keys import PrivateKey, b64encode

if TYPE_CHECKING:  # the ledger (SQLAlchemy, every model) loads with the first command
    from ledger.app import Ledger  # that opens a database, never for --help or a typo
    from ledger.audit import Trust

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
    Path | None, typer.Option("--keys", help="Folder of key files [env ALLIANCE_KEYS, keys]")
]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="The log's HTTP API (alliance serve), e.g. http://host:8000"),
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
        except Exception as exc:
            message = _database_failure(exc)
            if message is None:
                raise
            raise fail(message) from None

    return wrapper  # type: ignore[return-value]


def _database_failure(exc: Exception) -> str | None:
    """The one line for a database error, None for any other exception. SQLAlchemy is
    loaded only by the commands that open a database: while it is not, no exception can
    be one of its errors."""
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.DatabaseError):
        return None
    if isinstance(exc, errors.OperationalError):
        return f"database unreachable: {exc.orig}"
    if isinstance(exc, errors.ProgrammingError):
        return f"database not initialized? {exc.orig}"
    return f"database: {exc.orig}"  # e.g. SQLite's "file is not a database"


def in_range(name: str, value: int, low: int, high: int) -> int:
    """``value`` if within low..high, else one clear error line (click's own range
    check would print a usage panel)."""
    if value < low:
        raise MalformedError(f"{name} must be at least {low}, not {value}", field=name)
    if value > high:
        raise LimitError(f"{name} must be at most {high}, not {value}", field=name)
    return value


SETTINGS: Settings | None = None


def settings() -> Settings:
    """The runtime settings, read from the environment once per process."""
    global SETTINGS  # noqa: PLW0603 (built lazily so --help never reads the environment)
    if SETTINGS is None:
        SETTINGS = Settings.from_env()
    return SETTINGS


def open_ledger(db: str | None, *, writer_keys: Path | bool | None = False) -> Ledger:
    """The front door on --db (or ALLIANCE_DB). Commands that write pass ``writer_keys``
    (the --keys folder, or None for the default): the operator key is loaded once the
    database is known to hold a ledger, so a wrong --db is reported as such."""
    from ledger.app import Ledger

    url = settings().with_db(db)
    ledger = Ledger.open(url, wait_deadline_s=settings().wait_deadline_s)
    if writer_keys is not False:
        ledger.operator = operator_key(writer_keys if isinstance(writer_keys, Path) else None)
    return ledger


def emit(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, sort_keys=True))


def keys_dir(keys: Path | None) -> Path:
    return keys if keys is not None else settings().keys_dir


def operator_key(keys: Path | None) -> PrivateKey:
    return PrivateKey.load(keys_dir(keys) / "operator.pem")


def _trust(trust: Path | None, beside: Path) -> Trust:
    """The trust root a node runs on: --trust, else trust.json beside its key file."""
    from ledger.audit import load_trust

    return load_trust(trust if trust is not None else beside.parent / "trust.json")


@app.command()
@friendly
def init(
    db: DbOption = None,
    keys: KeysOption = None,
    config: Annotated[Path | None, typer.Option(help="Alliance config (regions, policy)")] = None,
) -> None:
    """Create the schema and a genesis, with fresh keys for every principal in --keys and
    the trust root (trust.json) beside them."""
    from ops.service import initialize

    emit(initialize(settings().with_db(db), keys_dir(keys), config, datetime.now(UTC)))


@app.command()
@friendly
def submit(
    file: Annotated[str, typer.Argument(help="A `submitted` JSON file, or - for stdin")],
    url: UrlOption = None,
    db: DbOption = None,
    keys: KeysOption = None,
) -> None:
    """Append one signed entry (in-process, or to the log at --url); prints {"seq",
    "leaf_hash"}."""
    document = parse_json(read_input(file, SUBMISSION_BYTES_MAX))
    if url is not None:
        from nodes.http import HttpClient

        with HttpClient(url) as client:
            emit(client.submit(document))
        return
    emit(open_ledger(db, writer_keys=keys).submit(document).wire())


@proof_app.command("inclusion")
@friendly
def proof_inclusion(
    seq: int,
    tree_size: Annotated[int | None, typer.Option("--tree-size")] = None,
    db: DbOption = None,
) -> None:
    """Inclusion proof of SEQ in the tree of --tree-size (default: latest checkpoint)."""
    in_range("SEQ", seq, 0, PROOF_TREE_SIZE_MAX)
    if tree_size is not None:
        in_range("--tree-size", tree_size, 1, PROOF_TREE_SIZE_MAX)
    emit(open_ledger(db).inclusion(seq, tree_size).wire())


@proof_app.command("consistency")
@friendly
def proof_consistency(old: int, new: int, db: DbOption = None) -> None:
    """Consistency proof between tree sizes OLD and NEW."""
    in_range("OLD", old, 1, PROOF_TREE_SIZE_MAX)
    in_range("NEW", new, 1, PROOF_TREE_SIZE_MAX)
    emit(open_ledger(db).consistency(old, new).wire())


@app.command()
@friendly
def checkpoint(db: DbOption = None) -> None:
    """Print the latest signed checkpoint note, with its verified cosignatures."""
    typer.echo(open_ledger(db).signed_checkpoint().note, nl=False)


@app.command()
@friendly
def export(directory: Path, db: DbOption = None) -> None:
    """Write checkpoint, entries.jsonl and trust.json to DIRECTORY."""
    result = open_ledger(db).export(directory)
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
    source: Annotated[str, typer.Argument(help="An export directory, or the log's URL")],
    trust: Annotated[
        Path | None, typer.Option(help="With a URL: the auditor's trust.json [beside --key]")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="With a URL: the auditor's PEM key [--keys/operator.pem for now]"),
    ] = None,
    keys: KeysOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify an export, or a live log at a URL (its checkpoint, entry bundles and night
    reports, fetched with the auditor's signed requests), from the log alone; exit 0 only
    when everything holds."""
    from ops.report import print_audit

    if "://" in source and not source.startswith(("http://", "https://")):
        raise ConfigError("audit takes an export directory or the http(s) URL of a log's API")
    if "://" in source:
        from nodes.audit import audit_url
        from nodes.http import HttpClient

        signer = PrivateKey.load(key) if key is not None else operator_key(keys)
        beside = key if key is not None else keys_dir(keys) / "operator.pem"
        with HttpClient(source, signer) as client:
            report = audit_url(client, trust if trust is not None else beside.parent / "trust.json")
    else:
        from ledger.audit import audit_directory

        report = audit_directory(Path(source))
    print_audit(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


@app.command("import")
@friendly
def import_(
    directory: Annotated[Path, typer.Argument(help="An export directory (`alliance export`)")],
    db: DbOption = None,
    keys: KeysOption = None,
) -> None:
    """Restore an export into an empty database: audit it, load its leaves, tiles,
    checkpoint, cosignatures and night reports, and seal the projections with the
    operator key; prints {"size", "root", "cosignatures", "nights", "seconds",
    "entries_per_s"}."""
    from ledger.restore import import_export

    operator = operator_key(keys)
    emit(import_export(directory, settings().with_db(db), operator).wire())


@app.command()
@friendly
def rebuild(db: DbOption = None, keys: KeysOption = None) -> None:
    """Replay the log, compare with the projections, rewrite them if they differ (run as
    the schema owner, with the operator key)."""
    result = open_ledger(db, writer_keys=keys).rebuild()
    emit(result.wire())
    if not result.identical:
        raise typer.Exit(1)  # the projections were stale; they are now rebuilt from the log


@app.command()
@friendly
def doctor(
    db: DbOption = None,
    keys: Annotated[
        Path | None, typer.Option("--keys", help="With operator.pem: check seals too")
    ] = None,
    repair: Annotated[bool, typer.Option(help="Rewrite what is derivable (schema owner)")] = False,
) -> None:
    """Compare everything derived from the leaves with the leaves; exit 1 on any finding.
    --repair rewrites tiles, nodes and projections, drops rows that do not verify and
    signs a checkpoint of the head if none verifies. It never touches a leaf."""
    from ledger import doctor as doctoring

    ledger = open_ledger(db, writer_keys=keys if keys is not None or repair else False)
    report = doctoring.repair(ledger, datetime.now(UTC)) if repair else doctoring.examine(ledger)
    for line in doctoring.iter_findings(report):
        err.print(escape(line), highlight=False)
    emit(report.wire() | {"repaired": repair and not report.ok})
    if not report.ok and not repair:
        raise typer.Exit(1)


@app.command()
@friendly
def endorse(
    region: Annotated[str, typer.Option(help="Region code, e.g. 31")],
    key: Annotated[Path, typer.Option(help="The region's PEM key (the only key the node uses)")],
    trust: Annotated[Path | None, typer.Option(help="trust.json [beside --key]")] = None,
    rules: Annotated[Path | None, typer.Option(help="Node rules JSON")] = None,
    review: Annotated[bool, typer.Option(help="List or decide the review queue")] = False,
    approve: Annotated[str, typer.Option(help="With --review: seqs to approve, 1,2")] = "",
    reject: Annotated[str, typer.Option(help="With --review: seqs to reject, 3,4")] = "",
    reason: Annotated[str, typer.Option(help="With --reject: the reason code")] = "",
    url: UrlOption = None,
    follow: Annotated[bool, typer.Option(help="With --url: run every --interval seconds")] = False,
    interval: Annotated[float, typer.Option(help="With --follow: seconds between runs")] = 5.0,
    db: DbOption = None,
    keys: KeysOption = None,
) -> None:
    """Run a region's endorsement node once: approve what its rules allow, queue the rest
    for a person (--review). With --url it talks to the log over HTTP, verifying each
    pending entry's inclusion proof and signatures (--follow: until stopped). In-process,
    the log's writer runs in this process and needs the operator key from --keys; the
    node itself holds only the region's key."""
    from nodes.client import LocalClient
    from nodes.endorse import EndorseNode, NodeRules

    if url is not None and review:
        from nodes.http import HttpClient
        from nodes.remote import RemoteEndorseNode

        queue = key.parent / f"region-{region}.review.json"
        remote = RemoteEndorseNode(region, PrivateKey.load(key), _trust(trust, key), None, queue)
        if not (approve or reject):
            emit({"region": region, "review": remote.queue.listing()})
            return
        with HttpClient(url, remote.key) as http:
            now = datetime.now(UTC)
            emit(remote.review(http, now, _seqs(approve), _seqs(reject), reason).wire(region))
        return
    if url is not None:
        _endorse_http(url, region, key, _trust(trust, key), NodeRules.load(rules), follow, interval)
        return

    node = EndorseNode(
        region,
        PrivateKey.load(key),
        _trust(trust, key),
        NodeRules.load(rules),
        key.parent / f"region-{region}.review.json",
    )
    client = LocalClient(open_ledger(db, writer_keys=keys))
    now = datetime.now(UTC)
    if not review:
        emit(node.run(client, now).wire(region))
    elif approve or reject:
        decided = node.review(client, now, _seqs(approve), _seqs(reject), reason)
        emit(decided.wire(region))
    else:
        emit({"region": region, "review": node.queue.listing()})


def _endorse_http(
    url: str, region: str, key: Path, trust: Trust, rules: Any, follow: bool, interval_s: float
) -> None:
    """`alliance endorse --url`: the node over HTTP, once or (--follow) until stopped."""
    import time

    from nodes.http import HttpClient
    from nodes.remote import RemoteEndorseNode

    in_range("--interval", int(interval_s), 0, 86_400)
    queue = key.parent / f"region-{region}.review.json"
    node = RemoteEndorseNode(region, PrivateKey.load(key), trust, rules, queue)
    with HttpClient(url, node.key) as client:
        while True:
            emit(node.run(client, datetime.now(UTC)).wire(region))
            if not follow:
                return
            time.sleep(interval_s)  # a polling node's period, not a wait for a result


def _seqs(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise MalformedError(f"not a list of seqs: {text}") from exc


@app.command()
@friendly
def witness(
    region: Annotated[str, typer.Option(help="Region code, e.g. 31")],
    key: Annotated[Path, typer.Option(help="The region's witness PEM key")],
    trust: Annotated[Path | None, typer.Option(help="trust.json [beside --key]")] = None,
    listen: Annotated[
        str | None, typer.Option(help="Serve C2SP tlog-witness on HOST:PORT (the log sends)")
    ] = None,
    db: DbOption = None,
) -> None:
    """Cosign the latest checkpoint as a region's witness, after a consistency check from
    the last checkpoint it cosigned (kept beside the key in region-NN.witness.state.json).
    With --listen it serves POST /add-checkpoint (C2SP tlog-witness) instead: the log
    (`alliance serve --witness REGION=URL`) sends it each new checkpoint."""
    from nodes.client import LocalClient
    from nodes.witness import WitnessNode
    from ops.service import witness_state_file_name

    state = key.parent / witness_state_file_name(region)
    if listen is not None:
        _witness_server(listen, region, key, _trust(trust, key), state)
        return
    node = WitnessNode(region, PrivateKey.load(key), _trust(trust, key), state)
    emit(node.cosign(LocalClient(open_ledger(db)), datetime.now(UTC)).wire())


def _witness_server(listen: str, region: str, key: Path, trust: Trust, state: Path) -> None:
    import uvicorn

    from api.witness import create_witness_app
    from nodes.tlog import TlogWitness

    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit():
        raise MalformedError(f"--listen is HOST:PORT, not {listen!r}", field="--listen")
    in_range("--listen port", int(port), 1, 65_535)
    witness = TlogWitness(region, PrivateKey.load(key), trust, state)
    uvicorn.run(
        create_witness_app(witness),
        host=host or "127.0.0.1",
        port=int(port),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=SERVE_KEEP_ALIVE_S,
    )


def _day(text: str, option: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise MalformedError(f"{option} must be a date YYYY-MM-DD, not {text!r}") from exc
    if day.isoformat() != text:
        raise MalformedError(f"{option} must be a date YYYY-MM-DD, not {text!r}")
    return day


@app.command()
@friendly
def reconcile(
    day: Annotated[str | None, typer.Option("--day", help="Close this day (YYYY-MM-DD)")] = None,
    db: DbOption = None,
    keys: KeysOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Close business day --day, or every day that is due (oldest first); print each
    night's summary. A day closed already is returned as it is (nothing appended)."""
    from reconciliation.nightly import close_day, close_due

    ledger = open_ledger(db, writer_keys=keys)
    nights = close_due(ledger) if day is None else [close_day(ledger, _day(day, "--day"))]
    summaries = [night.summary() for night in nights]
    if as_json:
        emit(summaries)
        return
    from ops.report import print_nights

    print_nights(summaries)


@app.command()
@friendly
def statement(
    member: Annotated[str, typer.Option("--member", help="The member's USCC")],
    day: Annotated[str, typer.Option("--day", help="The business day (YYYY-MM-DD)")],
    output_format: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    db: DbOption = None,
    keys: KeysOption = None,
) -> None:
    """A member's statement of one night: its obligations, totals and instructions, each
    instruction with its inclusion proof (verified before it is printed)."""
    from reconciliation.statement import statement as build
    from reconciliation.statement import statement_csv

    if output_format not in ("json", "csv"):
        raise MalformedError(f"--format must be json or csv, not {output_format!r}")
    result = build(open_ledger(db, writer_keys=keys), member, _day(day, "--day"))
    if output_format == "csv":
        typer.echo(statement_csv(result), nl=False)
    else:
        emit(result.wire())


@app.command()
@friendly
def scheduler(db: DbOption = None, keys: KeysOption = None) -> None:
    """Run the nightly reconciliation as a long-lived process (APScheduler, at
    policy.reconcile_at local time; catches up missed days at start; stops on SIGTERM)."""
    from ops.scheduler import serve

    serve(open_ledger(db, writer_keys=keys))


DEMO_DB = Path("demo.db")  # where `make demo` leaves its ledger, and its keys
DEMO_KEYS = Path("demo-keys")


def _demo_defaults(db: str | None, keys: Path | None) -> tuple[str | None, Path | None]:
    """After `make demo`, `alliance serve` alone serves the demo: with no --db, no
    ALLIANCE_DB and no alliance.db here, demo.db (and demo-keys, unless --keys or
    ALLIANCE_KEYS say otherwise)."""
    if db is not None or "ALLIANCE_DB" in os.environ or not DEMO_DB.exists():
        return db, keys
    if Path(settings().db_url.removeprefix("sqlite:///")).exists():
        return db, keys
    if keys is None and "ALLIANCE_KEYS" not in os.environ and DEMO_KEYS.is_dir():
        keys = DEMO_KEYS
    return f"sqlite:///{DEMO_DB}", keys


@app.command()
@friendly
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = SERVE_PORT_DEFAULT,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="REGION=URL of a region's tlog-witness; repeat for each"),
    ] = None,
    db: DbOption = None,
    keys: KeysOption = None,
    read_db: Annotated[
        str | None,
        typer.Option(
            "--read-db",
            help="A PostgreSQL hot standby of --db: checkpoints, tiles, proofs, entries "
            "and public reads are served from it",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (docs/PROTOCOL.md §6) on uvicorn; this process is the log's
    writer, with the operator key from --keys. With --witness it sends each new
    checkpoint to those witnesses (at most once a second) and stores their cosignatures."""
    in_range("--port", port, 1, 65_535)
    import uvicorn

    from api.app import create_app
    from ledger.app import Ledger
    from ops.witnessing import WitnessPusher, parse_witnesses

    db, keys = _demo_defaults(db, keys)
    ledger = open_ledger(db, writer_keys=keys)
    replica = None if read_db is None else Ledger.replica(read_db)
    pusher = WitnessPusher(ledger, parse_witnesses(witness or [])) if witness else None
    if pusher is not None:
        pusher.start()
    # Idle keep-alive connections are closed after a few seconds: a slow or vanished
    # client does not hold a connection (and its threadpool slot is never taken).
    try:
        uvicorn.run(
            create_app(ledger, replica=replica),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=SERVE_KEEP_ALIVE_S,
        )
    finally:
        if pusher is not None:
            pusher.stop()


@app.command()
@friendly
def demo(
    days: int = 10,  # ops.demo.stage.DEMO_DAYS: the overdue settlement's story needs ten
    merchants: int = 200,
    seed: int = 1,
    keys: Annotated[Path | None, typer.Option("--keys")] = None,
    out: Annotated[Path, typer.Option("--out", help="Export folder")] = Path("demo-export"),
    config: Annotated[
        Path | None, typer.Option("--config", help="Alliance config [ops/yrd.json]")
    ] = None,
    db: DbOption = None,
) -> None:
    """A simulated alliance end to end on the embedded default, then an audit. Its
    regions come from the configuration (e.g. docs/hunan.json: five regions)."""
    in_range("--days", days, 1, DEMO_DAYS_MAX)
    in_range("--merchants", merchants, 1, DEMO_MERCHANTS_MAX)
    from ops.demo import run_demo

    ok = run_demo(
        settings().with_db(db),
        days=days,
        merchants=merchants,
        seed=seed,
        keys=keys,
        out=out,
        config_path=config,
    )
    if not ok:
        raise typer.Exit(1)


@bench_app.command("append")
@friendly
def bench_append(
    entries: int = 20_000,
    db: DbOption = None,
    kind: Annotated[str, typer.Option(help="member (log only) or return (full rules)")] = "member",
    preload: Annotated[
        int,
        typer.Option(help="Then append this many more (untimed) and measure again: sustained"),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Append throughput as a ratio to the raw loop on the same backend."""
    in_range("--entries", entries, 1, BENCH_APPEND_ENTRIES_MAX)
    in_range("--preload", preload, 0, BENCH_MEMORY_ENTRIES_MAX)
    from ops.bench.append import bench_append as run

    emit(run(db, entries=entries, kind=kind, preload=preload))


@bench_app.command("memory")
@friendly
def bench_memory(
    entries: int = 1_000_000,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Writer memory and a one-entry restart after ENTRIES returns."""
    from ops.bench.memory import bench_memory as run

    in_range("--entries", entries, 1, BENCH_MEMORY_ENTRIES_MAX)
    emit(run(db, entries=entries))


@bench_app.command("audit")
@friendly
def bench_audit(
    entries: int = 1_000_000,
    export: Annotated[
        Path | None, typer.Option(help="Folder of the bench's export (built if not there)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The audit's rate at ENTRIES entries against the all-core raw Ed25519 verify rate."""
    in_range("--entries", entries, 2, BENCH_AUDIT_ENTRIES_MAX)
    from ops.bench.audit import bench_audit as run

    folder = export if export is not None else Path(f"bench-audit-{entries}")
    emit(run(entries, folder))


@bench_app.command("scale")
@friendly
def bench_scale(
    entries: int = 10_000_000,
    db: Annotated[str, typer.Option("--db", help="PostgreSQL server (a fresh schema)")] = (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    folder: Annotated[Path, typer.Option("--dir", help="Where the export is built")] = Path(
        "scale"
    ),
    audit: Annotated[
        bool, typer.Option("--audit/--no-audit", help="Time the audit on its own first")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue 11's figures on a log of ENTRIES on PostgreSQL (`make scale`); each step's
    figures are printed on stderr as it ends."""
    in_range("--entries", entries, 2, BENCH_AUDIT_ENTRIES_MAX)
    from ops.bench.scale import bench_scale as run

    def progress(step: str, figures: dict[str, object]) -> None:
        typer.echo(f"{step}: {json.dumps(figures, sort_keys=True)}", err=True)

    emit(run(entries, db, folder, audit=audit, progress=progress))


@bench_app.command("proofs")
@friendly
def bench_proofs(
    entries: int = 1_000_000,
    samples: int = 2000,
    db: Annotated[
        str | None, typer.Option("--db", help="Serve our proofs from this database's tiles")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Proof latency at ENTRIES leaves, against pymerkle in the same run."""
    in_range("--entries", entries, 2, BENCH_PROOF_ENTRIES_MAX)
    in_range("--samples", samples, 1, BENCH_SAMPLES_MAX)
    from ops.bench.proofs import bench_proofs as run

    emit(run(entries=entries, samples=samples, db=db))


@bench_app.command("http")
@friendly
def bench_http(
    clients: int = 64,
    entries: int = 20_000,
    batch: Annotated[bool, typer.Option("--batch", help="1,000 entries a request")] = False,
    db: Annotated[
        str | None, typer.Option("--db", help="Fresh logs in this database's server")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Appends over HTTP (alliance serve in its own process, a load generator in
    another) against the library's append rate, in one run."""
    in_range("--clients", clients, 1, BENCH_HTTP_CLIENTS_MAX)
    in_range("--entries", entries, 1, BENCH_APPEND_ENTRIES_MAX)
    from ops.bench.http import bench_http as run

    emit(run(db, clients=clients, entries=entries, batch=batch))


@bench_app.command("reconcile")
@friendly
def bench_reconcile(
    obligations: int = 1_000_000,
    members: int = 100_000,
    db: Annotated[
        str | None, typer.Option("--db", help="Read the night from a table of this database")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One night's netting, report and roots, against a net-positions sum (in memory, or
    one SQL GROUP BY with --db) and the heap greedy."""
    in_range("--obligations", obligations, 1, BENCH_RECONCILE_OBLIGATIONS_MAX)
    in_range("--members", members, 2, BENCH_RECONCILE_MEMBERS_MAX)
    from ops.bench.machine import machine
    from ops.bench.reconcile import bench_reconcile_db
    from ops.config import load_config
    from reconciliation.bench import bench_reconcile as in_memory
    from schemas.bodies import CalendarModel

    calendar = CalendarModel.model_validate(load_config().policy["calendar"])
    if db is None:
        report = in_memory(obligations, members, calendar)
    else:
        report = bench_reconcile_db(db, obligations, members, calendar)
    emit({**report, "machine": machine()})


def _terminated(signal_number: int, _frame: object) -> None:
    """SIGTERM as SystemExit: the finally blocks run (an import's private database
    file, an audit's spill directory and worker processes are removed), as on Ctrl-C."""
    raise SystemExit(128 + signal_number)


def main() -> None:
    if threading.current_thread() is threading.main_thread():  # where Python takes signals
        signal.signal(signal.SIGTERM, _terminated)  # `serve`: uvicorn installs its own
    check_limits()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    app()


if __name__ == "__main__":
    main()
