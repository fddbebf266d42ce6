/**
 * The gRPC services declared by every `.proto` file under one directory, loaded with
 * proto-loader. Nothing here is written per service: a new `.proto` file with a `service`
 * is callable (and servable) under its name with no engine code.
 *
 * Requests and responses are plain objects shaped by {@link PROTO_LOADER_OPTIONS}, in both
 * directions: camelCase field names (`ticketId` for `ticket_id`), 64-bit integers as
 * decimal strings, enums as value names, every field present with its default, and a
 * virtual `<oneof>` property naming the field a oneof holds. Bytes come back as Buffers.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AnyDefinition,
  type MethodDefinition,
  type Options,
  type ServiceDefinition,
  loadSync,
} from '@grpc/proto-loader';
import { InvalidArgumentError, ServiceNotFoundError } from '../errors.js';
import { MessageShapes } from './message-shapes.js';

/** How proto-loader maps messages to plain objects, for requests and responses alike. */
export const PROTO_LOADER_OPTIONS: Readonly<Options> = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The file whose presence marks the engine's proto directory when searching for it. */
const MARKER = join('durable', 'durable.proto');

/** Where the engine's proto directory is looked for. */
export interface ProtoDirOptions {
  /** The directory holding the `.proto` files. @default env `DURABLE_PROTO_DIR`, else searched for (see {@link findProtoDir}) */
  protoDir?: string;
  /** The environment read for `DURABLE_PROTO_DIR`. @default process.env */
  env?: Record<string, string | undefined>;
  /** The working directory searched from after this module's. @default process.cwd() */
  cwd?: string;
}

/** One method of a service. */
export interface ProtoMethod {
  /** As declared: `SayHello`. */
  readonly name: string;
  /** The gRPC path: `/hello.HelloService/SayHello`. */
  readonly path: string;
  /** Full name of the request message: `hello.HelloRequest`. */
  readonly requestType: string;
  /** Full name of the response message: `hello.HelloResponse`. */
  readonly responseType: string;
  /** False for client-, server- or bidi-streaming methods, which the invoker cannot call. */
  readonly unary: boolean;
  /** proto-loader's definition: serializers and paths. */
  readonly definition: MethodDefinition<object, object>;
}

/** One service of the proto directory. */
export interface ProtoService {
  /** Simple name: `HelloService`. */
  readonly name: string;
  /** Full name with the package: `hello.HelloService`. */
  readonly fullName: string;
  /** Methods by declared name. */
  readonly methods: ReadonlyMap<string, ProtoMethod>;
  /** proto-loader's definition, which a grpc-js `Server.addService` accepts. */
  readonly definition: ServiceDefinition;
}

/**
 * The proto directory of the engine: `options.protoDir`, else env `DURABLE_PROTO_DIR`,
 * else the nearest `proto/` holding `durable/durable.proto` found walking up from this
 * module's directory (the source file under vitest or tsx, `dist/` in a bundled app),
 * then walking up from the working directory.
 * @throws InvalidArgumentError when the given directory does not exist or none is found.
 */
export function findProtoDir(options: ProtoDirOptions = {}): string {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const given = options.protoDir ?? nonEmpty(env.DURABLE_PROTO_DIR);
  if (given !== undefined) {
    const dir = resolve(cwd, given);
    if (!isDirectory(dir)) throw new InvalidArgumentError('protoDir', `${dir} is not a directory`);
    return dir;
  }
  const starts = [moduleDir(), cwd];
  for (const start of starts) {
    for (const dir of ancestors(start)) {
      if (existsSync(join(dir, 'proto', MARKER))) return join(dir, 'proto');
    }
  }
  throw new InvalidArgumentError(
    'protoDir',
    `no proto/${MARKER.split(sep).join('/')} found above ${starts.join(' or ')}; set DURABLE_PROTO_DIR`,
  );
}

/** The services of a proto directory, and the message types to check requests against. */
export class ProtoServices {
  /** The directory the files were loaded from. */
  readonly protoDir: string;
  /** The loaded files, relative to {@link protoDir}, `/`-separated. */
  readonly files: readonly string[];
  /** Every service declared, in file order. */
  readonly services: readonly ProtoService[];
  /** The message types of every file. */
  readonly shapes: MessageShapes;

  constructor(protoDir: string, files: readonly string[], services: readonly ProtoService[], shapes: MessageShapes) {
    this.protoDir = protoDir;
    this.files = files;
    this.services = services;
    this.shapes = shapes;
  }

  /**
   * A service by simple (`HelloService`) or full (`hello.HelloService`) name.
   * @throws ServiceNotFoundError naming it and listing the known services, also when a
   * simple name is declared by more than one package.
   */
  service(name: string): ProtoService {
    const exact = this.services.find((s) => s.fullName === name);
    if (exact) return exact;
    const matches = this.services.filter((s) => s.name === name);
    if (matches.length === 1 && matches[0]) return matches[0];
    if (matches.length > 1) {
      throw new ServiceNotFoundError(
        `service ${name} is ambiguous: use one of ${matches.map((s) => s.fullName).join(', ')}`,
      );
    }
    throw new ServiceNotFoundError(`unknown service ${name}; known services: ${this.#knownServices()}`);
  }

  /**
   * A method of a service, by declared name (`SayHello`) or lower camelCase (`sayHello`).
   * @throws ServiceNotFoundError naming the method and listing the service's methods.
   */
  method(service: ProtoService, name: string): ProtoMethod {
    const method =
      service.methods.get(name) ?? [...service.methods.values()].find((m) => m.definition.originalName === name);
    if (method) return method;
    const known = [...service.methods.keys()].join(', ');
    throw new ServiceNotFoundError(`unknown method ${service.name}.${name}; ${service.fullName} has: ${known}`);
  }

  #knownServices(): string {
    return this.services.map((s) => `${s.name} (${s.fullName})`).join(', ') || '(none)';
  }
}

/**
 * Loads every `.proto` file under the proto directory (see {@link findProtoDir}).
 * Imports between files resolve against the directory itself.
 *
 * @example
 * const protos = loadProtoServices();
 * server.addService(protos.service('HelloService').definition, { SayHello: sayHello });
 */
export function loadProtoServices(options: ProtoDirOptions = {}): ProtoServices {
  const protoDir = findProtoDir(options);
  const files = listProtoFiles(protoDir);
  if (files.length === 0) return new ProtoServices(protoDir, files, [], new MessageShapes([]));
  const packageDefinition = loadSync([...files], { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir] });

  // Every loaded type carries the descriptors of all files; any one of them will do.
  const descriptors = Object.values(packageDefinition).find(hasFileDescriptors)?.fileDescriptorProtos ?? [];
  const shapes = new MessageShapes(descriptors);

  const services: ProtoService[] = [];
  for (const [fullName, definition] of Object.entries(packageDefinition)) {
    if (!isServiceDefinition(definition)) continue;
    const methods = new Map<string, ProtoMethod>();
    for (const [name, method] of Object.entries(definition)) {
      // Always found: the descriptors and the definitions come from the same files. Were
      // one missing, '' makes the request check fall back to "is a plain object".
      const types = shapes.methodTypes(fullName, name);
      methods.set(name, {
        name,
        path: method.path,
        requestType: types?.request ?? '',
        responseType: types?.response ?? '',
        unary: !method.requestStream && !method.responseStream,
        definition: method,
      });
    }
    services.push({ name: fullName.slice(fullName.lastIndexOf('.') + 1), fullName, methods, definition });
  }
  return new ProtoServices(protoDir, files, services, shapes);
}

/** Services are the only definitions without a `format` string (messages and enums have one). */
function isServiceDefinition(definition: AnyDefinition): definition is ServiceDefinition {
  return typeof (definition as { format?: unknown }).format !== 'string';
}

function hasFileDescriptors(definition: AnyDefinition): definition is AnyDefinition & { fileDescriptorProtos: Buffer[] } {
  return Array.isArray((definition as { fileDescriptorProtos?: unknown }).fileDescriptorProtos);
}

/** `.proto` files under `dir`, relative and `/`-separated as proto imports spell them, sorted. */
function listProtoFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.proto')) found.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return found.sort();
}

/** This module's directory: the source file's, or `dist/` when bundled into an app. */
export function moduleDir(): string {
  return dirname(fileURLToPath(import.meta.url));
}

/** `dir` and each of its parents up to the filesystem root. */
export function* ancestors(dir: string): Generator<string> {
  let current = resolve(dir);
  for (;;) {
    yield current;
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
