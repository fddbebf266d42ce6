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
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, ServiceNotFoundError, errorMessage } from '../errors.js';
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

/** A call target: the service and method, and where the service is served. */
export interface ResolvedMethod {
  service: ProtoService;
  method: ProtoMethod;
  address: string;
}

/** A service with its address, as {@link ServiceRegistry.list} describes it. */
export interface ServiceEntry {
  name: string;
  fullName: string;
  methods: string[];
  /** Undefined when no address is configured: calls to it fail with ServiceNotFoundError. */
  address: string | undefined;
}

/** The services of the proto directory and their addresses. Built by {@link loadServiceRegistry}. */
export class ServiceRegistry {
  /** The services as loaded from the proto files. */
  readonly protos: ProtoServices;
  /** The config file read, if any. */
  readonly configPath: string | undefined;
  /** Address by full service name. */
  readonly #addresses: ReadonlyMap<string, string>;

  constructor(protos: ProtoServices, addresses: ReadonlyMap<string, string>, configPath?: string) {
    this.protos = protos;
    this.#addresses = addresses;
    this.configPath = configPath;
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
    return { service: found, method: resolvedMethod, address };
  }

  /** Every service, its methods and its address. */
  list(): ServiceEntry[] {
    return this.protos.services.map((s) => ({
      name: s.name,
      fullName: s.fullName,
      methods: [...s.methods.keys()],
      address: this.#addresses.get(s.fullName),
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
  const assign = (source: string, key: string, address: string): void => {
    const service = serviceOrThrow(protos, key, source);
    addresses.set(service.fullName, checkAddress(address, `${source}: ${key}`));
  };
  if (configPath !== undefined) {
    for (const [key, address] of Object.entries(readConfig(configPath))) assign(configPath, key, address);
  }
  for (const service of protos.services) {
    const fromEnv = env[addressEnvName(service.name)];
    if (fromEnv !== undefined && fromEnv.trim() !== '') {
      addresses.set(service.fullName, fromEnv.trim());
    }
  }
  for (const [key, address] of Object.entries(options.addresses ?? {})) assign('options.addresses', key, address);
  return new ServiceRegistry(protos, addresses, configPath);
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

/** The `address` of each entry of a config file, by the key it was given under. */
function readConfig(path: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(path, `not a readable JSON file: ${errorMessage(err)}`);
  }
  if (!isRecord(parsed) || !isRecord(parsed.services)) {
    throw new InvalidArgumentError(path, 'expected { "services": { "<Service>": { "address": "host:port" } } }');
  }
  const addresses: Record<string, string> = {};
  for (const [key, entry] of Object.entries(parsed.services)) {
    if (!isRecord(entry) || typeof entry.address !== 'string') {
      throw new InvalidArgumentError(`${path}: services.${key}`, 'expected { "address": "host:port" }');
    }
    addresses[key] = entry.address;
  }
  return addresses;
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
