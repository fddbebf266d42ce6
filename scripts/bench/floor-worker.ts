/**
 * The floor's worker (see floor.ts): a bare stand-in for the processor, in a process of its
 * own, doing for each command only what the performance issue counts as one
 * hello_workflow's least work, with the same clients the engine uses and nothing of the
 * engine: the command's delivery from its partition's consumer, one SayHello call (with an
 * idempotency key), one durable write of the outcome (a KV create, replicated on three
 * nodes), the outcome announced on core NATS, and the command acknowledged.
 *
 * Environment: NATS_URL (servers, comma-separated), HELLO_ADDRESS, FLOOR_STREAM,
 * FLOOR_BUCKET, FLOOR_PARTITIONS (the partitions whose consumers it pulls, e.g. `0,1,2,3`).
 * Stops on SIGTERM or SIGINT.
 */
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connectNats, createGrpcInvoker, createLogger, errorMessage, loadServiceRegistry } from '../../packages/core/src/index.js';
import { isWrongLastSequence } from '../../packages/core/src/nats/state-store.js';
import { FLOOR_DONE_PREFIX, floorConsumer } from './floor.js';

const log = createLogger({ name: 'floor-worker' });
const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const stream = env('FLOOR_STREAM');
const nc = await connectNats({ servers: env('NATS_URL').split(','), name: 'durable-bench-floor', maxAttempts: 3 });
const js = jetstream(nc);
const kv = await new Kvm(nc).open(env('FLOOR_BUCKET'));
const services = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: env('HELLO_ADDRESS') } }));
const encoder = new TextEncoder();

const pulls = await Promise.all(
  env('FLOOR_PARTITIONS')
    .split(',')
    .map(async (partition) => (await js.consumers.get(stream, floorConsumer(Number(partition)))).consume({ max_messages: 256 })),
);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  for (const messages of pulls) messages.stop();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
log.info(`Floor worker started: partitions ${env('FLOOR_PARTITIONS')}`);

await Promise.all(
  pulls.map(async (messages) => {
    for await (const m of messages) {
      const id = m.subject.slice(m.subject.lastIndexOf('.') + 1);
      void (async () => {
        try {
          const reply = await services.call('HelloService', 'SayHello', { name: 'bench' }, { metadata: { 'idempotency-key': `${id}:0` } });
          const outcome = encoder.encode(JSON.stringify(reply));
          // Created already: an earlier delivery wrote it and stopped before its acknowledgement.
          await kv.create(id, outcome).catch((err: unknown) => {
            if (!isWrongLastSequence(err)) throw err;
          });
          nc.publish(`${FLOOR_DONE_PREFIX}.${id}`, outcome);
          m.ack();
        } catch (err) {
          log.error(`Command ${id} failed, delivered again: ${errorMessage(err)}`);
          m.nak(1_000);
        }
      })();
    }
  }),
);
services.close();
await nc.drain();
log.info('Floor worker stopped');
