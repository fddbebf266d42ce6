/**
 * Checks that a plain-object request fits its protobuf message type before it is sent.
 *
 * The serializer underneath (protobufjs `fromObject`) is lenient on purpose: it drops
 * fields it does not know and coerces values (`{ nme: 'x' }` becomes an empty request,
 * an object in a string field becomes `"[object Object]"`). A workflow that sends such a
 * request would get a wrong answer, journaled forever, instead of an error; so every key
 * and value is checked against the message descriptors first.
 *
 * The JS shape is the proto-loader one the registry uses: camelCase field names, 64-bit
 * integers as number, bigint or decimal string, enums as value name or number, bytes as
 * `Uint8Array` or base64 string, maps as plain objects, `null`/`undefined` for unset.
 */
import { fromBinary } from '@bufbuild/protobuf';
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import { InvalidArgumentError } from '../errors.js';

/** Protobuf's own nesting limit: deeper objects are refused rather than walked. */
const MAX_DEPTH = 100;

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const UINT32 = { min: 0, max: 2 ** 32 - 1 };
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const UINT64 = { min: 0n, max: 2n ** 64n - 1n };
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** The request and response message types of one method, by full name. */
export interface MethodTypes {
  request: string;
  response: string;
}

interface FieldShape {
  name: string;
  type: Type;
  repeated: boolean;
  /** Full name of the message or enum type, resolved. */
  typeName: string;
  /** Set for map fields: the key and value fields of the entry type. */
  map?: { key: FieldShape; value: FieldShape };
}

interface MessageShape {
  fields: Map<string, FieldShape>;
  /** Names of oneofs: proto-loader adds `<oneof>: '<field>'` to objects it decodes. */
  oneofs: Set<string>;
}

/** Every message and enum type of a set of proto files, able to check values against them. */
export class MessageShapes {
  readonly #messages = new Map<string, DescriptorProto>();
  readonly #enums = new Map<string, Set<string>>();
  readonly #methods = new Map<string, MethodTypes>();
  readonly #shapes = new Map<string, MessageShape>();

  /**
   * Indexes the serialized `FileDescriptorProto`s proto-loader attaches to every type it
   * loads (`fileDescriptorProtos`). Their field names are already camelCase, as the
   * objects proto-loader reads and writes.
   */
  constructor(fileDescriptorProtos: readonly Uint8Array[]) {
    for (const bytes of fileDescriptorProtos) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      const prefix = file.package === '' ? '' : `${file.package}.`;
      for (const message of file.messageType) this.#indexMessage(`${prefix}${message.name}`, message);
      for (const e of file.enumType) this.#indexEnum(`${prefix}${e.name}`, e);
      for (const service of file.service) {
        for (const method of service.method) {
          this.#methods.set(`${prefix}${service.name}/${method.name}`, {
            request: this.#resolve(method.inputType, file.package),
            response: this.#resolve(method.outputType, file.package),
          });
        }
      }
    }
  }

  /** The message types of `service/method` (service by full name), or undefined. */
  methodTypes(serviceFullName: string, method: string): MethodTypes | undefined {
    return this.#methods.get(`${serviceFullName}/${method}`);
  }

  /**
   * Throws unless `value` fits message type `typeName`.
   * @param label names the value in the error, e.g. `HelloService.SayHello request`.
   * @throws InvalidArgumentError whose field is the path of the offending key.
   */
  check(typeName: string, value: unknown, label: string): void {
    this.#checkMessage(typeName, value, label, 0);
  }

  #indexMessage(fullName: string, message: DescriptorProto): void {
    this.#messages.set(fullName, message);
    for (const nested of message.nestedType) this.#indexMessage(`${fullName}.${nested.name}`, nested);
    for (const e of message.enumType) this.#indexEnum(`${fullName}.${e.name}`, e);
  }

  #indexEnum(fullName: string, e: EnumDescriptorProto): void {
    this.#enums.set(fullName, new Set(e.value.map((v) => v.name)));
  }

  /**
   * Resolves a type reference the way protoc does: absolute when it starts with `.`,
   * otherwise looked up in `scope`, then in each enclosing scope. (The descriptors come
   * from protobufjs, which leaves references as written in the source.)
   */
  #resolve(reference: string, scope: string): string {
    if (reference.startsWith('.')) return reference.slice(1);
    const parts = scope === '' ? [] : scope.split('.');
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), reference].join('.');
      if (this.#messages.has(candidate) || this.#enums.has(candidate)) return candidate;
    }
    return reference;
  }

  #shape(typeName: string): MessageShape | undefined {
    const cached = this.#shapes.get(typeName);
    if (cached) return cached;
    const message = this.#messages.get(typeName);
    if (!message) return undefined;
    const shape: MessageShape = {
      fields: new Map(message.field.map((f) => [f.name, this.#fieldShape(f, typeName)])),
      oneofs: new Set(message.oneofDecl.map((o) => o.name)),
    };
    this.#shapes.set(typeName, shape);
    return shape;
  }

  #fieldShape(field: FieldDescriptorProto, scope: string): FieldShape {
    const typeName = field.typeName === '' ? '' : this.#resolve(field.typeName, scope);
    const shape: FieldShape = { name: field.name, type: field.type, repeated: field.label === Label.REPEATED, typeName };
    const entry = this.#messages.get(typeName);
    if (shape.repeated && entry?.options?.mapEntry) {
      const [key, value] = entry.field.map((f) => this.#fieldShape(f, typeName));
      if (key && value) shape.map = { key, value };
    }
    return shape;
  }

  #checkMessage(typeName: string, value: unknown, path: string, depth: number): void {
    if (depth > MAX_DEPTH) throw new InvalidArgumentError(path, `nested deeper than ${MAX_DEPTH} messages`);
    if (!isPlainObject(value)) throw new InvalidArgumentError(path, `expected an object (${typeName}), got ${describe(value)}`);
    const shape = this.#shape(typeName);
    // A type the descriptors do not hold (cannot happen with proto-loader's set): nothing to check against.
    if (!shape) return;
    for (const [key, v] of Object.entries(value)) {
      if (v === undefined || v === null) continue;
      const field = shape.fields.get(key);
      if (field) {
        this.#checkField(field, v, `${path}.${key}`, depth);
      } else if (!(shape.oneofs.has(key) && typeof v === 'string' && shape.fields.has(v))) {
        const known = [...shape.fields.keys()].join(', ') || '(none)';
        throw new InvalidArgumentError(`${path}.${key}`, `${typeName} has no such field (its fields: ${known})`);
      }
    }
  }

  #checkField(field: FieldShape, value: unknown, path: string, depth: number): void {
    if (field.map) {
      if (!isPlainObject(value)) throw new InvalidArgumentError(path, `expected an object (map), got ${describe(value)}`);
      for (const [key, v] of Object.entries(value)) {
        checkMapKey(field.map.key.type, key, `${path}[${JSON.stringify(key)}]`);
        if (v !== undefined && v !== null) this.#checkSingle(field.map.value, v, `${path}[${JSON.stringify(key)}]`, depth);
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) throw new InvalidArgumentError(path, `expected an array, got ${describe(value)}`);
      value.forEach((v: unknown, i) => this.#checkSingle(field, v, `${path}[${i}]`, depth));
      return;
    }
    this.#checkSingle(field, value, path, depth);
  }

  #checkSingle(field: FieldShape, value: unknown, path: string, depth: number): void {
    switch (field.type) {
      case Type.MESSAGE:
      case Type.GROUP:
        this.#checkMessage(field.typeName, value, path, depth + 1);
        return;
      case Type.ENUM: {
        const names = this.#enums.get(field.typeName);
        // proto3 enums are open: every int32 is a valid value on the wire.
        if (typeof value === 'number' && isInRange(value, INT32)) return;
        if (typeof value === 'string' && (names === undefined || names.has(value))) return;
        const allowed = names ? [...names].join(', ') : 'a value name';
        throw new InvalidArgumentError(path, `expected ${allowed} or an int32 (${field.typeName}), got ${describeValue(value)}`);
      }
      default:
        checkScalar(field.type, value, path);
    }
  }
}

function checkScalar(type: Type, value: unknown, path: string): void {
  const fail = (expected: string): never => {
    throw new InvalidArgumentError(path, `expected ${expected}, got ${describeValue(value)}`);
  };
  switch (type) {
    case Type.STRING:
      if (typeof value !== 'string') fail('a string');
      return;
    case Type.BOOL:
      if (typeof value !== 'boolean') fail('a boolean');
      return;
    case Type.DOUBLE:
    case Type.FLOAT:
      if (typeof value !== 'number') fail('a number');
      return;
    case Type.INT32:
    case Type.SINT32:
    case Type.SFIXED32:
      if (typeof value !== 'number' || !isInRange(value, INT32)) fail('an int32');
      return;
    case Type.UINT32:
    case Type.FIXED32:
      if (typeof value !== 'number' || !isInRange(value, UINT32)) fail('a uint32');
      return;
    case Type.INT64:
    case Type.SINT64:
    case Type.SFIXED64:
      if (!isInt64(value, INT64)) fail('an int64 (safe integer, bigint or decimal string)');
      return;
    case Type.UINT64:
    case Type.FIXED64:
      if (!isInt64(value, UINT64)) fail('a uint64 (safe integer, bigint or decimal string)');
      return;
    case Type.BYTES:
      if (!(value instanceof Uint8Array) && !(typeof value === 'string' && BASE64.test(value))) {
        fail('bytes (Uint8Array or base64 string)');
      }
      return;
    default:
      fail(`a value of protobuf type ${Type[type] ?? type}`);
  }
}

/** Map keys arrive as object keys, always strings: they must spell a value of the key type. */
function checkMapKey(type: Type, key: string, path: string): void {
  if (type === Type.STRING) return;
  if (type === Type.BOOL) {
    if (key !== 'true' && key !== 'false') throw new InvalidArgumentError(path, 'map key must be "true" or "false"');
    return;
  }
  if (!/^-?\d+$/.test(key)) throw new InvalidArgumentError(path, `map key must be an integer, got ${JSON.stringify(key)}`);
}

function isInRange(value: number, range: { min: number; max: number }): boolean {
  return Number.isInteger(value) && value >= range.min && value <= range.max;
}

function isInt64(value: unknown, range: { min: bigint; max: bigint }): boolean {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) n = BigInt(value);
  else return false;
  return n >= range.min && n <= range.max;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  if (isPlainObject(value)) return 'an object';
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'an unknown class'}`;
  return `a ${typeof value}`;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return describe(value);
}
