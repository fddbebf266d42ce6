/** Starts a workflow by name with JSON input, an idempotency key and a partition key. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

export function StartPage({ onError }: { onError: (err: unknown) => void }) {
  const [names, setNames] = useState<string[]>([]);
  const [form, setForm] = useState({ workflow: '', input: '{}', idempotency_key: '', partition_key: '' });
  useEffect(() => {
    api('/api/workflows/stats').then((s) => setNames(Object.keys(s.by_handler)), onError);
  }, []);
  const set = (key: keyof typeof form) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      if (form.workflow.trim() === '') throw new Error('name the workflow to start');
      try {
        JSON.parse(form.input);
      } catch {
        throw new Error('the input is not valid JSON');
      }
      const query = form.partition_key ? `?partition_key=${encodeURIComponent(form.partition_key)}` : '';
      const res = await api(`/api/workflows/${encodeURIComponent(form.workflow.trim())}/invoke${query}`, {
        method: 'POST',
        body: form.input,
        headers: { 'Content-Type': 'application/json', ...(form.idempotency_key ? { 'Idempotency-Key': form.idempotency_key } : {}) },
      });
      location.hash = `#/i/${encodeURIComponent(res.invocation_id)}`;
    } catch (err) {
      onError(err);
    }
  };
  return html`<form class="start" onSubmit=${submit}>
    <h2>Start a workflow</h2>
    <label>Workflow <input name="workflow" list="workflow-names" value=${form.workflow} onInput=${set('workflow')} /></label>
    <datalist id="workflow-names">${names.map((n) => html`<option value=${n} />`)}</datalist>
    <label>Input (JSON) <textarea name="input" rows="6" value=${form.input} onInput=${set('input')}></textarea></label>
    <label>Idempotency key <input name="idempotency_key" value=${form.idempotency_key} onInput=${set('idempotency_key')} /></label>
    <label>Partition key <input name="partition_key" value=${form.partition_key} onInput=${set('partition_key')} /></label>
    <button type="submit">Start</button>
  </form>`;
}
