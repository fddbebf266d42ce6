import { mkdtempSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type RunningHelloService,
  greeting,
  startHelloService,
} from '../../../../apps/hello-service/src/hello-service.js';
import { InvalidArgumentError, RetryableError, ServiceCallError, ServiceNotFoundError, isTerminal } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createGrpcInvoker, isTransientStatus } from './grpc-invoker.js';
import type { ServiceInvoker } from './service-invoker.js';
import { loadServiceRegistry } from './service-registry.js';

let hello: RunningHelloService;
let invoker: ServiceInvoker;
const opened: ServiceInvoker[] = [];

/** An invoker closed after the file's tests. */
function open(invokerToTrack: ServiceInvoker): ServiceInvoker {
  opened.push(invokerToTrack);
  return invokerToTrack;
}

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

/** What a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

beforeAll(async () => {
  hello = await startHelloService({ port: 0, host: '127.0.0.1', logger: silentLogger() });
  invoker = open(createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: `127.0.0.1:${hello.port}` } })));
});

afterAll(async () => {
  for (const i of opened) i.close();
  await hello.stop();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('grpc invoker', () => {
  it('calls a service by its simple name and returns the plain-object response', async () => {
    const response = await invoker.call('HelloService', 'SayHello', { name: 'World' });
    expect(response).toEqual({ message: greeting('World') });
    expect(hello.received.at(-1)).toEqual({ name: 'World' });
  });

  it('calls a service by its full name and a method by its camelCase name', async () => {
    const before = hello.calls.get('Full') ?? 0;
    expect(await invoker.call('hello.HelloService', 'sayHello', { name: 'Full' })).toEqual({ message: greeting('Full') });
    expect(hello.calls.get('Full')).toBe(before + 1);
  });

  it('sends the metadata with the call', async () => {
    await invoker.call('HelloService', 'SayHello', { name: 'Keyed' }, { metadata: { 'idempotency-key': 'inv-1:0' } });
    expect(hello.received.at(-1)).toEqual({ name: 'Keyed', idempotencyKey: 'inv-1:0' });
  });

  it('throws ServiceCallError with the status for a non-transient failure', async () => {
    const err = await rejection(invoker.call('HelloService', 'SayHello', { name: '' }));
    expect(err).toBeInstanceOf(ServiceCallError);
    expect(isTerminal(err)).toBe(true);
    expect(err).toMatchObject({ status: Status.INVALID_ARGUMENT, details: 'name is required', service: 'HelloService', method: 'SayHello' });
  });

  it('throws RetryableError when the connection is refused', async () => {
    const refused = open(createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: `127.0.0.1:${await closedPort()}` } })));
    const err = await rejection(refused.call('HelloService', 'SayHello', { name: 'Nobody' }));
    expect(err).toBeInstanceOf(RetryableError);
    expect(isTerminal(err)).toBe(false);
    expect((err as Error).message).toMatch(/^HelloService\.SayHello failed with UNAVAILABLE \(14\)/);
    expect((err as Error).cause).toMatchObject({ code: Status.UNAVAILABLE });
  });

  it('throws RetryableError when an attempt runs past its deadline', async () => {
    const slow = await startHelloService({ port: 0, host: '127.0.0.1', logger: silentLogger(), delayMs: 30_000 });
    try {
      const slowInvoker = open(createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: `127.0.0.1:${slow.port}` } })));
      const err = await rejection(slowInvoker.call('HelloService', 'SayHello', { name: 'Slow' }, { timeoutMs: 200 }));
      expect(err).toBeInstanceOf(RetryableError);
      expect((err as Error).cause).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
      expect(slow.received).toEqual([{ name: 'Slow' }]);
    } finally {
      await slow.stop();
    }
  });

  it('throws ServiceNotFoundError naming an unknown service and listing the known ones', async () => {
    const err = await rejection(invoker.call('NoSuchService', 'SayHello', { name: 'x' }));
    expect(err).toBeInstanceOf(ServiceNotFoundError);
    expect((err as Error).message).toContain('NoSuchService');
    expect((err as Error).message).toContain('HelloService (hello.HelloService)');
    expect((err as Error).message).toContain('TicketService (ticket.TicketService)');
  });

  it('throws ServiceNotFoundError naming an unknown method and listing the service’s methods', async () => {
    const err = await rejection(invoker.call('HelloService', 'SayGoodbye', { name: 'x' }));
    expect(err).toBeInstanceOf(ServiceNotFoundError);
    expect((err as Error).message).toMatch(/SayGoodbye.*SayHello/);
  });

  it('throws InvalidArgumentError for a request that does not fit, without calling the service', async () => {
    const received = hello.received.length;
    const unknownField = await rejection(invoker.call('HelloService', 'SayHello', { nme: 'typo' }));
    expect(unknownField).toBeInstanceOf(InvalidArgumentError);
    expect(unknownField).toMatchObject({ field: 'HelloService.SayHello request.nme' });
    const wrongType = await rejection(invoker.call('HelloService', 'SayHello', { name: 42 }));
    expect(wrongType).toMatchObject({ field: 'HelloService.SayHello request.name' });
    expect(await rejection(invoker.call('HelloService', 'SayHello', 'World'))).toBeInstanceOf(InvalidArgumentError);
    expect(hello.received.length).toBe(received);
  });

  it('throws InvalidArgumentError for metadata grpc refuses', async () => {
    const err = await rejection(invoker.call('HelloService', 'SayHello', { name: 'x' }, { metadata: { 'bad key': 'v' } }));
    expect(err).toBeInstanceOf(InvalidArgumentError);
  });

  it('takes the address from SERVICE_<NAME>_ADDRESS over the config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'services-'));
    const configPath = join(dir, 'services.json');
    writeFileSync(configPath, JSON.stringify({ services: { HelloService: { address: `127.0.0.1:${await closedPort()}` } } }));

    const fromFile = open(createGrpcInvoker(loadServiceRegistry({ configPath })));
    expect(await rejection(fromFile.call('HelloService', 'SayHello', { name: 'File' }))).toBeInstanceOf(RetryableError);

    vi.stubEnv('SERVICE_HELLOSERVICE_ADDRESS', `127.0.0.1:${hello.port}`);
    const fromEnv = open(createGrpcInvoker(loadServiceRegistry({ configPath })));
    expect(await fromEnv.call('HelloService', 'SayHello', { name: 'Env' })).toEqual({ message: greeting('Env') });
  });

  it('fails calls with RetryableError once closed', async () => {
    const closing = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: `127.0.0.1:${hello.port}` } }));
    await closing.call('HelloService', 'SayHello', { name: 'Before' });
    closing.close();
    expect(await rejection(closing.call('HelloService', 'SayHello', { name: 'After' }))).toBeInstanceOf(RetryableError);
  });
});

describe('isTransientStatus', () => {
  it('holds for UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED only', () => {
    const transient = Object.values(Status)
      .filter((code): code is number => typeof code === 'number')
      .filter(isTransientStatus);
    expect(transient.sort()).toEqual([Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED, Status.UNAVAILABLE].sort());
  });
});
