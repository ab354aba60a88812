#!/usr/bin/env python3
"""End to end: `cinch run` re-keys an input topic that is not keyed by agent.

The OpenTelemetry traces of `otlp_e2e.py` (two agents' conversations as OTLP protobuf export
requests, one of them malformed) go to a topic of three partitions the way the Collector's Kafka
exporter spreads them by trace id: every agent's conversations are in several partitions. cinch,
with the topic in `kafka.unkeyed_topics`, must create the repartition topic itself (with the
input's three partitions) on the real broker, send every tool call there under its agent, and
score it from there. Checked:
- cinch created `<group>-<topic>-repartition` with the input's partition count;
- every `execute_tool` span became exactly one score line, for its own agent, and the run's
  summary counts as many events re-keyed;
- tool calls sent before the agent run that holds them joined it at the re-keying;
- the malformed message, and only it, was dead-lettered, with its input position;
- fleet knowledge is shared through a fleet topic by the engines of the repartition topic's
  partitions (one of them, without events, advanced by the idle rule);
- the committed offsets reach the end of the unkeyed topic.
Event-time ordering and equality with keyed input are checked in `tests/kafka_mock.rs`.
"""

import os
import re
import sys
import zlib

from confluent_kafka import Consumer, TopicPartition

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from kafka_e2e import conclude, fleet_records, log, parser, produce, topic, Outputs
from otlp_e2e import create_topics, inputs, run_until, tool_call_failures, write_config

PREFIX = "unkeyed"
SPANS_TOPIC = "unkeyed_spans"
PARTITIONS = 3


def trace_partition(msg):
    """The partition of an export request by its first span's trace id (0 if it is not one)."""
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(msg)
        trace = req.resource_spans[0].scope_spans[0].spans[0].trace_id
    except Exception:
        return 0
    return zlib.crc32(trace) % PARTITIONS


def committed(broker, group):
    c = Consumer({"bootstrap.servers": broker, "group.id": group})
    got = c.committed([TopicPartition(SPANS_TOPIC, p) for p in range(PARTITIONS)], timeout=10)
    c.close()
    return {tp.partition: tp.offset for tp in got if tp.offset >= 0}


def partitions_of(broker, name):
    c = Consumer({"bootstrap.servers": broker, "group.id": "e2e-unkeyed-meta"})
    md = c.list_topics(name, timeout=10).topics.get(name)
    c.close()
    return 0 if md is None or md.error is not None else len(md.partitions)


def main():
    ap = parser()
    a = ap.parse_args()

    msgs, agents, _other, _injected, _bad_index, split = inputs()
    placed = [(trace_partition(m), None, m) for m in msgs]
    spread = {p for p, _, _ in placed}
    log(f"unkeyed: {len(msgs)} export requests on {SPANS_TOPIC}, spread by trace id over partitions "
        f"{sorted(spread)}: {len(agents)} execute_tool spans, 1 malformed message")
    create_topics(a.tansu, a.broker, SPANS_TOPIC, PARTITIONS, PREFIX)
    ends = produce(a.broker, SPANS_TOPIC, placed)
    repartition = f"{PREFIX}-{SPANS_TOPIC}-repartition"
    if partitions_of(a.broker, repartition):
        sys.exit(f"FAIL: unkeyed: {repartition} exists before cinch runs")

    cfg = os.path.join(a.work, f"{PREFIX}.toml")
    # The topic was produced before the run: its partitions are read one after another, not in
    # step, so holding events back for order would hold most of them to the end.
    # Fleet knowledge is shared through a fleet topic, as a deployment over several instances
    # shares it: the engines are those of the repartition topic's partitions. Two agents leave
    # one of its three partitions without events, so the idle rule advances it.
    write_config(cfg, a.broker, PREFIX, SPANS_TOPIC,
                 f'unkeyed_topics = ["{SPANS_TOPIC}"]\nrepartition_order_secs = 0\n'
                 f'fleet_topic = "{topic(PREFIX, "fleet")}"\nfleet_idle_secs = 2\n')
    out = Outputs(a.broker, PREFIX)
    rc, took, summary = run_until(
        a.cinch, cfg, os.path.join(a.work, f"{PREFIX}.log"), out,
        lambda: (len(out.scored()) >= len(agents) and out.records["dead-letters"]
                 and committed(a.broker, PREFIX) == ends),
        "unkeyed",
        lambda: f"{len(out.scored())}/{len(agents)} scored, {len(out.records['dead-letters'])} dead letters")
    log(f"unkeyed: caught up in {took:.1f} s, exit code {rc}")

    failures = []
    if rc != 0:
        failures.append(f"cinch run exited with {rc} on SIGTERM")
    made = partitions_of(a.broker, repartition)
    if made != PARTITIONS:
        failures.append(f"{repartition} has {made} partitions, expected {PARTITIONS} (the input's)")
    scores, wrong = tool_call_failures(out, agents)
    failures += wrong
    dead = out.records["dead-letters"]
    if len(dead) != 1 or not str(dead[0].get("source", "")).startswith(f"{SPANS_TOPIC}/"):
        failures.append(f"expected one dead letter from {SPANS_TOPIC}, got {dead}")
    # Tool calls sent before the agent run that holds them (in a later request of the same
    # trace, so of the same partition) joined it at the re-keying.
    j = re.search(r"(\d+) joined with an ancestor from a later request, (\d+) released without it", summary)
    if not j or (int(j.group(1)), int(j.group(2))) != (split, 0):
        failures.append(f"the run's summary does not count {split} tool calls joined with their agent run: "
                        f"{j.group(0) if j else 'no join counts'}")
    m = re.search(r"unkeyed input: (\d+) events re-keyed by agent", summary)
    if not m or int(m.group(1)) != len(agents):
        failures.append(f"the run's summary does not count {len(agents)} events re-keyed: "
                        f"{m.group(0) if m else 'no unkeyed input line'}")
    members, _ = fleet_records(a.broker, topic(PREFIX, "fleet"), "e2e-unkeyed-fleet")
    if not members or any(not m.startswith(f"{repartition}/") for m in members):
        failures.append(f"the fleet topic holds records of {sorted(members)}, expected partitions of {repartition}")
    fleet = re.search(r"fleet: (\d+) fleet-topic records published, (\d+) idle partitions advanced", summary)
    if not fleet or int(fleet.group(1)) == 0:
        failures.append(f"the run's summary counts no fleet-topic record published: "
                        f"{fleet.group(0) if fleet else 'no fleet line'}")
    offsets = committed(a.broker, PREFIX)
    if offsets != ends:
        failures.append(f"committed offsets {offsets} do not reach the input's end {ends}")
    log(f"unkeyed: {repartition} created with {made} partitions; scored {len(scores)}/{len(agents)} "
        f"tool calls once each under their agents; {len(dead)} dead letter; "
        f"{m.group(0) if m else 'no re-key count'}; fleet topic records from {sorted(members)} "
        f"({fleet.group(0) if fleet else 'no fleet line'})")
    conclude("unkeyed", failures, "the repartition topic created by cinch, every tool call re-keyed and scored "
             "once under its agent, fleet knowledge shared by the repartition partitions through a fleet "
             "topic, the malformed message dead-lettered, offsets committed to the end")


if __name__ == "__main__":
    main()
