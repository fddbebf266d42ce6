/**
 * One invocation: its state, actions, awakeables, children, keyed state, and its journal as
 * a timeline read a page of steps at a time and followed live.
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, follow } from './api.js';
import { JsonView } from './json-view.js';

/** Steps read per page of the timeline. */
const PAGE_STEPS = 200;

/** A journal entry as the API gives it (`entryToJson`). */
interface EntryJson {
  step: number;
  type: string;
  phase: 'started' | 'completed';
  request: unknown;
  response: unknown;
  error?: string;
  attempts: number;
  recorded_at_ms: number;
}

/** An invocation's state as the API gives it (`stateToJson`), the fields this page shows. */
interface StateJson {
  invocation_id: string;
  handler: string;
  status: string;
  partition_key: string;
  input: unknown;
  output: unknown;
  error?: string;
  created_at_ms: number;
  ended_at_ms?: number;
  attempt: number;
  owner?: string;
  current_step: number;
  parent_invocation_id?: string;
  retry_of?: string;
  status_history: { status: string; at_ms: number }[];
  journal_length: number;
}

/** The invocation's live feed: each state written, each journal entry appended (with its stream sequence). */
type InvocationEvent = { event: 'state'; data: StateJson } | { event: 'entry'; data: EntryJson & { sequence: number } };

interface StepRow {
  step: number;
  type: string;
  started?: EntryJson;
  completed?: EntryJson;
}

/** The child invocation an `INVOKE` step's request names. */
function childOf(request: unknown): string | undefined {
  return typeof request === 'object' && request !== null && 'invocationId' in request ? String(request.invocationId) : undefined;
}

/** Merges journal entries into one row per step. */
function merge(rows: Map<number, StepRow>, entries: EntryJson[]): Map<number, StepRow> {
  const next = new Map(rows);
  for (const e of entries) {
    const row: StepRow = { ...(next.get(e.step) ?? { step: e.step, type: e.type }) };
    if (e.phase === 'started') row.started = e;
    else row.completed = e;
    row.type = e.type;
    next.set(e.step, row);
  }
  return next;
}

export function InvocationPage({ id, onError }: { id: string; onError: (err: unknown) => void }) {
  const [state, setState] = useState<StateJson | null>(null);
  const [steps, setSteps] = useState<Map<number, StepRow>>(new Map());
  const [nextAfter, setNextAfter] = useState<number | undefined>();
  const [keyed, setKeyed] = useState<Record<string, unknown>>({});
  const [notice, setNotice] = useState('');
  const path = `/api/workflows/${encodeURIComponent(id)}`;

  const loadPage = async (after?: number): Promise<number | undefined> => {
    const page = await api(`${path}/journal?limit=${PAGE_STEPS}${after !== undefined ? `&after=${after}` : ''}`);
    setSteps((old) => merge(old, page.entries));
    setNextAfter(page.next_after);
    return page.last_sequence;
  };

  useEffect(() => {
    const stop = new AbortController();
    setSteps(new Map());
    void (async () => {
      try {
        const first = await api(`${path}?journal=false`);
        setState(first);
        const lastSequence = await loadPage();
        if (first.partition_key) setKeyed((await api(`/api/keyed-state/${encodeURIComponent(first.partition_key)}`)).values);
        let after = lastSequence ?? 0;
        void follow<InvocationEvent>(
          () => `${path}/events?after_sequence=${after}`,
          (e) => {
            if (e.event === 'state') setState(e.data);
            if (e.event === 'entry') {
              after = Math.max(after, e.data.sequence);
              setSteps((old) => merge(old, [e.data]));
            }
          },
          stop.signal,
          onError,
        );
      } catch (err) {
        onError(err);
      }
    })();
    return () => stop.abort();
  }, [id]);

  const act = async (action: string) => {
    try {
      const res = await api(`${path}/${action}`, { method: 'POST' });
      setNotice(action === 'retry' ? `retried as ${res.invocation_id}` : `${action} requested`);
    } catch (err) {
      onError(err);
    }
  };

  if (!state) return html`<p class="muted">Loading ${id}…</p>`;
  const rows = [...steps.values()].sort((a, b) => a.step - b.step);
  const open = rows.filter((r) => r.type.startsWith('AWAKEABLE:') && !r.completed).map((r) => r.type.slice('AWAKEABLE:'.length));
  const children = rows.filter((r) => r.type.startsWith('INVOKE:')).map((r) => ({ workflow: r.type.slice('INVOKE:'.length), id: childOf((r.started ?? r.completed)?.request) }));
  const link = (to: string) => html`<a href=${`#/i/${encodeURIComponent(to)}`}>${to}</a>`;

  return html`<section class="invocation">
    <h2>${state.handler} <span class=${`status status-${state.status}`}>${state.status}</span></h2>
    <dl class="facts">
      <dt>Invocation</dt><dd>${state.invocation_id}</dd>
      <dt>Partition key</dt><dd>${state.partition_key}</dd>
      <dt>Attempt</dt><dd>${state.attempt}</dd>
      ${state.owner && html`<dt>Owner</dt><dd>${state.owner}</dd>`}
      <dt>Created</dt><dd>${new Date(state.created_at_ms).toLocaleString()}</dd>
      ${state.ended_at_ms && html`<dt>Ended</dt><dd>${new Date(state.ended_at_ms).toLocaleString()}</dd>`}
      ${state.parent_invocation_id && html`<dt>Parent</dt><dd>${link(state.parent_invocation_id)}</dd>`}
      ${state.retry_of && html`<dt>Retry of</dt><dd>${link(state.retry_of)}</dd>`}
      ${children.length > 0 && html`<dt>Children</dt><dd>${children.map((c) => html`<div>${c.workflow}: ${c.id ? link(c.id) : '?'}</div>`)}</dd>`}
      ${state.error && html`<dt>Error</dt><dd class="error-text">${state.error}</dd>`}
      ${state.status_history?.length > 0 &&
      html`<dt>Status history</dt><dd class="status-history">${state.status_history.map(
        (c: { status: string; at_ms: number }) => html`<div>${c.status} <span class="muted">${new Date(c.at_ms).toLocaleString()}</span></div>`,
      )}</dd>`}
    </dl>
    <div class="actions">
      ${['cancel', 'pause', 'resume', 'retry'].map((a) => html`<button class=${`action-${a}`} onClick=${() => act(a)}>${a}</button>`)}
      ${notice && html`<span class="done">${notice}</span>`}
    </div>
    <${JsonView} label="Input" value=${state.input} />
    <${JsonView} label="Output" value=${state.output} />
    ${open.map((awk) => html`<${AwakeableForm} id=${awk} onError=${onError} />`)}
    ${Object.keys(keyed).length > 0 && html`<${JsonView} label=${`Keyed state of ${state.partition_key}`} value=${keyed} />`}
    <h3>Journal <span class="muted">${rows.length} steps shown of ${state.journal_length} entries</span></h3>
    <table class="journal">
      <thead><tr><th>Step</th><th>Type</th><th>Duration</th><th>Attempts</th><th>Request / response</th></tr></thead>
      <tbody>
        ${rows.map((r) => {
          const done = r.completed;
          const duration = r.started && done ? `${done.recorded_at_ms - r.started.recorded_at_ms} ms` : done ? '' : 'waiting';
          const current = state.current_step === r.step && !['completed', 'failed', 'cancelled'].includes(state.status);
          return html`<tr class=${`step${current ? ' current' : ''}${done?.error ? ' failed' : ''}`} data-step=${r.step}>
            <td>${r.step}</td><td>${r.type}</td><td>${duration}</td><td>${(done ?? r.started)?.attempts ?? ''}</td>
            <td>
              <${JsonView} label="request" value=${(r.started ?? done)?.request} />
              <${JsonView} label="response" value=${done?.response} />
              ${done?.error && html`<div class="error-text">${done.error}</div>`}
            </td>
          </tr>`;
        })}
      </tbody>
    </table>
    ${nextAfter !== undefined && html`<button onClick=${() => loadPage(nextAfter).catch(onError)}>Load ${PAGE_STEPS} more steps</button>`}
  </section>`;
}

function AwakeableForm({ id, onError }: { id: string; onError: (err: unknown) => void }) {
  const [value, setValue] = useState('{}');
  const [done, setDone] = useState('');
  const send = async (how: 'resolve' | 'reject') => {
    try {
      let body: unknown;
      if (how === 'resolve') {
        try {
          body = { result: JSON.parse(value) };
        } catch {
          throw new Error('the result is not valid JSON');
        }
      } else body = { error: value };
      await api(`/api/awakeables/${encodeURIComponent(id)}/${how}`, { method: 'POST', body });
      setDone(`${how}d`);
    } catch (err) {
      onError(err);
    }
  };
  return html`<div class="awakeable">
    <b>Awakeable</b> <code>${id}</code>
    <textarea value=${value} onInput=${(e: Event) => setValue((e.currentTarget as HTMLTextAreaElement).value)} rows="2"></textarea>
    <button onClick=${() => send('resolve')}>Resolve with JSON</button>
    <button onClick=${() => send('reject')}>Reject with this reason</button>
    ${done && html`<span class="done">${done}</span>`}
  </div>`;
}
