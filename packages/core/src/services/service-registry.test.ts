import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ServiceNotFoundError } from '../errors.js';
import { createGrpcInvoker } from './grpc-invoker.js';
import { findProtoDir, loadProtoServices } from './proto-services.js';
import { addressEnvName, loadServiceRegistry } from './service-registry.js';

const CART_PROTO = (pkg: string) => `syntax = "proto3";
package ${pkg};
service CartService {
  rpc AddItem(AddItemRequest) returns (AddItemReply);
}
message AddItemRequest {
  string cart_id = 1;
  repeated Item items = 2;
  message Item { string sku = 1; int64 quantity = 2; }
}
message AddItemReply { int64 total_quantity = 1; }
`;

/** A proto directory with one service name in two packages, and an empty config file. */
function fixture(): { protoDir: string; configPath: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'registry-'));
  const protoDir = join(dir, 'proto');
  mkdirSync(join(protoDir, 'shop'), { recursive: true });
  mkdirSync(join(protoDir, 'legacy'), { recursive: true });
  writeFileSync(join(protoDir, 'shop', 'cart.proto'), CART_PROTO('shop'));
  writeFileSync(join(protoDir, 'legacy', 'cart.proto'), CART_PROTO('legacy'));
  const configPath = writeConfig(dir, { services: {} });
  return { protoDir, configPath, dir };
}

function writeConfig(dir: string, config: unknown, name = 'services.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config));
  return path;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('loadServiceRegistry', () => {
  it('finds the repository’s proto directory and services.json without options', () => {
    const registry = loadServiceRegistry({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'cwd-')) });
    expect(registry.protos.protoDir).toBe(findProtoDir({ env: {} }));
    expect(registry.configPath).toMatch(/services\.json$/);
    expect(registry.list()).toEqual([
      { name: 'HelloService', fullName: 'hello.HelloService', methods: ['SayHello'], address: 'localhost:9090', tls: false },
      { name: 'TicketService', fullName: 'ticket.TicketService', methods: ['Reserve', 'Release'], address: 'localhost:9091', tls: false },
    ]);
  });

  it('makes a service from any .proto file callable, with no code written for it', async () => {
    const { protoDir, configPath } = fixture();
    const protos = loadProtoServices({ protoDir });
    const server = new Server();
    type Req = { cartId: string; items: Array<{ sku: string; quantity: string }> };
    server.addService(protos.service('shop.CartService').definition, {
      AddItem: (call: ServerUnaryCall<Req, object>, callback: sendUnaryData<object>) => {
        const total = call.request.items.reduce((sum, item) => sum + BigInt(item.quantity), 0n);
        callback(null, { totalQuantity: total.toString() });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const invoker = createGrpcInvoker(
      loadServiceRegistry({ protoDir, configPath, addresses: { 'shop.CartService': `127.0.0.1:${port}` } }),
    );
    try {
      const reply = await invoker.call('shop.CartService', 'AddItem', {
        cartId: 'c1',
        items: [
          { sku: 'a', quantity: '9007199254740993' },
          { sku: 'b', quantity: 2 },
        ],
      });
      // int64 comes back as a decimal string, camelCase names both ways.
      expect(reply).toEqual({ totalQuantity: '9007199254740995' });
    } finally {
      invoker.close();
      server.forceShutdown();
    }
  });

  it('refuses a simple name two packages declare, and resolves their full names', () => {
    const { protoDir, configPath } = fixture();
    const registry = loadServiceRegistry({
      protoDir,
      configPath,
      addresses: { 'shop.CartService': 'shop:1', 'legacy.CartService': 'legacy:1' },
    });
    const err = thrown(() => registry.resolve('CartService', 'AddItem'));
    expect(err).toBeInstanceOf(ServiceNotFoundError);
    expect((err as Error).message).toContain('legacy.CartService, shop.CartService');
    expect(registry.resolve('legacy.CartService', 'AddItem').address).toBe('legacy:1');
    expect(registry.resolve('shop.CartService', 'AddItem').method.path).toBe('/shop.CartService/AddItem');
  });

  it('takes addresses from options over env over the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    const configPath = writeConfig(dir, {
      services: { HelloService: { address: 'file:1' }, 'ticket.TicketService': { address: 'file:2' } },
    });
    const env = { SERVICES_CONFIG: configPath, SERVICE_HELLOSERVICE_ADDRESS: 'env:1', SERVICE_TICKETSERVICE_ADDRESS: 'env:2' };
    const addressOf = (registry: ReturnType<typeof loadServiceRegistry>, name: string) =>
      registry.list().find((s) => s.name === name)?.address;

    const fileOnly = loadServiceRegistry({ env: { SERVICES_CONFIG: configPath } });
    expect(fileOnly.configPath).toBe(configPath);
    expect([addressOf(fileOnly, 'HelloService'), addressOf(fileOnly, 'TicketService')]).toEqual(['file:1', 'file:2']);

    const withEnv = loadServiceRegistry({ env });
    expect([addressOf(withEnv, 'HelloService'), addressOf(withEnv, 'TicketService')]).toEqual(['env:1', 'env:2']);

    const withOptions = loadServiceRegistry({ env, addresses: { 'hello.HelloService': 'opt:1' } });
    expect([addressOf(withOptions, 'HelloService'), addressOf(withOptions, 'TicketService')]).toEqual(['opt:1', 'env:2']);
    expect(addressEnvName('HelloService')).toBe('SERVICE_HELLOSERVICE_ADDRESS');
  });

  it('throws ServiceNotFoundError for a service without an address, saying how to give one', () => {
    const { protoDir, configPath } = fixture();
    const err = thrown(() => loadServiceRegistry({ protoDir, configPath, env: {} }).resolve('shop.CartService', 'AddItem'));
    expect(err).toBeInstanceOf(ServiceNotFoundError);
    expect((err as Error).message).toContain('SERVICE_CARTSERVICE_ADDRESS');
  });

  it('refuses a config file that is malformed, missing, or names an unknown service', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    const bad = (config: unknown) => thrown(() => loadServiceRegistry({ configPath: writeConfig(dir, config), env: {} }));

    expect(bad('{ not json')).toBeInstanceOf(InvalidArgumentError);
    expect(bad({ HelloService: 'localhost:9090' })).toBeInstanceOf(InvalidArgumentError);
    expect(bad({ services: { HelloService: { address: 9090 } } })).toBeInstanceOf(InvalidArgumentError);
    const typo = bad({ services: { HeloService: { address: 'localhost:9090' } } });
    expect(typo).toBeInstanceOf(InvalidArgumentError);
    expect((typo as Error).message).toContain('HeloService');

    const missing = thrown(() => loadServiceRegistry({ env: { SERVICES_CONFIG: join(dir, 'absent.json') } }));
    expect(missing).toMatchObject({ field: 'SERVICES_CONFIG' });
  });

  it('reads the TLS files of a service relative to the config file, whatever gives its address', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs', 'ca.pem'), PEM_CERT);
    writeFileSync(join(dir, 'certs', 'client.pem'), PEM_CERT);
    writeFileSync(join(dir, 'certs', 'client-key.pem'), PEM_KEY);
    const configPath = writeConfig(dir, {
      services: {
        HelloService: { address: 'file:1', tls: { ca: 'certs/ca.pem', cert: 'certs/client.pem', key: 'certs/client-key.pem' } },
        TicketService: { address: 'file:2', tls: {} },
      },
    });
    const registry = loadServiceRegistry({ configPath, env: { SERVICE_HELLOSERVICE_ADDRESS: 'env:1' } });
    expect(registry.resolve('HelloService', 'SayHello')).toMatchObject({ address: 'env:1', tls: { ca: PEM_CERT, cert: PEM_CERT, key: PEM_KEY } });
    expect(registry.resolve('TicketService', 'Reserve').tls).toEqual({});
    expect(registry.list().map((s) => s.tls)).toEqual([true, true]);
  });

  it('refuses a TLS entry whose files are missing or incomplete, naming the entry and the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    writeFileSync(join(dir, 'ca.pem'), PEM_CERT);
    const bad = (tls: unknown) => thrown(() => loadServiceRegistry({ configPath: writeConfig(dir, { services: { HelloService: { address: 'a:1', tls } } }), env: {} }));
    const configPath = join(dir, 'services.json');

    expect((bad({ ca: 'absent.pem' }) as Error).message).toBe(
      `invalid ${configPath}: services.HelloService.tls.ca: cannot read ${join(dir, 'absent.pem')}: no such file`,
    );
    expect((bad({ ca: 'ca.pem', cert: 'ca.pem' }) as Error).message).toBe(
      `invalid ${configPath}: services.HelloService.tls: cert and key go together: give both or neither`,
    );
    expect((bad({ ca: 'ca.pem', cert: 'ca.pem', key: 'ca.pem' }) as Error).message).toBe(
      `invalid ${configPath}: services.HelloService.tls.key: ${join(dir, 'ca.pem')} holds no PEM PRIVATE KEY`,
    );
    expect((bad({ cafile: 'ca.pem' }) as Error).message).toMatch(/unknown field cafile: expected ca, cert and key$/);
    expect(bad(true)).toBeInstanceOf(InvalidArgumentError);
  });
});

const PEM_CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

describe('findProtoDir', () => {
  it('prefers the option, then DURABLE_PROTO_DIR, and refuses a directory that is not there', () => {
    const { protoDir, dir } = fixture();
    expect(findProtoDir({ protoDir, env: { DURABLE_PROTO_DIR: '/nowhere' } })).toBe(protoDir);
    expect(findProtoDir({ env: { DURABLE_PROTO_DIR: 'proto' }, cwd: dir })).toBe(protoDir);
    expect(thrown(() => findProtoDir({ env: { DURABLE_PROTO_DIR: join(dir, 'absent') } }))).toBeInstanceOf(InvalidArgumentError);
  });
});
