import { describe, expect, it } from 'vitest';
import { ErrorCode, ServerVersionError } from '../errors.js';
import { compareVersions, MIN_NATS_SERVER_VERSION } from './server-version.js';

describe('nats-server versions', () => {
  it('order by major, minor and patch, numerically', () => {
    expect(compareVersions('2.10.27', '2.12')).toBeLessThan(0);
    expect(compareVersions('2.9.10', '2.12')).toBeLessThan(0);
    expect(compareVersions('2.12.0', '2.12')).toBe(0);
    expect(compareVersions('2.12.1', '2.12')).toBeGreaterThan(0);
    expect(compareVersions('2.15.1', '2.12')).toBeGreaterThan(0);
    expect(compareVersions('3.0.0', '2.12')).toBeGreaterThan(0);
    expect(compareVersions('2.100.0', '2.12')).toBeGreaterThan(0);
    expect(compareVersions('v2.12.0-beta.3', '2.12.0')).toBe(0);
  });

  it('refuse what is older than the minimum, in one line naming both and the way out', () => {
    expect(compareVersions('2.11.9', MIN_NATS_SERVER_VERSION)).toBeLessThan(0);
    const err = new ServerVersionError('2.10.27', '127.0.0.1:4222', MIN_NATS_SERVER_VERSION);
    expect(err.code).toBe(ErrorCode.ServerVersion);
    expect(err.message).toBe(
      'nats-server 2.10.27 at 127.0.0.1:4222 is too old: this engine needs 2.12 or newer (scripts/install-nats-server.sh fetches one)',
    );
  });
});
