/**
 * The invocation list: filters, counts by status and workflow, pages by the index's cursor,
 * live updates from the state feed, and bulk actions over the filter.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, follow } from './api.js';

const STATUSES = ['pending', 'running', 'suspended', 'paused', 'completed', 'failed', 'cancelled'];
const ACTIONS = ['cancel', 'pause', 'resume', 'retry'];

export interface Filter {
  status: string;
  handler: string;
  partition_key: string;
  created_after: string;
  created_before: string;
}

/** The filter as API fields: times from the date inputs as unix ms. */
function filterFields(f: Filter): Record<string, string | number> {
  const ms = (local: string) => (local === '' ? undefined : new Date(local).getTime());
  const out: Record<string, string | number> = {};
  if (f.status) out.status = f.status;
  if (f.handler) out.handler = f.handler;
  if (f.partition_key) out.partition_key = f.partition_key;
  const after = ms(f.created_after);
  const before = ms(f.created_before);
  if (after !== undefined) out.created_after_ms = after;
  if (before !== undefined) out.created_before_ms = before;
  return out;
}

/** An invocation in the list, as `GET /api/workflows` and the state events give it. */
interface Row {
  invocation_id: string;
  handler: string;
  status: string;
  partition_key: string;
  created_at_ms: number;
  updated_at_ms: number;
}

/** `GET /api/workflows`. */
interface Page {
  invocations: Row[];
  next_cursor?: string;
}

/** `GET /api/workflows/stats`. */
interface Stats {
  total: number;
  by_status: Record<string, number>;
  by_handler: Record<string, number>;
}

/** A bulk action's answer: how many the filter matched, and, once run, how many it did. */
interface BulkResult {
  matched: number;
  done: number;
  failed: number;
}

function matches(row: Row, fields: Record<string, string | number>): boolean {
  return (
    (fields.status === undefined || row.status === fields.status) &&
    (fields.handler === undefined || row.handler === fields.handler) &&
    (fields.partition_key === undefined || row.partition_key === fields.partition_key) &&
    (fields.created_after_ms === undefined || row.created_at_ms >= Number(fields.created_after_ms)) &&
    (fields.created_before_ms === undefined || row.created_at_ms < Number(fields.created_before_ms))
  );
}

/**
 * The rows with a state from the live feed laid over them: updated in place, added on top,
 * or taken out when it no longer matches the filter; an older state than the row's is left.
 */
function withState(rows: Row[], state: Row, fields: Record<string, string | number>): Row[] {
  const at = rows.findIndex((r) => r.invocation_id === state.invocation_id);
  if (at >= 0 && (rows[at] as Row).updated_at_ms > state.updated_at_ms) return rows;
  if (!matches(state, fields)) return at >= 0 ? rows.filter((_, i) => i !== at) : rows;
  return at >= 0 ? rows.map((r, i) => (i === at ? state : r)) : [state, ...rows];
}

export function ListPage({ onError }: { onError: (err: unknown) => void }) {
  const [filter, setFilter] = useState<Filter>({ status: '', handler: '', partition_key: '', created_after: '', created_before: '' });
  const [applied, setApplied] = useState(filter);
  const [rows, setRows] = useState<Row[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [stats, setStats] = useState<Stats | null>(null);
  const [bulk, setBulk] = useState<{ action: string; matched?: number; result?: BulkResult } | null>(null);
  const fields = filterFields(applied);
  const query = new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)]));

  /** Counts first-page loads: the answer of one a later one replaced (a filter applied since) is dropped. */
  const loads = useRef(0);
  /** States the live feed brought while the latest first page was loading: laid over its answer, which may be older. */
  const fedWhileLoading = useRef<Map<string, Row> | undefined>(undefined);

  const load = async (from?: string) => {
    const mine = from ? loads.current : ++loads.current;
    if (!from) fedWhileLoading.current = new Map();
    try {
      const page = await api<Page>(`/api/workflows?${query}&limit=50${from ? `&cursor=${encodeURIComponent(from)}` : ''}`);
      if (mine !== loads.current) return;
      if (from) {
        setRows((old) => {
          const shown = new Set(old.map((r) => r.invocation_id));
          return [...old, ...page.invocations.filter((r) => !shown.has(r.invocation_id))];
        });
      } else {
        const fed = [...(fedWhileLoading.current?.values() ?? [])];
        fedWhileLoading.current = undefined;
        setRows((old) => {
          // The index follows the states a moment later: the rows shown of the answer's
          // invocations, and the states fed meanwhile, are laid over it (the newer wins).
          const answered = new Set(page.invocations.map((r) => r.invocation_id));
          const newer = [...old.filter((r) => answered.has(r.invocation_id)), ...fed];
          return newer.reduce((rows, state) => withState(rows, state, fields), page.invocations);
        });
      }
      setCursor(page.next_cursor);
      const counts = await api<Stats>('/api/workflows/stats');
      if (mine === loads.current) setStats(counts);
    } catch (err) {
      if (mine !== loads.current) return;
      if (!from) fedWhileLoading.current = undefined;
      onError(err);
    }
  };
  useEffect(() => void load(), [query.toString()]);

  // Live: every state written; the rows the filter takes are updated or added on top. Once
  // the feed follows (again, after a break), the list is read anew: nothing written before
  // it is missed, and what is written after comes through the feed.
  useEffect(() => {
    const stop = new AbortController();
    void follow<{ event: 'ready'; data: unknown } | { event: 'state'; data: Row }>(
      () => '/api/workflows/events',
      ({ event, data }) => {
        if (event === 'ready') void load();
        if (event !== 'state') return;
        fedWhileLoading.current?.set(data.invocation_id, data);
        setRows((old) => withState(old, data, fields));
      },
      stop.signal,
      onError,
    );
    return () => stop.abort();
  }, [query.toString()]);

  const set = (key: keyof Filter) => (e: Event) => setFilter({ ...filter, [key]: (e.currentTarget as HTMLInputElement | HTMLSelectElement).value });
  const countBulk = async (action: string) => {
    try {
      const dry = await api<BulkResult>(`/api/workflows/bulk/${action}`, { method: 'POST', body: { ...fields, dry_run: true } });
      setBulk({ action, matched: dry.matched });
    } catch (err) {
      onError(err);
    }
  };
  const runBulk = async () => {
    if (!bulk) return;
    try {
      const result = await api<BulkResult>(`/api/workflows/bulk/${bulk.action}`, { method: 'POST', body: fields });
      setBulk({ ...bulk, result });
      await load();
    } catch (err) {
      onError(err);
    }
  };

  return html`<section>
    ${stats &&
    html`<div class="counts">
      <span class="count">total <b>${stats.total}</b></span>
      ${STATUSES.map((s) => html`<button class="count status-${s}" onClick=${() => { const f = { ...filter, status: s }; setFilter(f); setApplied(f); }}>${s} <b>${stats.by_status[s] ?? 0}</b></button>`)}
      <span class="sep"></span>
      ${Object.entries(stats.by_handler).map(([h, n]) => html`<button class="count" onClick=${() => { const f = { ...filter, handler: h }; setFilter(f); setApplied(f); }}>${h} <b>${String(n)}</b></button>`)}
    </div>`}
    <form class="filters" onSubmit=${(e: Event) => { e.preventDefault(); setApplied(filter); setBulk(null); }}>
      <label>Status <select name="status" value=${filter.status} onChange=${set('status')}><option value="">any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
      <label>Workflow <input name="handler" value=${filter.handler} onInput=${set('handler')} /></label>
      <label>Partition key <input name="partition_key" value=${filter.partition_key} onInput=${set('partition_key')} /></label>
      <label>Created after <input type="datetime-local" name="created_after" value=${filter.created_after} onInput=${set('created_after')} /></label>
      <label>Created before <input type="datetime-local" name="created_before" value=${filter.created_before} onInput=${set('created_before')} /></label>
      <button type="submit">Apply</button>
    </form>
    <div class="bulk">
      Over this filter: ${ACTIONS.map((a) => html`<button class="bulk-${a}" onClick=${() => countBulk(a)}>${a}…</button>`)}
      ${bulk && bulk.matched !== undefined && !bulk.result &&
      html`<span class="confirm">${bulk.matched} invocations match. ${bulk.action} them?
        <button class="danger" onClick=${runBulk}>Yes, ${bulk.action} ${bulk.matched}</button>
        <button onClick=${() => setBulk(null)}>No</button></span>`}
      ${bulk?.result && html`<span class="done">${bulk.action}: ${bulk.result.done} done, ${bulk.result.failed} failed of ${bulk.result.matched}</span>`}
    </div>
    <table class="invocations">
      <thead><tr><th>Invocation</th><th>Workflow</th><th>Status</th><th>Partition key</th><th>Created</th><th>Updated</th></tr></thead>
      <tbody>
        ${rows.map((r) => html`<tr data-id=${r.invocation_id}>
          <td><a href=${`#/i/${encodeURIComponent(r.invocation_id)}`}>${r.invocation_id}</a></td>
          <td>${r.handler}</td><td><span class=${`status status-${r.status}`}>${r.status}</span></td><td>${r.partition_key}</td>
          <td>${new Date(r.created_at_ms).toLocaleString()}</td><td>${new Date(r.updated_at_ms).toLocaleString()}</td>
        </tr>`)}
      </tbody>
    </table>
    ${rows.length === 0 && html`<p class="muted">No invocations match.</p>`}
    ${cursor && html`<button onClick=${() => load(cursor)}>Next page</button>`}
  </section>`;
}
