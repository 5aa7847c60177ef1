"""A group of appends as one call of a database function: one statement, one round
trip, one commit.

Committing a group from Python took ten statements (begin, lock, the checks'
reads, notify, the head, the insert, commit): psycopg's cost per statement made
the client's CPU, not the server, the limit on two cores. The function does what
``journal._postgres._Group`` does, in the same order, inside the statement's own
transaction:

1. lock the events table (``EXCLUSIVE``: notification ids in commit order);
2. for each append in queue order: refuse it whole if its fence's token is not
   the partition's (the lease row read ``FOR SHARE``), if it is fenced (the
   runtime's) and a version is not past its stream's last, or if one of its
   (stream, version) pairs is stored, taken earlier in the group, or in it twice;
3. link the admitted events into both hash chains (SHA-256 of the bytes
   ``journal._chain`` hashes, key and topic bytes made by the client;
   ``journal._pg_verify`` checks them), insert them with one statement, record
   the head, notify the table's channel;
4. return one row per refused append, saying why, and one (append 0) with the
   group's first notification id.

The checks of step 2 run as a few set queries; only when one finds something
(a fence that does not hold, a pair stored or repeated, versions not ascending)
does a loop over the appends decide which are refused, in queue order.

Anything raised inside fails the whole group, nothing of it committed.

The call goes through libpq directly (``AppendCall``): the twelve arrays built
here in PostgreSQL's binary array format, the statement prepared once per
connection, the rows read as text. psycopg's cursor spent 0.2 ms of the client's
CPU per group on the same call (its generic array dumpers, its execution
machinery), this 0.12 ms; under W2's load on two cores the client's CPU is what
the group's latency waits for. Prepared, the call costs the server 0.37 ms of CPU
per group against 0.43-0.50 ms parsed and planned each time (the server shares
the two cores with the client).
"""

from __future__ import annotations

import itertools
import struct
import weakref
from collections.abc import Sequence
from typing import Any, Final

from eventsourcing.persistence import StoredEvent
from psycopg import Connection, pq
from psycopg.errors import error_from_result
from psycopg.sql import SQL, Composed, Identifier, Literal

from journal._errors import EventConflictError, FencedOutError
from journal._keys import text_event_key
from journal._leases import Fence

_TOPIC_LENGTH: Final = struct.Struct(">I")  # as journal._chain packs it

__all__ = [
    "AppendCall",
    "append_function",
    "binary_arrays",
    "call_params",
    "outcomes",
    "topic_bytes",
]

FENCED: Final = "fenced"
TAKEN: Final = "taken"
TWICE: Final = "twice"
BEHIND: Final = "behind"

# Placeholders: schema, table, heads, leases, function, channel (a literal).
_FUNCTION: Final = """
CREATE OR REPLACE FUNCTION {schema}.{function}(
    e_append integer[], e_id text[], e_version bigint[], e_topic text[],
    e_state bytea[], e_key bytea[], e_topic_bytes bytea[], e_stream integer[],
    s_id text[], s_first bigint[], a_partition integer[], a_token bigint[])
RETURNS TABLE (append integer, outcome text, stream text, version bigint,
               owner text, token bigint, held bigint, first_id bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    n_events integer := coalesce(cardinality(e_id), 0);
    n_appends integer := coalesce(cardinality(a_partition), 0);
    refused boolean[] := array_fill(false, ARRAY[n_appends]);
    o_nid bigint[] := array_fill(NULL::bigint, ARRAY[n_events]);
    o_hash bytea[] := array_fill(NULL::bytea, ARRAY[n_events]);
    o_log bytea[] := array_fill(NULL::bytea, ARRAY[n_events]);
    zero bytea := decode(repeat('00', 32), 'hex');
    taken text[];
    i integer := 1;
    j integer;
    a integer;
    x integer;
    y integer;
    bad integer;
    why text;
    lease_owner text;
    lease_token bigint;
    last_id bigint;
    first_id_before bigint;
    last_log bytea;
    heads_hash bytea[];
    heads_max bigint[];
    h integer;
    digest bytea;
    l_part integer[] := ARRAY[]::integer[];
    l_token bigint[] := ARRAY[]::bigint[];
    clean boolean;
BEGIN
    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;
    -- Per stream (s_id: each stream once, e_stream: an event's stream in it):
    -- its hash before the first of its versions here (s_first; or zeros), and
    -- its last version stored (or admitted, as the loop goes on). One index
    -- probe when the stream's last version is below its first here.
    SELECT array_agg(coalesce(CASE WHEN m.last < w.first THEN m.hash
                                   ELSE (SELECT t.hash FROM {schema}.{table} t
                                          WHERE t.originator_id = w.id
                                            AND t.originator_version < w.first
                                          ORDER BY t.originator_version DESC
                                          LIMIT 1) END, zero) ORDER BY w.n),
           array_agg(coalesce(m.last, -9223372036854775808) ORDER BY w.n)
      INTO heads_hash, heads_max
      FROM unnest(s_id, s_first) WITH ORDINALITY AS w(id, first, n)
      LEFT JOIN LATERAL (SELECT t.originator_version AS last, t.hash
             FROM {schema}.{table} t WHERE t.originator_id = w.id
             ORDER BY t.originator_version DESC LIMIT 1) m ON true;
    -- The fenced appends' leases, locked FOR SHARE (a host taking one over
    -- waits for this transaction to end).
    IF EXISTS (SELECT 1 FROM unnest(a_partition) f(p) WHERE f.p IS NOT NULL) THEN
        SELECT coalesce(array_agg(s.partition), l_part),
               coalesce(array_agg(s.token), l_token)
          INTO l_part, l_token
          FROM (SELECT l.partition, l.token FROM {schema}.{leases} l
                 WHERE l.partition = ANY(a_partition)
                 ORDER BY l.partition FOR SHARE) s;
    END IF;
    -- The common case, checked as sets: every fence holds, and each stream's
    -- versions ascend from past its last stored (so no pair is stored, or in
    -- the group twice). Then every append is admitted, with no loop over them.
    clean := NOT EXISTS (
            SELECT 1 FROM unnest(a_partition, a_token) f(p, t)
             WHERE f.p IS NOT NULL
               AND f.t IS DISTINCT FROM l_token[array_position(l_part, f.p)])
        AND NOT EXISTS (
            SELECT 1 FROM (
                SELECT k.s, k.v,
                       lag(k.v) OVER (PARTITION BY k.s ORDER BY k.n) AS before
                  FROM unnest(e_stream, e_version) WITH ORDINALITY
                       AS k(s, v, n)) e
             WHERE e.v <= e.before OR e.v <= heads_max[e.s]);
    IF NOT clean THEN
        -- A pair as text: the version follows the last space (one-to-one).
        SELECT coalesce(array_agg(t.originator_id || ' ' || t.originator_version),
                        ARRAY[]::text[])
          INTO taken
          FROM {schema}.{table} t
          JOIN unnest(e_id, e_version) AS k(id, v)
            ON t.originator_id = k.id AND t.originator_version = k.v;
    END IF;
    FOR a IN 1 .. n_appends LOOP
        EXIT WHEN clean;
        j := i;  -- the events of append a are i .. j - 1
        WHILE j <= n_events AND e_append[j] = a LOOP
            j := j + 1;
        END LOOP;
        IF a_partition[a] IS NOT NULL THEN
            lease_owner := NULL;
            lease_token := NULL;
            SELECT l.owner, l.token INTO lease_owner, lease_token
              FROM {schema}.{leases} l WHERE l.partition = a_partition[a] FOR SHARE;
            IF lease_token IS DISTINCT FROM a_token[a] THEN
                refused[a] := true;
                RETURN QUERY SELECT a, 'fenced'::text,
                    CASE WHEN j > i THEN e_id[i] ELSE '-' END, NULL::bigint,
                    lease_owner, coalesce(lease_token, 0), NULL::bigint,
                    NULL::bigint;
                i := j;
                CONTINUE;
            END IF;
            -- The runtime's (fenced) appends extend their streams: a version
            -- at or below the stream's last is refused, as on LMDB.
            FOR x IN i .. j - 1 LOOP
                h := e_stream[x];
                IF heads_max[h] >= e_version[x] THEN
                    refused[a] := true;
                    RETURN QUERY SELECT a, 'behind'::text, e_id[x], e_version[x],
                        NULL::text, NULL::bigint, heads_max[h], NULL::bigint;
                    EXIT;
                END IF;
            END LOOP;
            IF refused[a] THEN
                i := j;
                CONTINUE;
            END IF;
        END IF;
        bad := NULL;
        FOR x IN i .. j - 1 LOOP
            IF (e_id[x] || ' ' || e_version[x]) = ANY(taken) THEN
                bad := x;
                why := 'taken';
                EXIT;
            END IF;
        END LOOP;
        IF bad IS NULL AND j - i > 1 THEN
            <<twins>>
            FOR x IN i .. j - 1 LOOP
                FOR y IN x + 1 .. j - 1 LOOP
                    IF e_id[x] = e_id[y] AND e_version[x] = e_version[y] THEN
                        bad := x;
                        why := 'twice';
                        EXIT twins;
                    END IF;
                END LOOP;
            END LOOP;
        END IF;
        IF bad IS NOT NULL THEN
            refused[a] := true;
            RETURN QUERY SELECT a, why, e_id[bad], e_version[bad],
                NULL::text, NULL::bigint, NULL::bigint, NULL::bigint;
        ELSE
            taken := taken || ARRAY(SELECT e_id[g] || ' ' || e_version[g]
                                    FROM generate_series(i, j - 1) AS s(g));
            FOR x IN i .. j - 1 LOOP
                h := e_stream[x];
                heads_max[h] := greatest(heads_max[h], e_version[x]);
            END LOOP;
        END IF;
        i := j;
    END LOOP;

    SELECT t.notification_id, t.log_hash INTO last_id, last_log
      FROM {schema}.{table} t ORDER BY t.notification_id DESC LIMIT 1;
    last_id := coalesce(last_id, 0);
    first_id_before := last_id;
    last_log := coalesce(last_log, zero);
    FOR x IN 1 .. n_events LOOP
        CONTINUE WHEN refused[e_append[x]];
        h := e_stream[x];
        last_id := last_id + 1;
        -- journal._chain: the key and the topic's bytes come from the client.
        digest := sha256(heads_hash[h] || e_key[x] || int8send(last_id)
                         || e_topic_bytes[x] || e_state[x]);
        heads_hash[h] := digest;
        last_log := sha256(last_log || int8send(last_id) || e_key[x] || digest);
        o_nid[x] := last_id;
        o_hash[x] := digest;
        o_log[x] := last_log;
    END LOOP;
    IF last_id > first_id_before THEN
        INSERT INTO {schema}.{table} (originator_id, originator_version, topic,
            state, notification_id, hash, log_hash)
        SELECT u.id, u.v, u.topic, u.state, u.nid, u.hash, u.log
          FROM unnest(e_id, e_version, e_topic, e_state, o_nid, o_hash, o_log)
            AS u(id, v, topic, state, nid, hash, log)
         WHERE u.nid IS NOT NULL;
        INSERT INTO {schema}.{heads} (events_table, notification_id, log_hash)
        VALUES ({table_name}, last_id, last_log)
        ON CONFLICT (events_table) DO UPDATE
        SET notification_id = EXCLUDED.notification_id, log_hash = EXCLUDED.log_hash;
        PERFORM pg_notify({channel}, '');
    END IF;
    -- The admitted appends' events have the ids from here on, in order.
    RETURN QUERY SELECT 0, 'ok'::text, NULL::text, NULL::bigint,
        NULL::text, NULL::bigint, NULL::bigint, first_id_before + 1;
END
$fn$
"""


def append_function(
    schema: str, table: str, heads: str, leases: str, channel: str
) -> Composed:
    """The statement that creates (or replaces) ``table``'s append function."""
    return SQL(_FUNCTION).format(
        schema=Identifier(schema),
        table=Identifier(table),
        heads=Identifier(heads),
        leases=Identifier(leases),
        function=Identifier(function_name(table)),
        table_name=Literal(table),
        channel=Literal(channel),
    )


def function_name(table: str) -> str:
    return f"{table}_append"


# The call's parameters, in order: each one's element kind and array type oid.
_INT4, _INT8, _TEXT, _BYTEA = "int4", "int8", "text", "bytea"
_PARAMS: Final = (
    _INT4, _TEXT, _INT8, _TEXT, _BYTEA, _BYTEA, _BYTEA, _INT4,
    _TEXT, _INT8, _INT4, _INT8,
)  # fmt: skip
_ELEMENT_OID: Final = {_INT4: 23, _INT8: 20, _TEXT: 25, _BYTEA: 17}
_ARRAY_OID: Final = {_INT4: 1007, _INT8: 1016, _TEXT: 1009, _BYTEA: 1001}
_ROW: Final = ("append", "outcome", "stream", "version", "owner", "token", "held",
               "first_id")  # fmt: skip
_INT_COLUMNS: Final = frozenset({0, 3, 5, 6, 7})
_LENGTH = struct.Struct(">i")
_HEADER = struct.Struct(">iiiii")  # dimensions, has nulls, oid, size, lower bound
_EMPTY = struct.Struct(">iii")
_NULL: Final = _LENGTH.pack(-1)
_NO_SUCH_STATEMENT: Final = b"26000"  # invalid_sql_statement_name
_PREPARED_ALREADY: Final = b"42P05"  # duplicate_prepared_statement


class AppendCall:
    """The call of one events table's append function, on a connection of the
    recorder's pool: prepared on each connection the first time, run with
    libpq's ``PQexecPrepared`` (one round trip; the connection autocommits, so
    the function's statement is its own transaction).

    psycopg drops every prepared statement of a session (``DEALLOCATE ALL``)
    after it sees a rollback there, ours included: a call that finds its
    statement gone prepares it again. A session another recorder of the same
    table prepared it on (one pool, one schema) uses theirs."""

    def __init__(self, schema: str, table: str) -> None:
        function = f"{_quoted(schema)}.{_quoted(function_name(table))}"
        placeholders = ", ".join(f"${n}" for n in range(1, len(_PARAMS) + 1))
        self.statement = f"SELECT * FROM {function}({placeholders})".encode()
        self.name = f"chronik_append_{table}".encode()
        self._types = [_ARRAY_OID[kind] for kind in _PARAMS]
        self._prepared: weakref.WeakSet[Any] = weakref.WeakSet()  # their pgconns

    def run(
        self,
        conn: Connection[Any],
        appends: Sequence[tuple[Sequence[StoredEvent], Fence | None]],
    ) -> list[tuple[list[int] | None, BaseException | None]]:
        """Commit ``appends`` as one group: each one's outcome (see ``outcomes``).
        Raises psycopg's error if the call failed whole."""
        encoding = conn.info.encoding
        params = binary_arrays(call_params(appends), encoding)
        pgconn = conn.pgconn
        formats = [pq.Format.BINARY] * len(params)
        if pgconn not in self._prepared:
            self._prepare(pgconn, encoding)
        result = pgconn.exec_prepared(self.name, params, formats, pq.Format.TEXT)
        if result.error_field(pq.DiagnosticField.SQLSTATE) == _NO_SUCH_STATEMENT:
            # Deallocated by someone (DEALLOCATE ALL, DISCARD ALL): again, once.
            self._prepare(pgconn, encoding)
            result = pgconn.exec_prepared(self.name, params, formats, pq.Format.TEXT)
        self._check(result, encoding)
        rows = [
            {
                name: _column(result.get_value(row, column), column, encoding)
                for column, name in enumerate(_ROW)
            }
            for row in range(result.ntuples)
        ]
        return outcomes(appends, rows)

    def _prepare(self, pgconn: pq.abc.PGconn, encoding: str) -> None:
        result = pgconn.prepare(self.name, self.statement, self._types)
        if result.error_field(pq.DiagnosticField.SQLSTATE) != _PREPARED_ALREADY:
            self._check(result, encoding)
        self._prepared.add(pgconn)

    @staticmethod
    def _check(result: pq.abc.PGresult, encoding: str) -> None:
        ok = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
        if result.status not in ok:
            raise error_from_result(result, encoding=encoding)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column(value: bytes | None, column: int, encoding: str) -> Any:
    if value is None:
        return None
    return int(value) if column in _INT_COLUMNS else value.decode(encoding)


def binary_arrays(params: Sequence[Sequence[Any]], encoding: str) -> list[bytes]:
    """The call's parameters (``call_params``) in PostgreSQL's binary format of
    one-dimensional arrays: a header, then each element's length and bytes (a
    length of -1 for NULL; text in the connection's ``encoding``)."""
    return [
        _array(kind, values, encoding)
        for kind, values in zip(_PARAMS, params, strict=True)
    ]


def _array(kind: str, values: Sequence[Any], encoding: str) -> bytes:
    oid = _ELEMENT_OID[kind]
    if not values:
        return _EMPTY.pack(0, 0, oid)
    header = _HEADER.pack(1, 0, oid, len(values), 1)
    if kind == _TEXT:
        values = [value.encode(encoding) for value in values]
    if kind in (_TEXT, _BYTEA):
        parts = [header]
        for value in values:
            parts += (_LENGTH.pack(len(value)), value)
        return b"".join(parts)
    size, code = (4, "i") if kind == _INT4 else (8, "q")
    if None in values:
        element = struct.Struct(">i" + code)
        body = [_NULL if v is None else element.pack(size, v) for v in values]
        return _HEADER.pack(1, 1, oid, len(values), 1) + b"".join(body)
    pairs = itertools.chain.from_iterable((size, value) for value in values)
    return header + struct.pack(">" + ("i" + code) * len(values), *pairs)


def call_params(
    appends: Sequence[tuple[Sequence[StoredEvent], Fence | None]],
) -> tuple[list[Any], ...]:
    """The call's arrays: the events (each with its append's ordinal, from 1,
    and the bytes of its key and its topic as ``journal._chain`` hashes them)
    and each append's fence (partition and token, or NULLs)."""
    ordinals: list[int] = []
    ids: list[str] = []
    versions: list[int] = []
    topics: list[str] = []
    states: list[bytes] = []
    keys: list[bytes] = []
    topics_bytes: list[bytes] = []
    partitions: list[int | None] = []
    tokens: list[int | None] = []
    firsts: dict[str, int] = {}  # each stream's lowest version, in order seen
    places: dict[str, int] = {}  # each stream's place in firsts, from 1
    streams: list[int] = []
    for ordinal, (events, fence) in enumerate(appends, start=1):
        for event in events:
            ordinals.append(ordinal)
            stream, version = str(event.originator_id), event.originator_version
            ids.append(stream)
            firsts[stream] = min(firsts.get(stream, version), version)
            streams.append(places.setdefault(stream, len(places) + 1))
            versions.append(version)
            topics.append(event.topic)
            states.append(event.state)
            keys.append(text_event_key(stream, version))
            topics_bytes.append(topic_bytes(event.topic))
        partitions.append(None if fence is None else fence.partition)
        tokens.append(None if fence is None else fence.token)
    return (
        ordinals,
        ids,
        versions,
        topics,
        states,
        keys,
        topics_bytes,
        streams,
        list(firsts),
        list(firsts.values()),
        partitions,
        tokens,
    )


def topic_bytes(topic: str) -> bytes:
    """A topic as ``journal._chain.event_hash`` hashes it: length, then UTF-8."""
    encoded = topic.encode("utf-8")
    return _TOPIC_LENGTH.pack(len(encoded)) + encoded


def outcomes(
    appends: Sequence[tuple[Sequence[StoredEvent], Fence | None]],
    rows: Sequence[dict[str, Any]],
) -> list[tuple[list[int] | None, BaseException | None]]:
    """Each append's notification ids (None for none), or why it was refused:
    the admitted appends' events have consecutive ids from the group's first,
    in order."""
    by_append = {int(row["append"]): row for row in rows}
    next_id = by_append[0]["first_id"]
    found: list[tuple[list[int] | None, BaseException | None]] = []
    for ordinal, (events, fence) in enumerate(appends, start=1):
        row = by_append.get(ordinal)
        if row is None:  # admitted
            ids = list(range(next_id, next_id + len(events))) or None
            next_id += len(events)
            found.append((ids, None))
            continue
        outcome = row["outcome"]
        if outcome == FENCED:
            assert fence is not None
            error: BaseException = FencedOutError(
                row["stream"], fence.partition, fence.token, row["token"], row["owner"]
            )
            found.append((None, error))
        else:
            reason = {
                TWICE: "the batch holds it twice",
                BEHIND: f"the stream already has version {row['held']}; a stream's "
                "versions are appended in ascending order",
            }.get(
                outcome,
                "the stream already has this version (another writer stored it, or "
                "is storing it in the same transaction)",
            )
            error = EventConflictError(row["stream"], row["version"], reason)
            found.append((None, error))
    return found
