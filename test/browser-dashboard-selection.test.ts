// The knob panel after another knob is selected (Chromium through playwright-core, a real
// server and Redis): until the new knob's history arrives, none is drawn. Before, the previous
// knob's history, chart and rollback buttons stayed under the new knob's name whenever the
// list redrew first (the 5 s poll while the stream is down), and its rollback buttons sent the
// old knob's versions for the new knob (review).
import type { Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from './helpers/api-browser.ts';
import { HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const WAIT = { timeout: 20_000 };

describe('the detail panel after selecting another knob', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let browser: Browser;
  let page: Page;
  let operatorToken: string;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis, { listen: true });
    api.clock.advance(HOUR_MS / 2);
    operatorToken = await api.token('operator');
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(`${api.url}/`);
    await page.locator('#login-token').fill(operatorToken, WAIT);
    await page.locator('#login-ok').click();
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await redis?.stop();
  });

  const row = (name: string) => page.locator(`tr[data-knob="${name}"]`);
  const promote = async (name: string, value: unknown) => {
    const cur = await api.knobs.get(name);
    api.clock.advance(120_000);
    const res = await fetch(`${api.url}/api/knobs/${name}/promote`, {
      method: 'POST',
      headers: { ...api.bearer(operatorToken), 'content-type': 'application/json' },
      body: JSON.stringify({ value, baseVersion: cur.version, reason: 'from the API' }),
    });
    expect(res.status).toBe(200);
  };

  it("never shows knob A's history under knob B's name", async () => {
    const a = 'scheduler.straggler_threshold';
    const b = 'scheduler.retry_limit';
    await promote(a, 4);
    await promote(a, 5);
    await promote(a, 6); // A: v1..v4; B: v1 only
    await page.locator('#live[data-status="live"]').waitFor(WAIT);
    await row(a).click();
    await page.locator('#knob-detail .history tr[data-version="4"]').waitFor(WAIT);
    // The stream goes down (the 5 s poll redraws the list), and B's history is slow.
    await page.route('**/api/events', (r: Route) => r.abort());
    api.app.server.closeAllConnections();
    await page.locator('#live:not([data-status="live"])').waitFor(WAIT);
    const slow: Route[] = [];
    await page.route(`**/api/knobs/${b}/history**`, (r: Route) => void slow.push(r));
    await row(b).click();
    // Drawn by the list's redraw (B's history is still on its way).
    await page.locator('#detail-name', { hasText: b }).waitFor(WAIT);
    const versions = await page
      .locator('#knob-detail .history tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')));
    const rollbacks = await page
      .locator('#knob-detail button[data-rollback]')
      .evaluateAll((bs) => bs.map((x) => x.getAttribute('data-rollback')));
    expect({ versions, rollbacks }).toEqual({ versions: [], rollbacks: [] });
    // B's own history, once it comes, is drawn.
    await page.unroute(`**/api/knobs/${b}/history**`);
    for (const r of slow) await r.continue().catch(() => {});
    await page.locator('#knob-detail .history tr[data-version="1"]').waitFor(WAIT);
  }, 60_000);
});
