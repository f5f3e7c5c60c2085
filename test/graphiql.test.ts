import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.js';
import { waitFor } from './helpers/wait.js';

/**
 * GraphiQL as a person uses it: Debian's Chromium (driven by playwright-core) opens the
 * gateway's GraphiQL page with nothing reachable but loopback, runs an orderBook subscription
 * and watches the live price levels change in the result pane.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Belt and braces beside the request routing below: no name but localhost resolves.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];
const SCREENSHOT = join(tmpdir(), 'graphiql-orderbook.png');

/** One line: Monaco auto-indents and auto-closes brackets when a multi-line text is typed. */
const QUERY =
  'subscription LiveBook { orderBook(symbol: "BTCUSDT", depth: 3) { symbol lastUpdateId bids { price quantity } asks { price quantity } } }';

const DECIMAL = /^\d+(\.\d+)?$/;

interface Level {
  price: string;
  quantity: string;
}
interface PaneBook {
  symbol: string;
  lastUpdateId: number;
  bids: Level[];
  asks: Level[];
}

/** Loopback only; blob: and data: URLs are not network (blob: is checked by its origin). */
function isLoopback(url: string): boolean {
  if (url.startsWith('data:')) return true;
  const target = url.startsWith('blob:') ? url.slice('blob:'.length) : url;
  try {
    const { hostname } = new URL(target);
    return hostname === '127.0.0.1' || hostname === 'localhost';
  } catch {
    return false;
  }
}

/** The text of a Monaco editor (GraphiQL 5): its rendered lines, non-breaking spaces undone. */
async function editorText(page: Page, label: string): Promise<string> {
  const text = await page.getByLabel(label, { exact: true }).locator('.view-lines').innerText();
  return text.replace(/\u00a0/g, ' ');
}

/** The order book shown in the result pane, or undefined while it shows none (or is mid-update). */
async function paneBook(page: Page): Promise<PaneBook | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await editorText(page, 'Result Window'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !('data' in parsed)) return undefined;
  const data = parsed.data as { orderBook?: PaneBook } | null;
  return data?.orderBook ?? undefined;
}

describe('GraphiQL in Chromium', () => {
  let stack: Stack | undefined;
  let context: BrowserContext | undefined;
  let userDataDir: string | undefined;

  afterAll(async () => {
    await context?.close();
    await stack?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  it('runs an orderBook subscription over WebSocket, offline, and shows live price levels', async () => {
    // In the test, not in a hook: a missing browser fails this test (a failing hook would only
    // mark it skipped).
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `The GraphiQL browser test needs Debian's Chromium at ${CHROMIUM}, which is missing. ` +
          'Install it: apt-get update && apt-get install -y --no-install-recommends chromium ' +
          '(.ci/run does this).',
      );
    }
    stack = await startStack();
    userDataDir = await mkdtemp(join(tmpdir(), 'graphiql-chromium-'));
    // launchPersistentContext passes the fresh `--user-data-dir` itself.
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 1100 },
    });
    const blocked: string[] = [];
    const requested: string[] = [];
    const pageErrors: string[] = [];
    const sockets: string[] = [];
    let framesReceived = 0;
    await context.route(
      (url) => !isLoopback(url.href),
      (route) => {
        blocked.push(route.request().url());
        return route.abort('blockedbyclient');
      },
    );
    await context.routeWebSocket(
      (url) => !isLoopback(url.href),
      (ws) => {
        blocked.push(ws.url());
        return ws.close();
      },
    );
    context.on('request', (request) => requested.push(request.url()));

    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framereceived', () => framesReceived++);
    });

    await page.goto(stack.gw.url);
    // GraphiQL is up (its bundle is inline: no CDN) and shows the default orderBook subscription.
    await waitFor(
      async () => /orderBook\(/.test(await editorText(page, 'Operation Editor')),
      15_000,
      'the GraphiQL editor with its default query',
    );

    // Replace the editor's content with our own subscription, as a person would type it.
    await page.getByLabel('Operation Editor', { exact: true }).locator('.view-lines').click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.insertText(QUERY);
    await page.getByLabel('Prettify query (Shift-Ctrl-P)').click();
    await waitFor(
      async () =>
        (await editorText(page, 'Operation Editor')).includes(
          'orderBook(symbol: "BTCUSDT", depth: 3) {',
        ),
      5_000,
      'the typed subscription in the editor',
    );

    // GraphiQL takes the operation name from the edited document a moment later; its tab shows it.
    await page.locator('.graphiql-tab-button').filter({ hasText: 'LiveBook' }).waitFor();
    await page.getByLabel('Execute query (Ctrl-Enter)').click();

    // The result pane updates as new views arrive: collect distinct views for a while.
    const views: PaneBook[] = [];
    await waitFor(
      async () => {
        const book = await paneBook(page);
        const last = views[views.length - 1];
        if (book && book.lastUpdateId !== last?.lastUpdateId) views.push(book);
        const levels = new Set(views.map((v) => JSON.stringify([v.bids, v.asks])));
        return views.length >= 4 && levels.size >= 2;
      },
      15_000,
      'the result pane to show changing order book views',
    );
    await page.screenshot({ path: SCREENSHOT });

    for (const book of views) {
      expect(book.symbol).toBe('BTCUSDT');
      expect(book.bids).toHaveLength(3);
      expect(book.asks).toHaveLength(3);
      for (const level of [...book.bids, ...book.asks]) {
        expect(level.price).toMatch(DECIMAL);
        expect(level.quantity).toMatch(DECIMAL);
      }
      const bids = book.bids.map((l) => Number(l.price));
      const asks = book.asks.map((l) => Number(l.price));
      expect(bids).toEqual([...bids].sort((a, b) => b - a));
      expect(asks).toEqual([...asks].sort((a, b) => a - b));
      expect(bids[0]).toBeLessThan(asks[0]!);
    }
    const ids = views.map((v) => v.lastUpdateId);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    // Over GraphiQL's WebSocket (graphql-transport-ws) to the gateway, several frames in.
    expect(sockets).toContain(stack.wsUrl);
    expect(framesReceived).toBeGreaterThanOrEqual(views.length);
    // Nothing but loopback was requested, and nothing had to be blocked.
    expect(blocked).toEqual([]);
    expect(requested.filter((url) => !isLoopback(url))).toEqual([]);
    expect(requested).toContain(stack.gw.url);
    expect(pageErrors).toEqual([]);

    // The guard itself works: a request off loopback from the page is caught and blocked.
    const probe = 'http://cdn.example.invalid/graphiql.js';
    const outcome = await page.evaluate(
      (url) =>
        fetch(url).then(
          () => 'loaded',
          () => 'failed',
        ),
      probe,
    );
    expect(outcome).toBe('failed');
    expect(blocked).toEqual([probe]);
  });
});
