/**
 * The web console in a real browser: headless Chromium (scripts/install-chromium.sh) driven
 * by playwright-core, against the built processor on the test cluster. The list shows a
 * workflow started over HTTP, its page shows the journal, cancel and bulk cancel take
 * effect, the list updates live, and with a token set only the prompt shows until it is given.
 */
import { execFileSync } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/bench/processes.js';
import { type AppProcess, guideLine, startApp, startHelloService, startProcessor, stopApps, uniq } from '../support/app-process.js';
import { REPO_ROOT } from '../support/nats-cluster.js';

/** Generous: the machine is shared, and a first page load starts the browser's caches. */
const UI_TIMEOUT_MS = 60_000;

let browser: Browser;
let processor: AppProcess;
let base: string;

async function invoke(workflow: string, input: unknown, partitionKey: string): Promise<string> {
  const res = await fetch(`${base}/api/workflows/${workflow}/invoke?partition_key=${partitionKey}`, { method: 'POST', body: JSON.stringify(input) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { invocation_id: string }).invocation_id;
}

async function stateOf(id: string, origin = base): Promise<Record<string, unknown>> {
  return (await (await fetch(`${origin}/api/workflows/${id}?journal=false`)).json()) as Record<string, unknown>;
}

/** A page of the console with a fresh session (no token kept). */
async function open(path: string, origin = base, before?: (page: Page) => Promise<void>): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  await before?.(page);
  await page.goto(`${origin}/ui/${path}`);
  return page;
}

beforeAll(async () => {
  const executablePath = execFileSync(`${REPO_ROOT}/scripts/install-chromium.sh`, { encoding: 'utf8' }).trim();
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const service = await startHelloService();
  const port = await freePort();
  processor = await startProcessor(service.port, { args: ['--http-port', String(port)] });
  base = `http://127.0.0.1:${port}`;
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stopApps();
});

describe('the web console', () => {
  it('lists a workflow started over HTTP, shows its journal, and cancels it', { timeout: 240_000 }, async () => {
    const key = `ui-${uniq()}`;
    const id = await invoke('nap', { ms: 3_600_000 }, key);
    const page = await open(`#/`);
    await page.locator('input[name=partition_key]').fill(key);
    await page.getByRole('button', { name: 'Apply' }).click();
    const row = page.locator(`tr[data-id="${id}"]`);
    await expect.poll(() => row.locator('.status').textContent(), { timeout: UI_TIMEOUT_MS }).toBe('suspended');

    await row.getByRole('link').click();
    await page.locator('h2', { hasText: 'nap' }).waitFor();
    // The journal so far of a suspended invocation: the clock read and the sleep it waits in.
    await page.locator('table.journal tr[data-step="1"]', { hasText: 'SLEEP' }).waitFor();
    await page.locator('table.journal tr.current[data-step="1"]').waitFor();

    await page.getByRole('button', { name: 'cancel' }).click();
    // The page follows the invocation live: the cancel shows without a reload.
    await page.locator('h2 .status', { hasText: 'cancelled' }).waitFor();
    expect((await stateOf(id)).status).toBe('cancelled');
    await page.close();
  });

  it('shows an invocation started after the page loaded, live, and bulk-cancels the filter after a count', { timeout: 240_000 }, async () => {
    const key = `bulk-${uniq()}`;
    // The live feed's requests are held until both invocations are asleep: they start after
    // the list was read and after every state of theirs was written, and must still show them.
    let releaseFeed: () => void = () => undefined;
    const feedHeld = new Promise<void>((resolve) => (releaseFeed = resolve));
    const page = await open('#/', base, (p) =>
      p.route(/\/api\/workflows\/events$/, async (route) => {
        await feedHeld;
        await route.continue().catch(() => undefined); // the page may have given it up meanwhile
      }),
    );
    const filteredList = page.waitForResponse((r) => new URL(r.url()).searchParams.get('partition_key') === key);
    await page.locator('input[name=partition_key]').fill(key);
    await page.getByRole('button', { name: 'Apply' }).click();
    await filteredList;
    await page.getByText('No invocations match.').waitFor();
    const ids = [await invoke('nap', { ms: 3_600_000 }, key), await invoke('nap', { ms: 3_600_000 }, key)];
    for (const id of ids) await expect.poll(async () => (await stateOf(id)).status, { timeout: UI_TIMEOUT_MS }).toBe('suspended');
    releaseFeed();
    // No reload: the rows come once the live feed follows.
    for (const id of ids) await page.locator(`tr[data-id="${id}"] .status`, { hasText: 'suspended' }).waitFor();

    await page.locator('select[name=status]').selectOption('suspended');
    await page.getByRole('button', { name: 'Apply' }).click();
    // The index follows the states a moment later: count again until both are in it.
    await expect
      .poll(
        async () => {
          await page.locator('button.bulk-cancel').click();
          return page.locator('.confirm').textContent();
        },
        { timeout: UI_TIMEOUT_MS },
      )
      .toContain('2 invocations match');
    await page.getByRole('button', { name: 'Yes, cancel 2' }).click();
    await page.getByText('cancel: 2 done, 0 failed of 2').waitFor();
    for (const id of ids) expect((await stateOf(id)).status).toBe('cancelled');
    await page.close();
  });

  it('shows an API error as a message in the page', { timeout: 240_000 }, async () => {
    const page = await open('#/i/no-such-invocation');
    await page.getByRole('alert').filter({ hasText: 'no-such-invocation' }).waitFor();
    await page.close();
  });

  it('with DURABLE_API_TOKEN set, shows only the prompt until the token is given (inspect ui, no processor)', { timeout: 240_000 }, async () => {
    const ui = startApp('inspect', { args: ['ui', '--port', '0'], env: { DURABLE_API_TOKEN: 'console-secret' } });
    const [, port] = await ui.waitForLine(guideLine(/Console at http:\/\/127\.0\.0\.1:(\d+)\/ui\/ \(Ctrl\+C to stop\)/), UI_TIMEOUT_MS);
    const origin = `http://127.0.0.1:${port}`;
    const page = await open('#/', origin);
    await page.locator('input[name=token]').waitFor();
    expect(await page.locator('table.invocations').count()).toBe(0);
    await page.locator('input[name=token]').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'bearer token is not' }).waitFor();
    await page.locator('input[name=token]').fill('console-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('table.invocations').waitFor();
    // Kept for the session: a reload asks no more.
    await page.reload();
    await page.locator('table.invocations').waitFor();
    await page.close();
  });
});
