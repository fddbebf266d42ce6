import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { loadProtoServices } from './proto-services.js';

// The engine's own messages have every kind of field a service request may have:
// int64, enum, bytes, repeated messages, maps of scalars and of messages.
const protos = loadProtoServices();
const { shapes } = protos;

/** The field an InvalidArgumentError names, or undefined when the check passes. */
function failure(typeName: string, value: unknown): { field: string; message: string } | undefined {
  try {
    shapes.check(typeName, value, 'request');
    return undefined;
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    return { field: err.field, message: err.message };
  }
}

describe('MessageShapes.check', () => {
  it('accepts values of every field kind in the shapes proto-loader reads', () => {
    expect(
      failure('durable.Command', {
        invocationId: 'inv-1',
        sequence: '9007199254740993',
        submittedAtMs: 1_700_000_000_000,
        kind: 'COMMAND_KIND_RESUME',
        args: new Uint8Array([1, 2]),
        partitionKey: null,
        handler: undefined,
      }),
    ).toBeUndefined();
    expect(
      failure('durable.ExecutionState', {
        journal: [{ stepNumber: 0, stepType: 'HelloService.SayHello', response: 'eyJhIjoxfQ==' }],
        workflowState: { cart: Buffer.from('[]') },
        awakeables: { a1: { awakeableId: 'a1', resolved: true, createdAt: 5n } },
      }),
    ).toBeUndefined();
  });

  it('names a field the message does not have, and lists the fields it has', () => {
    expect(failure('durable.Command', { invocation_id: 'inv-1' })).toEqual({
      field: 'request.invocation_id',
      message: expect.stringContaining('its fields: invocationId, handler, service, args'),
    });
  });

  it('names a scalar of the wrong type', () => {
    expect(failure('hello.HelloRequest', { name: { first: 'x' } })?.field).toBe('request.name');
    expect(failure('durable.Command', { sequence: '12abc' })?.field).toBe('request.sequence');
    expect(failure('durable.JournalEntry', { stepNumber: 2 ** 31 })?.field).toBe('request.stepNumber');
    expect(failure('durable.JournalEntry', { stepNumber: 1.5 })?.field).toBe('request.stepNumber');
    expect(failure('durable.AwakeableState', { resolved: 'yes' })?.field).toBe('request.resolved');
    expect(failure('durable.Command', { args: 'not base64!' })?.field).toBe('request.args');
  });

  it('accepts enum names and numbers, and lists the names when given another', () => {
    expect(failure('durable.Command', { kind: 1 })).toBeUndefined();
    expect(failure('durable.Command', { kind: 'RESUME' })).toEqual({
      field: 'request.kind',
      message: expect.stringContaining('COMMAND_KIND_START, COMMAND_KIND_RESUME'),
    });
  });

  it('gives the path of a bad value inside lists, maps and nested messages', () => {
    expect(failure('durable.ExecutionState', { journal: [{}, { stepNumber: 'x' }] })?.field).toBe('request.journal[1].stepNumber');
    expect(failure('durable.ExecutionState', { journal: {} })?.field).toBe('request.journal');
    expect(failure('durable.ExecutionState', { workflowState: { cart: 5 } })?.field).toBe('request.workflowState["cart"]');
    expect(failure('durable.ExecutionState', { awakeables: { a1: { resolved: 'no' } } })?.field).toBe(
      'request.awakeables["a1"].resolved',
    );
  });

  it('refuses requests that are not plain objects', () => {
    expect(failure('hello.HelloRequest', 'World')?.message).toContain('got a string');
    expect(failure('hello.HelloRequest', [{ name: 'x' }])?.message).toContain('got an array');
    expect(failure('hello.HelloRequest', null)?.message).toContain('got null');
    expect(failure('hello.HelloRequest', new Date())?.message).toContain('instance of Date');
  });

  it('accepts what proto-loader itself decodes, so a response can be sent back as a request', () => {
    const sayHello = protos.method(protos.service('HelloService'), 'SayHello');
    const decoded = sayHello.definition.requestDeserialize(sayHello.definition.requestSerialize({ name: 'x' }));
    expect(failure(sayHello.requestType, decoded)).toBeUndefined();
  });

  it('knows each method’s message types by full name', () => {
    expect(shapes.methodTypes('ticket.TicketService', 'Reserve')).toEqual({
      request: 'ticket.ReserveRequest',
      response: 'ticket.ReserveResponse',
    });
  });
});
