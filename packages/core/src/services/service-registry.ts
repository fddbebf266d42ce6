/**
 * The service registry: every service declared under the proto directory, each with the
 * address it is served at. A workflow names a service by its simple name (`HelloService`)
 * or its full name (`hello.HelloService`); no engine code is written per service.
 *
 * Addresses come from, strongest first:
 * 1. `options.addresses`, keyed by simple or full service name;
 * 2. env `SERVICE_<NAME>_ADDRESS`, NAME the simple name upper-cased
 *    (`SERVICE_HELLOSERVICE_ADDRESS=127.0.0.1:19090`);
 * 3. the config file, `services.json`:
 *    `{ "services": { "HelloService": { "address": "localhost:9090" } } }`
 *    (keys are simple or full names; an address is any grpc-js target, e.g. `host:port`).
 *
 * A service is called over TLS when its entry in the config file has `tls`, whichever
 * source its address comes from: `"tls": { "ca": "certs/ca.pem", "cert": "certs/client.pem",
 * "key": "certs/client-key.pem" }`, PEM files relative to the config file. `ca` is what the
 * service's certificate must be signed by (default: the system's CAs); `cert` and `key` are
 * the client certificate, for services that require one. `"tls": {}` is TLS with neither.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, ServiceNotFoundError, errorMessage } from '../errors.js';
import { type PemKind, readPemFile } from '../files.js';
import {
  type ProtoDirOptions,
  type ProtoMethod,
  type ProtoService,
  type ProtoServices,
  ancestors,
  loadProtoServices,
  moduleDir,
} from './proto-services.js';

/** The config file's name, looked for in the working directory and above this module. */
export const SERVICES_CONFIG_FILE = 'services.json';

/** Options of {@link loadServiceRegistry}. */
export interface ServiceRegistryOptions extends ProtoDirOptions {
  /**
   * The config file. @default env `SERVICES_CONFIG`, else `services.json` in the working
   * directory, else the nearest `services.json` walking up from this module; when none is
   * found, addresses come only from the environment and `addresses`.
   */
  configPath?: string;
  /** Addresses by simple or full service name, overriding env and config file. @default {} */
  addresses?: Record<string, string>;
}

/** How a service is called over TLS: PEM text read from the files its `tls` entry names. */
export interface ServiceTls {
  /** The CA the service's certificate must be signed by. @default the system's CAs */
  ca?: string;
  /** The client certificate, with `key`, for a service that requires one. */
  cert?: string;
  key?: string;
}

/** A call target: the service and method, and where the service is served. */
export interface ResolvedMethod {
  service: ProtoService;
  method: ProtoMethod;
  address: string;
  /** Set when the service is called over TLS. */
  tls?: ServiceTls;
}

/** A service with its address, as {@link ServiceRegistry.list} describes it. */
export interface ServiceEntry {
  name: string;
  fullName: string;
  methods: string[];
  /** Undefined when no address is configured: calls to it fail with ServiceNotFoundError. */
  address: string | undefined;
  /** True when it is called over TLS. */
  tls: boolean;
}

/** The services of the proto directory and their addresses. Built by {@link loadServiceRegistry}. */
export class ServiceRegistry {
  /** The services as loaded from the proto files. */
  readonly protos: ProtoServices;
  /** The config file read, if any. */
  readonly configPath: string | undefined;
  /** Address by full service name. */
  readonly #addresses: ReadonlyMap<string, string>;
  /** TLS by full service name, for the services called over TLS. */
  readonly #tls: ReadonlyMap<string, ServiceTls>;

  constructor(protos: ProtoServices, addresses: ReadonlyMap<string, string>, configPath?: string, tls: ReadonlyMap<string, ServiceTls> = new Map()) {
    this.protos = protos;
    this.#addresses = addresses;
    this.configPath = configPath;
    this.#tls = tls;
  }

  /**
   * The service and method a call names, and the address to send it to.
   * @throws ServiceNotFoundError for an unknown service or method (the message lists the
   * known ones) or a service without an address.
   */
  resolve(service: string, method: string): ResolvedMethod {
    const found = this.protos.service(service);
    const resolvedMethod = this.protos.method(found, method);
    const address = this.#addresses.get(found.fullName);
    if (address === undefined) {
      throw new ServiceNotFoundError(
        `service ${found.fullName} has no address: add it to ${SERVICES_CONFIG_FILE} or set ${addressEnvName(found.name)}`,
      );
    }
    const tls = this.#tls.get(found.fullName);
    return tls === undefined ? { service: found, method: resolvedMethod, address } : { service: found, method: resolvedMethod, address, tls };
  }

  /** Every service, its methods and its address. */
  list(): ServiceEntry[] {
    return this.protos.services.map((s) => ({
      name: s.name,
      fullName: s.fullName,
      methods: [...s.methods.keys()],
      address: this.#addresses.get(s.fullName),
      tls: this.#tls.has(s.fullName),
    }));
  }
}

/**
 * Loads the proto directory and the addresses of its services.
 * @throws InvalidArgumentError for a missing or malformed config file, or one naming a
 * service no proto file declares (a typo would otherwise surface only at call time).
 *
 * @example
 * const registry = loadServiceRegistry({ addresses: { HelloService: '127.0.0.1:19090' } });
 * const invoker = createGrpcInvoker(registry);
 */
export function loadServiceRegistry(options: ServiceRegistryOptions = {}): ServiceRegistry {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const protos = loadProtoServices(options);
  const configPath = findConfig(options, env, cwd);

  const addresses = new Map<string, string>();
  const tls = new Map<string, ServiceTls>();
  const assign = (source: string, key: string, address: string): ProtoService => {
    const service = serviceOrThrow(protos, key, source);
    addresses.set(service.fullName, checkAddress(address, `${source}: ${key}`));
    return service;
  };
  if (configPath !== undefined) {
    for (const [key, entry] of Object.entries(readConfig(configPath))) {
      const service = assign(configPath, key, entry.address);
      if (entry.tls !== undefined) tls.set(service.fullName, entry.tls);
    }
  }
  for (const service of protos.services) {
    const fromEnv = env[addressEnvName(service.name)];
    if (fromEnv !== undefined && fromEnv.trim() !== '') {
      addresses.set(service.fullName, fromEnv.trim());
    }
  }
  for (const [key, address] of Object.entries(options.addresses ?? {})) assign('options.addresses', key, address);
  return new ServiceRegistry(protos, addresses, configPath, tls);
}

/** The environment variable overriding a service's address: `SERVICE_HELLOSERVICE_ADDRESS`. */
export function addressEnvName(simpleName: string): string {
  return `SERVICE_${simpleName.toUpperCase()}_ADDRESS`;
}

function findConfig(options: ServiceRegistryOptions, env: Record<string, string | undefined>, cwd: string): string | undefined {
  const given = options.configPath ?? (env.SERVICES_CONFIG?.trim() || undefined);
  if (given !== undefined) {
    const path = resolve(cwd, given);
    if (!existsSync(path)) {
      const source = options.configPath !== undefined ? 'configPath' : 'SERVICES_CONFIG';
      throw new InvalidArgumentError(source, `${path} does not exist`);
    }
    return path;
  }
  const inCwd = join(cwd, SERVICES_CONFIG_FILE);
  if (existsSync(inCwd)) return inCwd;
  for (const dir of ancestors(moduleDir())) {
    const candidate = join(dir, SERVICES_CONFIG_FILE);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** One entry of a config file. */
interface ConfigEntry {
  address: string;
  tls?: ServiceTls;
}

/** The entries of a config file, by the key they were given under. */
function readConfig(path: string): Record<string, ConfigEntry> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(path, `not a readable JSON file: ${errorMessage(err)}`);
  }
  if (!isRecord(parsed) || !isRecord(parsed.services)) {
    throw new InvalidArgumentError(path, 'expected { "services": { "<Service>": { "address": "host:port" } } }');
  }
  const entries: Record<string, ConfigEntry> = {};
  for (const [key, entry] of Object.entries(parsed.services)) {
    if (!isRecord(entry) || typeof entry.address !== 'string') {
      throw new InvalidArgumentError(`${path}: services.${key}`, 'expected { "address": "host:port" }');
    }
    entries[key] = entry.tls === undefined ? { address: entry.address } : { address: entry.address, tls: readTls(path, key, entry.tls) };
  }
  return entries;
}

/** The files a `tls` entry names, read (relative to the config file). */
function readTls(path: string, key: string, tls: unknown): ServiceTls {
  const field = `${path}: services.${key}.tls`;
  if (!isRecord(tls)) throw new InvalidArgumentError(field, 'expected { "ca": "ca.pem", "cert": "client.pem", "key": "client-key.pem" } (each optional)');
  const unknown = Object.keys(tls).filter((name) => !['ca', 'cert', 'key'].includes(name));
  if (unknown.length > 0) throw new InvalidArgumentError(field, `unknown field ${unknown.join(', ')}: expected ca, cert and key`);
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new InvalidArgumentError(field, 'cert and key go together: give both or neither');
  }
  const read = (name: 'ca' | 'cert' | 'key', kind: PemKind): { [name: string]: string } => {
    const file = tls[name];
    if (file === undefined) return {};
    if (typeof file !== 'string' || file.trim() === '') throw new InvalidArgumentError(`${field}.${name}`, 'expected the path of a PEM file');
    return { [name]: readPemFile(`${field}.${name}`, resolve(dirname(path), file), kind) };
  };
  return { ...read('ca', 'CERTIFICATE'), ...read('cert', 'CERTIFICATE'), ...read('key', 'PRIVATE KEY') };
}

function serviceOrThrow(protos: ProtoServices, key: string, source: string): ProtoService {
  try {
    return protos.service(key);
  } catch (err) {
    throw new InvalidArgumentError(`${source}: ${key}`, errorMessage(err));
  }
}

function checkAddress(address: string, field: string): string {
  const trimmed = address.trim();
  if (trimmed === '') throw new InvalidArgumentError(field, 'the address is empty');
  return trimmed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
