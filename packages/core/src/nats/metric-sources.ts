/**
 * Where the processor's scrape-time gauges come from: counts the server keeps (the execution
 * index's per-subject counts, the command consumers' info, a consumer's pending count on the
 * timers' subjects), never a walk through records.
 */
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { WorkflowQueries } from '../client/query.js';
import type { MetricSources } from '../observability/metrics.js';
import { partitionConsumer, type EngineResources } from './setup.js';

/** How long the counting consumer of the timers outlives the last scrape, ns. */
const COUNTER_INACTIVE_NS = 3_600 * 1e9;

/** The gauges' sources of one processor. */
export function natsMetricSources(nc: NatsConnection, resources: EngineResources): MetricSources {
  const { jsm, names, consumerName, partitions, replicas } = resources;
  const queries = new WorkflowQueries({ nc, names, stateKv: resources.stateKv });
  return {
    invocationsByStatus: async () => (await queries.stats()).byStatus,
    async consumers() {
      const infos = await Promise.all(Array.from({ length: partitions }, (_, p) => jsm.consumers.info(names.commandsStream, partitionConsumer(consumerName, p))));
      let pending = 0;
      let redelivered = 0;
      let ackPending = 0;
      for (const info of infos) {
        pending += info.num_pending;
        redelivered += info.num_redelivered;
        ackPending += info.num_ack_pending;
      }
      return { pending, redelivered, ackPending };
    },
    async timersPending() {
      // A consumer that is never pulled: its pending count is the number of timers stored.
      // Made once (the same config again is no change) with the stream's replicas, as a work
      // queue stream requires; it goes away an hour after the last scrape.
      const info = await jsm.consumers.add(names.commandsStream, {
        durable_name: `${consumerName}-timers-gauge`,
        filter_subject: `${names.timersSubject}.>`,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        num_replicas: replicas,
        inactive_threshold: COUNTER_INACTIVE_NS,
      });
      return info.num_pending;
    },
  };
}
