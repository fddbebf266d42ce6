/**
 * The wire schema only grows: records as the first wire format wrote them (`fixtures/v1`,
 * encoded by that version's code, see `fixtures/v1/generate.ts`) decode with the current
 * schema to what was written, and no field of that version's schema has been removed,
 * renumbered or retyped since (`fixtures/v1/schema.json`, its snapshot).
 */
import { fromBinary } from '@bufbuild/protobuf';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeJson } from '../src/engine/codec.js';
import {
  AwakeableStateSchema,
  CommandKind,
  CommandSchema,
  EntryPhase,
  ExecutionStateSchema,
  file_durable_durable,
  JournalEntrySchema,
  KeyedStateSchema,
} from '../src/gen/durable/durable_pb.js';
import { describeWireSchema, wireSchemaBreaks, type WireSchema } from './wire-schema.js';

function v1(name: string): Uint8Array {
  return readFileSync(new URL(`./fixtures/v1/${name}`, import.meta.url));
}

/** A map of JSON values, decoded. */
function decoded(values: Record<string, Uint8Array>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, decodeJson(value)]));
}

const PARENT = { invocationId: 'order-42', handler: 'checkout', partitionKey: 'cart-ada', step: 4 };

describe('records of wire format v1, read by this version', () => {
  it('an ExecutionState of a suspended invocation, its journal inline, with keyed-state changes', () => {
    const state = fromBinary(ExecutionStateSchema, v1('execution-state.bin'));
    expect(state).toMatchObject({
      invocationId: 'order-42/4',
      handler: 'cart_add',
      status: 'suspended',
      currentStep: 2,
      partitionKey: 'cart-ada',
      createdAtMs: 1_731_276_060_000n,
      updatedAtMs: 1_731_276_062_500n,
      journalLength: 3,
      journalStream: 'JOURNAL',
      journalSubject: 'journal.order-42/4',
      parentInvocationId: 'order-42',
      parent: PARENT,
      startSequence: 41n,
      keyedStateCleared: ['draft'],
      journalLastSequence: 1_203n,
      runSequence: 57n,
      runDelivery: 2,
    });
    expect(state.journal.map((e) => [e.stepNumber, e.stepType, e.phase])).toEqual([
      [0, 'TicketService.Reserve', EntryPhase.COMPLETED],
      [1, 'SET:tickets', EntryPhase.COMPLETED],
      [2, 'AWAKEABLE:awk_2_order-42/4', EntryPhase.STARTED],
    ]);
    expect(decodeJson(state.journal[0]!.request)).toEqual({ ticketId: 'seat-12' });
    expect(decodeJson(state.journal[0]!.response)).toEqual({ reserved: true });
    expect(decodeJson(state.input)).toEqual({ ticketId: 'seat-12' });
    expect(decoded(state.workflowState)).toEqual({ tickets: ['seat-12'] });
    expect(decoded(state.keyedStateChanges)).toEqual({ tickets: ['seat-1', 'seat-12'], count: 2 });
  });

  it('a KeyedState with a holder, three waiting, and the values before the last applied changes', () => {
    const record = fromBinary(KeyedStateSchema, v1('keyed-state.bin'));
    expect(record.holder).toBe('cart-3');
    expect(record.waiting.map((w) => [w.invocationId, w.handler])).toEqual([
      ['cart-4', 'cart_add'],
      ['cart-5', 'cart_add'],
      ['cart-6', 'cart_add'],
    ]);
    expect(decoded(record.values)).toEqual({ tickets: ['seat-1', 'seat-12'], count: 2 });
    expect(record.lastApplied).toBe('order-42/4');
    expect(decoded(record.valuesBeforeLastApplied)).toEqual({ tickets: ['seat-1'], draft: 'x' });
    expect(record.handedFrom).toBe('order-42/4');
    expect(record.handedTo).toMatchObject({ invocationId: 'cart-3', handler: 'cart_add' });
  });

  it('an AwakeableState, resolved', () => {
    const awakeable = fromBinary(AwakeableStateSchema, v1('awakeable-state.bin'));
    expect(awakeable).toMatchObject({ awakeableId: 'awk_2_order-42/4', invocationId: 'order-42/4', resolved: true, error: '', createdAt: 1_731_276_060n });
    expect(decodeJson(awakeable.result)).toEqual({ approved: true });
  });

  it("a Command starting a child, with its parent", () => {
    const command = fromBinary(CommandSchema, v1('command.bin'));
    expect(command).toMatchObject({
      invocationId: 'order-42/4',
      handler: 'cart_add',
      partitionKey: 'cart-ada',
      kind: CommandKind.START,
      submittedAtMs: 1_731_276_060_000n,
      parentInvocationId: 'order-42',
      parent: PARENT,
      retryOf: '',
    });
    expect(decodeJson(command.args)).toEqual({ ticketId: 'seat-12' });
  });

  it('a JournalEntry of a service call that failed for good', () => {
    const entry = fromBinary(JournalEntrySchema, v1('journal-entry.bin'));
    expect(entry).toMatchObject({
      stepNumber: 3,
      stepType: 'HelloService.SayHello',
      error: 'name is required',
      errorCode: 3,
      phase: EntryPhase.COMPLETED,
      recordedAtMs: 1_731_276_063_000n,
      attempts: 2,
    });
    expect(decodeJson(entry.request)).toEqual({ name: '' });
  });
});

describe('the wire schema', () => {
  const snapshot = JSON.parse(new TextDecoder().decode(v1('schema.json'))) as WireSchema;

  it("keeps every field of v1's messages under its number, name and type, and every enum value", () => {
    expect(wireSchemaBreaks(snapshot, describeWireSchema(file_durable_durable))).toEqual([]);
  });

  it('would tell a field removed, renumbered or retyped, and lets new ones in', () => {
    const current = structuredClone(snapshot);
    const command = current.messages['durable.Command']!;
    delete command['3'];
    command['12'] = command['2']!;
    delete command['2'];
    command['4'] = { name: 'args', type: 'string' };
    command['99'] = { name: 'added', type: 'string' };
    current.enums['durable.EntryPhase']!['1'] = 'ENTRY_PHASE_BEGUN';
    expect(wireSchemaBreaks(snapshot, current)).toEqual([
      'durable.Command field 2 (string handler) is gone',
      'durable.Command field 3 (string service) is gone',
      'durable.Command field 4 was bytes args, is string args',
      'enum durable.EntryPhase value 1 was ENTRY_PHASE_STARTED, is ENTRY_PHASE_BEGUN',
    ]);
  });
});
