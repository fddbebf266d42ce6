/**
 * Network namespaces for the nodes of a test cluster (Linux, root): node `i` runs in a
 * namespace of its own, whose `eth0` is one end of a veth pair; the other end is a port of
 * a bridge in the root namespace, which holds the bridge's address. The processes of the
 * root namespace (processors, services, the chaos driver) reach the nodes at their
 * addresses, and the nodes reach each other through the bridge; nothing leaves the machine.
 *
 * Cutting a node off takes its bridge port down: its packets to and from the others and
 * the root namespace are dropped without a word (no reset), as a partition does. Healing
 * brings the port up again. A client inside the node's namespace (`execArgs`) still reaches
 * it: a client on the minority side of the partition.
 *
 * Names and addresses come from the cluster's client port, so two clusters on other ports
 * do not meet, and a run killed without cleaning up is cleaned up by the next on its port:
 * namespaces `durable-<port>-n1..3`, bridge `dur<port>br`, veths `dur<port>n1..3`, subnet
 * `10.<port / 256>.<port % 256>.0/24` (nodes at .1 to .3, the bridge at .254).
 *
 * @example
 * const network = NodeNetwork.forPort(15600);
 * network.setUp(3);
 * spawn('ip', [...network.execArgs(0), 'nats-server', ...]);
 * network.cut(0); // ... network.heal(0);
 * network.tearDown();
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Why namespaces cannot be made here, in one line; undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, not ${process.platform}`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, as CI does)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return '`ip` (iproute2) is not installed';
  }
  return undefined;
}

/** Thrown when an `ip` command fails; the message is its first line of stderr. */
export class NetnsError extends Error {
  override name = 'NetnsError';
}

/** The namespaces, veths and bridge of one cluster. */
export class NodeNetwork {
  readonly #bridge: string;
  readonly #prefix: string;
  readonly #subnet: string;
  #size = 0;

  private constructor(readonly port: number) {
    this.#bridge = `dur${port}br`;
    this.#prefix = `dur${port}`;
    this.#subnet = `10.${Math.floor(port / 256)}.${port % 256}`;
  }

  /** The network of the cluster whose first client port is `port`. */
  static forPort(port: number): NodeNetwork {
    return new NodeNetwork(port);
  }

  /** The namespace of node `i` (0-based). */
  namespace(i: number): string {
    return `durable-${this.port}-n${i + 1}`;
  }

  /** The address of node `i`, as the root namespace and the other nodes reach it. */
  address(i: number): string {
    return `${this.#subnet}.${i + 1}`;
  }

  /** The arguments of `ip` that run a command in node `i`'s namespace: `ip <these> <command...>`. */
  execArgs(i: number): string[] {
    return ['netns', 'exec', this.namespace(i)];
  }

  /**
   * Makes the bridge and a namespace per node, after removing what an earlier run on this
   * port left (its processes killed first).
   * @throws NetnsError naming the `ip` command that failed.
   */
  setUp(size: number): void {
    this.#size = size;
    this.tearDown();
    ip('link', 'add', this.#bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.#subnet}.254/24`, 'dev', this.#bridge);
    ip('link', 'set', this.#bridge, 'up');
    for (let i = 0; i < size; i++) {
      const ns = this.namespace(i);
      ip('netns', 'add', ns);
      ip('link', 'add', this.#veth(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('link', 'set', this.#veth(i), 'master', this.#bridge, 'up');
      ip('-n', ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  }

  /** Cuts node `i` off from the other nodes and the root namespace: its bridge port goes down. */
  cut(i: number): void {
    ip('link', 'set', this.#veth(i), 'down');
  }

  /** Undoes {@link cut}. */
  heal(i: number): void {
    ip('link', 'set', this.#veth(i), 'up');
  }

  /**
   * Removes the namespaces (killing what still runs in them), the veths and the bridge.
   * Synchronous, so it also runs from a process's `exit` handler; never throws.
   */
  tearDown(): void {
    for (let i = 0; i < Math.max(this.#size, 3); i++) {
      const ns = this.namespace(i);
      if (!existsSync(`/run/netns/${ns}`)) continue;
      for (const pid of quietly(() => ip('netns', 'pids', ns)).split(/\s+/).filter((p) => p !== '')) {
        quietly(() => process.kill(Number(pid), 'SIGKILL'));
      }
      quietly(() => ip('netns', 'del', ns));
    }
    for (let i = 0; i < Math.max(this.#size, 3); i++) quietly(() => ip('link', 'del', this.#veth(i)));
    quietly(() => ip('link', 'del', this.#bridge));
  }

  #veth(i: number): string {
    return `${this.#prefix}n${i + 1}`;
  }
}

/** Runs `ip` with these arguments; returns its stdout. */
function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const why = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim().split('\n')[0] : String(err);
    throw new NetnsError(`ip ${args.join(' ')}: ${why}`);
  }
}

/** The result of `fn`, or '' when it throws (cleaning up what may not exist). */
function quietly(fn: () => unknown): string {
  try {
    const out = fn();
    return typeof out === 'string' ? out : '';
  } catch {
    return '';
  }
}
