/**
 * NATS messages sent and received by named connections, from the servers' `/connz`
 * monitoring: how many round trips to the cluster one invocation costs each process.
 */

/** Messages a connection sent to the servers (`in_msgs`) and received from them (`out_msgs`). */
export interface MessageCounts {
  sent: number;
  received: number;
}

interface Connz {
  connections?: { name?: string; in_msgs?: number; out_msgs?: number; subscriptions_list?: string[] }[];
}

/** Every server's `/connz` answer, in the order of `monitors`; with `subs`, each connection's subscriptions too. */
async function connz(monitors: readonly string[], subs = false): Promise<Connz[]> {
  return Promise.all(
    monitors.map(async (m) => (await (await fetch(`${m}/connz?limit=4096${subs ? '&subs=1' : ''}`, { signal: AbortSignal.timeout(5_000) })).json()) as Connz),
  );
}

/** Counts of every connection named in `names`, summed over the servers; a name not found is absent. */
export async function messageCounts(monitors: readonly string[], names: readonly string[]): Promise<Map<string, MessageCounts>> {
  const counts = new Map<string, MessageCounts>();
  for (const answer of await connz(monitors)) {
    for (const conn of answer.connections ?? []) {
      if (conn.name === undefined || !names.includes(conn.name)) continue;
      const c = counts.get(conn.name) ?? { sent: 0, received: 0 };
      c.sent += conn.in_msgs ?? 0;
      c.received += conn.out_msgs ?? 0;
      counts.set(conn.name, c);
    }
  }
  return counts;
}

/** Which node (index into `monitors`) holds each connection named in `names`. */
export async function connectionNodes(monitors: readonly string[], names: readonly string[]): Promise<Map<string, number>> {
  const nodes = new Map<string, number>();
  (await connz(monitors)).forEach((answer, i) => {
    for (const conn of answer.connections ?? []) if (conn.name !== undefined && names.includes(conn.name)) nodes.set(conn.name, i);
  });
  return nodes;
}

/** Per-connection difference, divided by `per`. */
export function messagesBetween(before: Map<string, MessageCounts>, after: Map<string, MessageCounts>, per: number): Map<string, MessageCounts> {
  const out = new Map<string, MessageCounts>();
  for (const [name, end] of after) {
    const start = before.get(name);
    if (!start) continue;
    out.set(name, { sent: (end.sent - start.sent) / per, received: (end.received - start.received) / per });
  }
  return out;
}

/**
 * Messages each processor's connection has sent so far, by processor ID: a processor
 * subscribes to `<pings>.<its ID>` (membership pings), which names its connection.
 */
export async function sentByProcessor(monitors: readonly string[], pings: string): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  for (const answer of await connz(monitors, true)) {
    for (const conn of answer.connections ?? []) {
      const ping = conn.subscriptions_list?.find((s) => s.startsWith(`${pings}.`));
      if (ping !== undefined) sent.set(ping.slice(pings.length + 1), conn.in_msgs ?? 0);
    }
  }
  return sent;
}
