import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  AwakeableStateSchema,
  EntryPhase,
  ExecutionStateSchema,
  JournalEntrySchema,
  ParentRefSchema,
  StatusChangeSchema,
  type JournalEntry,
} from '../gen/durable/durable_pb.js';
import { plainState } from './plain-state.js';
import { entryBytesAtMost } from './stores.js';

const bytes = (n: number) => new Uint8Array(n).fill(7);

/** A state with every field set to something other than its zero. */
function everyFieldSet() {
  return create(ExecutionStateSchema, {
    invocationId: 'inv-1',
    handler: 'order.process',
    journal: [create(JournalEntrySchema, { stepNumber: 0, stepType: 'call', response: bytes(3) })],
    currentState: bytes(4),
    status: 'running',
    currentStep: 2,
    currentStepType: 'sleep',
    workflowState: { cart: bytes(2) },
    awakeables: { a1: create(AwakeableStateSchema, { awakeableId: 'a1', invocationId: 'inv-1' }) },
    partitionKey: 'cart-ada',
    service: 'OrderService',
    input: bytes(5),
    error: 'boom',
    createdAtMs: 1n,
    updatedAtMs: 2n,
    endedAtMs: 3n,
    attempt: 2,
    owner: 'processor-1',
    journalLength: 1,
    journalStream: 'JOURNAL',
    journalSubject: 'journal.inv-1',
    parentInvocationId: 'parent-1',
    retryOf: 'inv-0',
    errorCode: 7,
    cancelRequested: true,
    pauseRequested: true,
    parent: create(ParentRefSchema, { invocationId: 'parent-1', handler: 'checkout' }),
    startSequence: 10n,
    keyedStateChanges: { tickets: bytes(1) },
    keyedStateCleared: ['old'],
    journalLastSequence: 11n,
    runSequence: 12n,
    runDelivery: 2,
    statusHistory: [create(StatusChangeSchema, { status: 'running', atMs: 1n })],
    traceParent: '00-abc-def-01',
    replySubject: '_INBOX.x',
  });
}

describe('plainState', () => {
  it('keeps every field of the state', () => {
    const state = everyFieldSet();
    const plain = plainState(state);
    for (const field of ExecutionStateSchema.fields) {
      expect(Object.hasOwn(plain, field.localName), `field ${field.localName}`).toBe(true);
      expect(plain[field.localName as keyof typeof plain], `field ${field.localName}`).toEqual(state[field.localName as keyof typeof state]);
    }
    expect(toBinary(ExecutionStateSchema, plain)).toEqual(toBinary(ExecutionStateSchema, state));
  });

  it('keeps the fields a newer version wrote, which this one does not know', () => {
    // Field 99, a varint 5: tag (99 << 3 | 0) as a varint, then the value.
    const written = new Uint8Array([...toBinary(ExecutionStateSchema, everyFieldSet()), 0x98, 0x06, 0x05]);
    const plain = plainState(fromBinary(ExecutionStateSchema, written));
    expect(toBinary(ExecutionStateSchema, plain)).toEqual(written);
  });

  it('leaves an unset parent unset', () => {
    const plain = plainState(create(ExecutionStateSchema, { invocationId: 'inv-2' }));
    expect(plain.parent).toBeUndefined();
    expect(toBinary(ExecutionStateSchema, plain)).toEqual(toBinary(ExecutionStateSchema, create(ExecutionStateSchema, { invocationId: 'inv-2' })));
  });
});

describe('entryBytesAtMost', () => {
  const entries: [string, JournalEntry][] = [
    ['an empty entry', create(JournalEntrySchema)],
    [
      'every number at its largest encoding',
      create(JournalEntrySchema, {
        stepNumber: -1,
        phase: EntryPhase.COMPLETED,
        recordedAtMs: -1n,
        errorCode: -1,
        attempts: -1,
        stepType: 'call',
        request: bytes(200),
        response: bytes(300_000),
      }),
    ],
    ['strings of three-byte characters', create(JournalEntrySchema, { stepType: '€'.repeat(50), error: '漢'.repeat(5_000), stepNumber: -5 })],
    ['strings of four-byte characters', create(JournalEntrySchema, { stepType: '😀'.repeat(50), error: '😀'.repeat(70_000) })],
  ];
  // Field 50, 1,000 bytes long: tag (50 << 3 | 2), then the length as a varint, then the bytes.
  const unknownField = new Uint8Array([0x92, 0x03, 0xe8, 0x07, ...bytes(1_000)]);
  entries.push([
    'fields a newer version wrote',
    fromBinary(JournalEntrySchema, new Uint8Array([...toBinary(JournalEntrySchema, create(JournalEntrySchema, { stepType: 'call' })), ...unknownField])),
  ]);
  it.each(entries)('is never below the encoded size: %s', (_, entry) => {
    expect(entryBytesAtMost(entry)).toBeGreaterThanOrEqual(toBinary(JournalEntrySchema, entry).length);
  });
});
