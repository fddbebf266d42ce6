/**
 * A client on the minority side of the chaos run's partition: started inside the cut-off
 * node's network namespace, connected to that node only, it publishes numbered messages to
 * the probe stream (whose leader the run moved to that node) until SIGTERM, and prints one
 * line per publish: `ack <n> <stream seq> <unix ms>` when the cluster acknowledged it,
 * `fail <n> <unix ms> <why>` when not. Every acknowledged one must be in the stream after
 * the heal (scripts/chaos/partition.ts checks).
 *
 * Usage: tsx scripts/chaos/minority-client.ts <nats url> <subject prefix>
 */
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long one publish waits for its acknowledgement, ms. */
const ACK_TIMEOUT_MS = 1_000;
/** The pause between publishes, ms. */
const EVERY_MS = 50;

const [url, prefix] = process.argv.slice(2);
if (!url || !prefix) {
  console.error('usage: minority-client <nats url> <subject prefix>');
  process.exit(2);
}

let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
});

// Reconnects to its own node only, which is all it can reach during the partition.
const nc = await connect({ servers: [url], maxReconnectAttempts: -1, reconnectTimeWait: 200, timeout: 3_000 });
const js = jetstream(nc);
for (let n = 1; !stopping; n++) {
  try {
    const ack = await js.publish(`${prefix}.${n}`, String(n), { msgID: `${prefix}-${n}`, timeout: ACK_TIMEOUT_MS });
    console.log(`ack ${n} ${ack.seq} ${Date.now()}`);
  } catch (err) {
    console.log(`fail ${n} ${Date.now()} ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  await sleep(EVERY_MS);
}
await nc.close();
process.exit(0);
