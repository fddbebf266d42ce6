import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceCallError, createGrpcInvoker, createLogger, loadServiceRegistry, type ServiceInvoker } from '@durable/core';
import { type RunningTicketService, startTicketService } from './ticket-service.js';

let tickets: RunningTicketService;
let invoker: ServiceInvoker;
const lines: string[] = [];

beforeAll(async () => {
  // The guide's terminal lines, captured: `2024/11/10 22:00:00 Received Reserve request: ticket_id=A1`.
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter((l) => l !== '')));
  tickets = await startTicketService({ port: 0, host: '127.0.0.1', logger: createLogger({ name: 'ticket-service', format: 'pretty', destination }) });
  invoker = createGrpcInvoker(loadServiceRegistry({ addresses: { TicketService: `127.0.0.1:${tickets.port}` } }));
});

afterAll(async () => {
  invoker.close();
  await tickets.stop();
});

describe('TicketService', () => {
  it('reserves a free ticket and refuses it while it is taken', async () => {
    expect(await invoker.call('TicketService', 'Reserve', { ticketId: 'A1' })).toEqual({ success: true, message: 'reserved A1' });
    expect(await invoker.call('TicketService', 'Reserve', { ticketId: 'A1' })).toEqual({
      success: false,
      message: 'ticket A1 is already reserved',
    });
    expect(tickets.reserved.has('A1')).toBe(true);
    expect(lines).toContainEqual(expect.stringMatching(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d Received Reserve request: ticket_id=A1$/));
  });

  it('frees a ticket on Release, which says whether it was reserved', async () => {
    await invoker.call('TicketService', 'Reserve', { ticketId: 'B2' });
    expect(await invoker.call('TicketService', 'Release', { ticketId: 'B2' })).toEqual({ success: true });
    expect(await invoker.call('TicketService', 'Release', { ticketId: 'B2' })).toEqual({ success: false });
    expect(await invoker.call('TicketService', 'Reserve', { ticketId: 'B2' })).toEqual({ success: true, message: 'reserved B2' });
  });

  it('answers a retried Reserve as it answered the first attempt under the same idempotency key', async () => {
    const options = { metadata: { 'idempotency-key': 'inv-7:0' } };
    const first = await invoker.call('TicketService', 'Reserve', { ticketId: 'C3' }, options);
    const retried = await invoker.call('TicketService', 'Reserve', { ticketId: 'C3' }, options);
    expect(first).toEqual({ success: true, message: 'reserved C3' });
    expect(retried).toEqual(first);
    expect(tickets.received.filter((r) => r.idempotencyKey === 'inv-7:0')).toHaveLength(2);
    expect(await invoker.call('TicketService', 'Reserve', { ticketId: 'C3' }, { metadata: { 'idempotency-key': 'inv-8:0' } })).toEqual({
      success: false,
      message: 'ticket C3 is already reserved',
    });
  });

  it('answers INVALID_ARGUMENT for an empty ticket ID', async () => {
    await expect(invoker.call('TicketService', 'Reserve', { ticketId: '' })).rejects.toSatisfy(
      (err) => err instanceof ServiceCallError && err.status === 3 && err.details === 'ticket_id is required',
    );
  });
});
