import { describe, expect, it } from 'vitest';
import { engineNames } from '../config.js';
import { decodeHandlerToken, encodeHandlerToken, indexEntrySubject, parseIndexSubject } from './execution-index.js';

describe('execution index subjects', () => {
  it('keep a handler name as one reversible token', () => {
    expect(encodeHandlerToken('hello_workflow')).toBe('hello_workflow');
    expect(encodeHandlerToken('order.process-v2')).toBe('order=2Eprocess-v2');
    for (const name of ['a.b.c', 'x=y', 'spaces and *>', 'café', '=2E']) {
      const token = encodeHandlerToken(name);
      expect(token).toMatch(/^[A-Za-z0-9_=-]+$/);
      expect(decodeHandlerToken(token)).toBe(name);
    }
  });

  it('name status, handler and invocation in four tokens after the prefix', () => {
    const names = engineNames('ns');
    const subject = indexEntrySubject(names, 'completed', 'order.process', 'abc=_-1');
    expect(subject).toBe('ns.index.completed.order=2Eprocess.abc=_-1');
    expect(parseIndexSubject(names, subject)).toEqual({ status: 'completed', handler: 'order.process', invocationId: 'abc=_-1' });
    expect(parseIndexSubject(names, 'ns.index.completed.extra.token.id')).toBeNull();
    expect(parseIndexSubject(names, 'other.index.completed.h.id')).toBeNull();
  });
});
