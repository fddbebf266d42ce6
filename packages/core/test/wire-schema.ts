/**
 * The wire schema of the engine's records as plain data: every message's fields by number
 * (name and type) and every enum's values, read from the generated descriptors. A snapshot
 * of it is kept with each version's fixtures (`fixtures/v1/schema.json`), and
 * `wire-schema.test.ts` checks that the current schema still has everything a snapshot has.
 */
import { ScalarType, type DescEnum, type DescField, type DescFile, type DescMessage } from '@bufbuild/protobuf';

/** Fields of one message by number: `{ "3": { "name": "journal", "type": "repeated durable.JournalEntry" } }`. */
export type WireMessage = Record<string, { name: string; type: string }>;

/** Every message and enum of a proto file, by full name. */
export interface WireSchema {
  messages: Record<string, WireMessage>;
  /** Value names by number. */
  enums: Record<string, Record<string, string>>;
}

/** The wire schema of `file`, nested messages and enums included. */
export function describeWireSchema(file: DescFile): WireSchema {
  const schema: WireSchema = { messages: {}, enums: {} };
  const addEnum = (e: DescEnum) => {
    schema.enums[e.typeName] = Object.fromEntries(e.values.map((v) => [String(v.number), v.name]));
  };
  const addMessage = (m: DescMessage) => {
    schema.messages[m.typeName] = Object.fromEntries(m.fields.map((f) => [String(f.number), { name: f.name, type: fieldType(f) }]));
    m.nestedMessages.forEach(addMessage);
    m.nestedEnums.forEach(addEnum);
  };
  file.messages.forEach(addMessage);
  file.enums.forEach(addEnum);
  return schema;
}

/** The type as the .proto file writes it: `string`, `durable.ParentRef`, `repeated ...`, `map<string, bytes>`. */
function fieldType(field: DescField): string {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarName(field.scalar);
    case 'enum':
      return field.enum.typeName;
    case 'message':
      return field.message.typeName;
    case 'list':
      return `repeated ${field.listKind === 'scalar' ? scalarName(field.scalar) : field.listKind === 'enum' ? field.enum.typeName : field.message.typeName}`;
    case 'map': {
      const value = field.mapKind === 'scalar' ? scalarName(field.scalar) : field.mapKind === 'enum' ? field.enum.typeName : field.message.typeName;
      return `map<${scalarName(field.mapKey)}, ${value}>`;
    }
  }
}

function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase();
}

/**
 * What `current` lost of `snapshot`, one line each: a message, field or enum value gone,
 * or a field number now of another name or type (renumbered or retyped). Empty when the
 * schema only grew.
 */
export function wireSchemaBreaks(snapshot: WireSchema, current: WireSchema): string[] {
  const breaks: string[] = [];
  for (const [message, fields] of Object.entries(snapshot.messages)) {
    const now = current.messages[message];
    if (!now) {
      breaks.push(`message ${message} is gone`);
      continue;
    }
    for (const [number, was] of Object.entries(fields)) {
      const is = now[number];
      if (!is) breaks.push(`${message} field ${number} (${was.type} ${was.name}) is gone`);
      else if (is.name !== was.name || is.type !== was.type) breaks.push(`${message} field ${number} was ${was.type} ${was.name}, is ${is.type} ${is.name}`);
    }
  }
  for (const [name, values] of Object.entries(snapshot.enums)) {
    for (const [number, was] of Object.entries(values)) {
      const is = current.enums[name]?.[number];
      if (is !== was) breaks.push(`enum ${name} value ${number} was ${was}, is ${is ?? 'gone'}`);
    }
  }
  return breaks;
}
