/** A JSON value, pretty-printed, collapsible, and cut at a size with a way to see it all. */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';

/** Characters shown before "show all". */
const SHOWN = 2_000;

export function JsonView({ label, value }: { label: string; value: unknown }) {
  const [all, setAll] = useState(false);
  if (value === null || value === undefined) return null;
  const text = JSON.stringify(value, null, 2) ?? String(value);
  const cut = !all && text.length > SHOWN;
  return html`<details class="json">
    <summary>${label} <span class="muted">(${text.length} chars)</span></summary>
    <pre>${cut ? `${text.slice(0, SHOWN)}…` : text}</pre>
    ${cut ? html`<button class="link" onClick=${() => setAll(true)}>show all</button>` : null}
  </details>`;
}
