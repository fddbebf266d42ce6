/**
 * The web console: a single-page app on the HTTP API, served at `/ui`. Preact (a 4 kB,
 * well-kept React-compatible library) with htm (tagged templates, so no JSX compile step),
 * bundled by esbuild in `scripts/build.mjs`: nothing is fetched from the internet at run time.
 * Routes live in the URL's hash: `#/` the list, `#/i/<id>` an invocation, `#/start`.
 */
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, setToken } from './api.js';
import { InvocationPage } from './invocation-page.js';
import { ListPage } from './list-page.js';
import { StartPage } from './start-page.js';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const [error, setError] = useState('');
  // undefined: not known yet; false: the API wants a token this session does not have.
  const [allowed, setAllowed] = useState<boolean | undefined>();
  const [entered, setEntered] = useState('');

  const onError = (err: unknown) => {
    if (err instanceof ApiError && err.status === 401) setAllowed(false);
    setError(err instanceof Error ? err.message : String(err));
  };
  const check = async () => {
    try {
      await api('/api/workflows/stats');
      setAllowed(true);
      setError('');
    } catch (err) {
      setAllowed(err instanceof ApiError && err.status === 401 ? false : true);
      onError(err);
    }
  };
  useEffect(() => void check(), []);
  useEffect(() => setError(''), [hash]);

  if (allowed === undefined) return html`<p class="muted">Connecting…</p>`;
  if (!allowed) {
    return html`<form class="token" onSubmit=${(e: Event) => { e.preventDefault(); setToken(entered); void check(); }}>
      <h1>Durable console</h1>
      <p>This API needs its token (the processor's DURABLE_API_TOKEN).</p>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <input type="password" name="token" placeholder="API token" value=${entered} onInput=${(e: Event) => setEntered((e.currentTarget as HTMLInputElement).value)} />
      <button type="submit">Sign in</button>
    </form>`;
  }
  const invocation = /^#\/i\/(.+)$/.exec(hash)?.[1];
  return html`<header>
      <a href="#/" class="brand">Durable console</a>
      <nav><a href="#/">Invocations</a> <a href="#/start">Start a workflow</a></nav>
    </header>
    ${error && html`<p class="error" role="alert">${error} <button class="link" onClick=${() => setError('')}>dismiss</button></p>`}
    <main>
      ${invocation !== undefined
        ? html`<${InvocationPage} id=${decodeURIComponent(invocation)} onError=${onError} />`
        : hash === '#/start'
          ? html`<${StartPage} onError=${onError} />`
          : html`<${ListPage} onError=${onError} />`}
    </main>`;
}

const root = document.getElementById('app');
if (root) render(html`<${App} />`, root);
