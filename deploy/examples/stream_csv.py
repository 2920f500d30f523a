#!/usr/bin/env python3
"""Stream a CSV file to koopstream over the WebSocket, in protobuf.

The example gateway: it creates the stream over HTTP (standard library urllib), opens
/v1/streams/{id}/ws with the subprotocol koopstream.v1.proto, sends the CSV as
koopstream.v1.SampleBatch messages in binary frames, and prints one line per
acknowledgement. Any refusal, HTTP error or protocol surprise exits non-zero.

The CSV has a header: an optional first column `t` (seconds), then one column per
channel; an empty cell or NaN is a missing value (sent as NaN, which the server treats
like a JSON null).

The protobuf message classes are built at run time from the schemas in proto/ (the
protoc bundled in the grpcio-tools wheel compiles them to a descriptor set, which the
protobuf runtime turns into classes), so no generated code is kept anywhere and the
client always speaks the schemas of the checkout it runs from. Everything works offline
once `pip install -r requirements.txt` is done.
"""

import argparse
import asyncio
import csv
import json
import math
import os
import sys
import tempfile
import urllib.error
import urllib.request

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc
from websockets.asyncio.client import connect

SUBPROTOCOL = "koopstream.v1.proto"
DEFAULT_PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")


class ClientError(Exception):
    """A failure the client reports and exits non-zero for."""


def load_messages(proto_dir):
    """Compiles proto_dir/koopstream/v1/*.proto and returns the message classes by name."""
    schema_dir = os.path.join(proto_dir, "koopstream", "v1")
    try:
        schemas = sorted(f"koopstream/v1/{name}" for name in os.listdir(schema_dir) if name.endswith(".proto"))
    except OSError as e:
        raise ClientError(f"no schemas in {schema_dir}: {e}") from e
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "koopstream.binpb")
        # argv[0] is the program name protoc reports errors under; it prints them itself.
        if protoc.main(["protoc", f"-I{proto_dir}", f"--descriptor_set_out={out}", "--include_imports", *schemas]) != 0:
            raise ClientError(f"the schemas in {schema_dir} do not compile")
        with open(out, "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file
    pool = descriptor_pool.DescriptorPool()
    for file in files:  # --include_imports lists dependencies first
        pool.AddSerializedFile(file.SerializeToString())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"koopstream.v1.{name}"))
        for name in ("SampleBatch", "ServerMessage")
    }


def read_csv(path):
    """Returns (channel names, time stamps or None, rows of floats with NaN for missing)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = [c.strip() for c in next(reader)]
        except StopIteration:
            raise ClientError(f"{path}: empty file; expected a header `t,<channels>`") from None
        timed = header[0] == "t"
        channels = header[1:] if timed else header
        if not channels:
            raise ClientError(f"{path}: the header names no channel")
        times, rows = [], []
        for line, cells in enumerate(reader, start=2):
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise ClientError(f"{path} line {line}: {len(cells)} cells, the header has {len(header)}")
            values = []
            for name, cell in zip(header, cells):
                cell = cell.strip()
                try:
                    values.append(math.nan if cell == "" else float(cell))
                except ValueError:
                    raise ClientError(f"{path} line {line}, column `{name}`: `{cell}` is not a number") from None
            if timed:
                if math.isnan(values[0]):
                    raise ClientError(f"{path} line {line}: column `t` is empty")
                times.append(values.pop(0))
            rows.append(values)
    return channels, (times if timed else None), rows


def auth_headers(token):
    """The bearer token's header, when the server wants one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def http_json(method, url, body=None, token=None):
    """Sends a JSON request; returns the decoded answer or raises ClientError with the problem."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **auth_headers(token)}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        raise ClientError(f"{method} {url}: {e.code} {e.read().decode(errors='replace')}") from None
    except urllib.error.URLError as e:
        raise ClientError(f"{method} {url}: {e.reason}") from None


def create_stream(server, stream, channels, ts, extra, token):
    definition = {"id": stream, "channels": [{"name": c} for c in channels], "ts": ts, **extra}
    http_json("POST", f"{server}/v1/streams", definition, token)
    print(f"created stream {stream} with channels {', '.join(channels)}", flush=True)


async def stream_batches(args, messages, channels, times, rows):
    """Sends the rows in batches, one in flight, and prints each acknowledgement."""
    SampleBatch, ServerMessage = messages["SampleBatch"], messages["ServerMessage"]
    url = args.server.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + f"/v1/streams/{args.stream}/ws"
    totals = {"accepted": 0, "missing_value": 0, "out_of_order": 0, "flat_line": 0, "outlier": 0}
    headers = auth_headers(args.token)
    async with connect(url, subprotocols=[SUBPROTOCOL], max_size=None, additional_headers=headers) as ws:
        if ws.subprotocol != SUBPROTOCOL:
            raise ClientError(f"the server did not agree to the {SUBPROTOCOL} subprotocol (got {ws.subprotocol!r})")
        for index, start in enumerate(range(0, len(rows), args.batch)):
            seq = args.first_seq + index
            chunk = rows[start : start + args.batch]
            batch = SampleBatch(stream_id=args.stream, seq=seq, channels=len(channels))
            if args.epoch is not None:
                batch.epoch = args.epoch
            batch.x.extend(v for row in chunk for v in row)
            if times is not None:
                batch.t.extend(times[start : start + args.batch])
            elif args.ts is not None:
                # No `t` column: sample k of the file is at k Ts (the server refuses untimed
                # batches unless the stream allows implicit timing).
                batch.t0 = start * args.ts
            await ws.send(batch.SerializeToString())
            while True:
                frame = await ws.recv()
                if not isinstance(frame, bytes):
                    raise ClientError(f"expected a binary frame under {SUBPROTOCOL}, got text: {frame[:200]}")
                reply = ServerMessage.FromString(frame)
                kind = reply.WhichOneof("message")
                if kind == "summary":
                    continue  # model summaries arrive at the eigen cadence; not needed here
                if kind == "alarm":
                    a = reply.alarm
                    print(
                        f"alarm mode={a.mode} {getattr(a, 'from') or 'none'} -> {a.to or 'none'} "
                        f"t={a.t} damping={a.reading.damping_ratio:.4f}",
                        file=sys.stderr,
                        flush=True,
                    )
                    continue
                if kind == "mode_changed":
                    continue  # a tracked mode moved; GET /v1/streams/{id}/modes has it
                if kind == "error":
                    p = reply.error.problem
                    raise ClientError(f"batch seq={seq} refused: {p.status} {p.title}: {p.detail}")
                if kind != "ack":
                    raise ClientError(f"unexpected server message: {reply}")
                ack = reply.ack
                if ack.seq != seq:
                    raise ClientError(f"acknowledgement for seq={ack.seq}, expected {seq}")
                print(
                    f"ack seq={ack.seq} accepted={ack.accepted} duplicate={str(ack.duplicate).lower()} "
                    f"out_of_order={ack.out_of_order} missing_value={ack.missing_value} flat_line={ack.flat_line} "
                    f"outlier={ack.outlier} version={ack.version}",
                    flush=True,
                )
                for key in totals:
                    totals[key] += getattr(ack, key)
                break
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8080", help="base URL of the service")
    parser.add_argument("--stream", required=True, help="stream id")
    parser.add_argument("--csv", required=True, help="CSV file with a header `t,<channels>`")
    parser.add_argument("--ts", type=float, help="sample time in seconds (required to create the stream)")
    parser.add_argument("--definition", default="{}", help="more fields of the create request, as JSON")
    parser.add_argument("--no-create", action="store_true", help="the stream exists already")
    parser.add_argument("--batch", type=int, default=100, help="samples per batch")
    parser.add_argument("--first-seq", type=int, default=1, help="seq of the first batch")
    parser.add_argument(
        "--epoch", type=int, help="producer epoch: raise it when restarting the numbering of a stream that has data"
    )
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR, help="the repository's proto/ directory")
    parser.add_argument(
        "--token",
        default=os.environ.get("KOOPSTREAM_TOKEN"),
        help="bearer token (default: $KOOPSTREAM_TOKEN); `ingest` scope, and `admin` to create the stream",
    )
    args = parser.parse_args()
    args.server = args.server.rstrip("/")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if not args.no_create and args.ts is None:
        parser.error("--ts is required to create the stream (or pass --no-create)")
    try:
        extra = json.loads(args.definition)
        if not isinstance(extra, dict):
            raise ValueError("not an object")
    except ValueError as e:
        parser.error(f"--definition is not a JSON object: {e}")
    try:
        messages = load_messages(args.proto_dir)
        channels, times, rows = read_csv(args.csv)
        if not args.no_create:
            create_stream(args.server, args.stream, channels, args.ts, extra, args.token)
        totals = asyncio.run(stream_batches(args, messages, channels, times, rows))
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # connection failures, closed sockets: reported, never a traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(
        f"done: {len(rows)} samples sent, {totals['accepted']} accepted, "
        f"{totals['missing_value']} missing, {totals['out_of_order']} out of order, "
        f"{totals['flat_line']} on a flat line, {totals['outlier']} outliers",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
