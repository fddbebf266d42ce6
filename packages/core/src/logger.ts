/**
 * Logging for the engine and its apps: pino records underneath, printed by default as
 * the usage guide shows them (`2024/11/10 22:00:00 Processor started, ...`).
 * `LOG_FORMAT=json` prints the raw records instead; `LOG_LEVEL` sets the level.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Name recorded on every line (`name` field). */
  name?: string;
  /** Minimum level. @default process.env.LOG_LEVEL ?? 'info' */
  level?: string;
  /** `pretty` for the guide's terminal lines, `json` for raw records. @default process.env.LOG_FORMAT ?? 'pretty' */
  format?: 'pretty' | 'json';
  /** Where lines go. @default standard output */
  destination?: NodeJS.WritableStream;
}

const LEVEL_LABELS: Record<number, string> = { 40: 'WARN ', 50: 'ERROR ', 60: 'FATAL ' };

/** A logger printing the guide's terminal lines, or JSON records with `LOG_FORMAT=json`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const format = options.format ?? (process.env.LOG_FORMAT === 'json' ? 'json' : 'pretty');
  const base = options.name ? { name: options.name } : {};
  const destination = options.destination ?? process.stdout;
  if (format === 'json') {
    // Lines logged while an invocation runs carry its fields (see withLogContext).
    jsonLoggers = true;
    return pino({ level, base, mixin: () => logContext.getStore() ?? NO_FIELDS }, destination);
  }
  const stream = pretty({
    destination,
    sync: true,
    colorize: false,
    hideObject: true,
    // The time is printed by messageFormat: pino-pretty would put a colon after it.
    ignore: 'pid,hostname,name,level,time',
    messageFormat: (log, messageKey) => {
      const label = LEVEL_LABELS[Number(log.level)] ?? '';
      const err = log.err as { message?: string } | undefined;
      const suffix = err?.message && !String(log[messageKey]).includes(err.message) ? `: ${err.message}` : '';
      return `${guideTime(Number(log.time))} ${label}${String(log[messageKey])}${suffix}`;
    },
  });
  return pino({ level, base }, stream);
}

/** Fields of every JSON line logged about one invocation. */
export interface LogContext {
  invocation_id: string;
  workflow: string;
  /** Set once known: from the command's trace context, or the run's span. */
  trace_id?: string;
}

const logContext = new AsyncLocalStorage<LogContext>();
const NO_FIELDS = {};
/**
 * Whether a JSON logger was made in this process. Only JSON lines print the context, and
 * keeping it costs a hook on every promise made while it is set (a twentieth of a busy
 * processor's CPU): without a JSON logger it is not kept.
 */
let jsonLoggers = false;

/**
 * Runs `fn` with `fields` on every JSON log line it leads to, in any logger (the pretty
 * lines do not print them). The fields object stays mutable: a trace ID found later is added.
 */
export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return jsonLoggers ? logContext.run(fields, fn) : fn();
}

/** The fields of the invocation being logged about now, if any. */
export function currentLogContext(): LogContext | undefined {
  return logContext.getStore();
}

/** `2024/11/10 22:00:00`, local time, as the usage guide prints it. */
function guideTime(epochMs: number): string {
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${two(d.getMonth() + 1)}/${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** A logger that prints nothing, for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
