/**
 * The oldest nats-server the engine runs on, and the check every connection makes. Older
 * servers lack what the engine relies on (atomic batch publish and message schedules came
 * in 2.12) and fail later in ways that do not name the cause; a check at connect names it.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { ServerVersionError } from '../errors.js';

/** The oldest nats-server version the engine accepts. */
export const MIN_NATS_SERVER_VERSION = '2.12';

/**
 * Orders two `major.minor.patch` versions (a suffix such as `-beta.1` is ignored; a missing
 * part counts as 0): negative when `a` is older, 0 when equal, positive when newer.
 */
export function compareVersions(a: string, b: string): number {
  const pa = versionParts(a);
  const pb = versionParts(b);
  for (let i = 0; i < 3; i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

function versionParts(version: string): number[] {
  const core = version.trim().replace(/^v/, '').split(/[-+]/)[0] ?? '';
  return core.split('.').map((part) => {
    const n = Number.parseInt(part, 10);
    return Number.isNaN(n) ? 0 : n;
  });
}

/**
 * Fails when the server `nc` is connected to is older than `minimum`.
 * @throws ServerVersionError naming the server's version, its address and the minimum.
 */
export function assertServerVersion(nc: NatsConnection, minimum = MIN_NATS_SERVER_VERSION): void {
  const version = nc.info?.version ?? '';
  if (version !== '' && compareVersions(version, minimum) >= 0) return;
  throw new ServerVersionError(version === '' ? 'of unknown version' : version, nc.getServer(), minimum);
}
