// The dashboard in Chromium against a real server and Redis: a placement tenant named
// "constructor" (a name the server takes) is not refused by the editor's own check, and the
// keyboard focus goes back to the pin control after a confirmed pin even when the knob's
// stream event (which rebuilds the panel) comes before the pin's HTTP answer.
import type { Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from './helpers/api-browser.ts';
import { HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const WAIT = { timeout: 20_000 };

describe('dashboard editor names and focus after a confirm', () => {
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
    await page.locator('#live[data-status="live"]').waitFor(WAIT);
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await redis?.stop();
  });
  const row = (name: string) => page.locator(`tr[data-knob="${name}"]`);
  const select = async (name: string) => {
    await row(name).click();
    await page.locator('#detail-name', { hasText: name }).waitFor(WAIT);
  };

  it('lets an operator place a tenant named "constructor", which the server accepts', async () => {
    const name = 'placement.map';
    await select(name);
    const posts: unknown[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith(`/api/knobs/${name}/promote`))
        posts.push(r.postDataJSON());
    });
    await page.locator('#edit-value').fill('{"constructor": 1}');
    await page.locator('#edit-reason').fill('move tenant constructor');
    await page.locator('#edit-submit').click();
    await page.waitForTimeout(1500);
    const localError = await page.locator('#edit-value-error').innerText();
    // The editor refused it under a rule the server does not have (a plain tenant name).
    expect({ localError, posts: posts.length }).toEqual({ localError: '', posts: 1 });
    await expect.poll(async () => (await api.knobs.get(name)).value).toEqual({ constructor: 1 });
  });

  it('gives the keyboard focus back to the pin button after a pin confirmed with the keyboard', async () => {
    const name = 'messaging.linger_ms';
    await select(name);
    // The pin's HTTP answer comes after its stream event (the server publishes, then answers).
    const late = async (route: Route) => {
      const res = await route.fetch();
      await page.locator('#knob-detail .pinned-note').waitFor(WAIT);
      await route.fulfill({ response: res });
    };
    await page.route(`**/api/knobs/${name}/pin`, late);
    try {
      await page.locator('#pin-btn').focus();
      await page.keyboard.press('Enter');
      await page.locator('#confirm-reason').waitFor(WAIT);
      await page.keyboard.type('hold it');
      await page.keyboard.press('Enter');
      await page.locator('#confirm-dialog:not([open])').waitFor({ state: 'attached', ...WAIT });
      await page.locator('#unpin-btn').waitFor(WAIT);
      await page.waitForTimeout(1500);
      const focused = await page.evaluate(
        () => document.activeElement?.id || document.activeElement?.tagName,
      );
      expect(focused).toBe('unpin-btn');
    } finally {
      await page.unroute(`**/api/knobs/${name}/pin`, late);
    }
  });
});
