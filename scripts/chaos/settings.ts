/**
 * The settings of a chaos run: how much work, which faults when, on which ports. The full
 * run (`make chaos`) and the short one (`CHAOS_SHORT=1`, run by the test suite) are the same
 * code with other numbers.
 */

/** Base ports; every port of the run is one of these plus an offset. */
export interface ChaosPorts {
  /** NATS client ports `base`..`base+2`; routes at +2000, monitoring at +4000. */
  natsClientPort: number;
  /** HelloService's gRPC port; TicketService at +1; the processors' HTTP APIs at +10... */
  appPort: number;
}

/** When each fault happens, ms after the workload starts, and how long it lasts. */
export interface FaultPlan {
  /** kill -9 a random processor this often (and start it again at once). */
  killEveryMs: number;
  /** Kills happen from `killFromMs` to `faultsUntilMs`. */
  killFromMs: number;
  /** SIGSTOP one processor at this time, for `stopForMs`, then SIGCONT. */
  stopAtMs: number;
  stopForMs: number;
  /** Start a 4th processor at this time, and SIGTERM it at `extraUntilMs`. */
  extraAtMs: number;
  extraUntilMs: number;
  /** kill -9 the NATS node leading the busiest stream at this time, restart it after `nodeDownMs`. */
  nodeKillAtMs: number;
  nodeDownMs: number;
  /** Cut the node leading the busiest stream off at this time (after the node loss), heal it after `partitionForMs`. */
  partitionAtMs: number;
  partitionForMs: number;
  /** Kill HelloService at this time, restart it after `serviceDownMs`. */
  serviceKillAtMs: number;
  serviceDownMs: number;
  /** Send a round of malformed commands and HTTP requests this often. */
  malformedEveryMs: number;
  /** No new fault starts after this. */
  faultsUntilMs: number;
}

/** Everything a chaos run needs to know. */
export interface ChaosSettings {
  /** How many top-level workflows to submit (children not counted). */
  workflows: number;
  /** Per-key ordered (non-exclusive) sequences: keys × invocations each. */
  orderedKeys: number;
  orderedPerKey: number;
  /** Exclusive sequences on a few hot keys: keys × invocations each. */
  exclusiveKeys: number;
  exclusivePerKey: number;
  /** Workflows meant to fail (HelloService answers INVALID_ARGUMENT). */
  meantToFail: number;
  /** Submissions are spread over this long, ms. */
  submitOverMs: number;
  /** The durable sleep of the sleeping workflows, ms. */
  sleepMs: number;
  faults: FaultPlan;
  /** How long to wait for every workflow to end once the faults are over, ms. */
  drainDeadlineMs: number;
  ports: ChaosPorts;
  /** Extra processor flags (`CHAOS_PROCESSOR_ARGS`, e.g. `--ack-wait 10`). */
  processorArgs: string[];
  /** Where the logs of every process go; a temp dir when unset. */
  logDir?: string;
  /** Progress lines go here. */
  log: (line: string) => void;
}

/**
 * How long the stopped processor stays stopped: past its ownership (its heartbeat record
 * expires after 6 s, its partitions' pins after 5 s, its commands' ack wait is 8 s), so its
 * work is taken over while it sleeps.
 */
const STOP_FOR_MS = 15_000;

/** Runs an invocation may take without finishing, in a run that kills a processor every 6 s. */
const CHAOS_MAX_ATTEMPTS = 10;

const FULL: Omit<ChaosSettings, 'ports' | 'processorArgs' | 'log'> = {
  workflows: 1_000,
  orderedKeys: 10,
  orderedPerKey: 10,
  exclusiveKeys: 3,
  exclusivePerKey: 30,
  meantToFail: 10,
  submitOverMs: 75_000,
  sleepMs: 3_000,
  faults: {
    killEveryMs: 6_000,
    killFromMs: 5_000,
    stopAtMs: 20_000,
    stopForMs: STOP_FOR_MS,
    extraAtMs: 30_000,
    extraUntilMs: 70_000,
    nodeKillAtMs: 45_000,
    nodeDownMs: 10_000,
    partitionAtMs: 60_000,
    partitionForMs: 20_000,
    serviceKillAtMs: 62_000,
    serviceDownMs: 30_000,
    malformedEveryMs: 2_000,
    faultsUntilMs: 100_000,
  },
  drainDeadlineMs: 120_000,
};

const SHORT: Omit<ChaosSettings, 'ports' | 'processorArgs' | 'log'> = {
  workflows: 150,
  orderedKeys: 5,
  orderedPerKey: 6,
  exclusiveKeys: 2,
  exclusivePerKey: 10,
  meantToFail: 3,
  submitOverMs: 25_000,
  sleepMs: 2_000,
  faults: {
    killEveryMs: 5_000,
    killFromMs: 3_000,
    stopAtMs: 6_000,
    stopForMs: STOP_FOR_MS,
    extraAtMs: 8_000,
    extraUntilMs: 24_000,
    nodeKillAtMs: 5_000,
    nodeDownMs: 10_000,
    partitionAtMs: 18_000,
    partitionForMs: 10_000,
    serviceKillAtMs: 18_000,
    serviceDownMs: 10_000,
    malformedEveryMs: 2_000,
    faultsUntilMs: 35_000,
  },
  drainDeadlineMs: 90_000,
};

/**
 * The settings from the environment: `CHAOS_SHORT=1` (the short run), `CHAOS_WORKFLOWS`,
 * `CHAOS_NATS_PORT` (default 22522), `CHAOS_APP_PORT` (default 29500), `CHAOS_PROCESSOR_ARGS`,
 * `CHAOS_LOG_DIR`.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): ChaosSettings {
  const base = env.CHAOS_SHORT === '1' ? SHORT : FULL;
  const workflows = intFromEnv(env, 'CHAOS_WORKFLOWS', base.workflows);
  return {
    ...base,
    workflows,
    ports: {
      natsClientPort: intFromEnv(env, 'CHAOS_NATS_PORT', 22_522),
      appPort: intFromEnv(env, 'CHAOS_APP_PORT', 29_500),
    },
    // A kill every 6 s through a 30 s service outage kills one run several times: the limit
    // of attempts (a guard against an invocation that crashes its processor) is raised.
    processorArgs: ['--max-attempts', String(CHAOS_MAX_ATTEMPTS), ...(env.CHAOS_PROCESSOR_ARGS ?? '').split(/\s+/).filter((a) => a !== '')],
    ...(env.CHAOS_LOG_DIR ? { logDir: env.CHAOS_LOG_DIR } : {}),
    log,
  };
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return value;
}
