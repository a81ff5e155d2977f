// The dashboard keeps up with changes it gets no stream event for, and its confirmations act on
// the row they show (Chromium through playwright-core, a real server and Redis, one page): the
// audit panel is polled; the selected knob's history and pin notes follow the poll while the
// stream is down; a rollback refused as stale is drawn again and the next confirm goes
// through; a pin sends the version its dialog shows, and a 409 draws the dialog again. A pin
// refused because another operator pinned says so and offers no pin; an unpin sends whose pin
// it shows and is drawn again on a 409; a rollback refused as pinned (423) is drawn again.
import type { Page, Request, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from './helpers/api-browser.ts';
import { ADMIN_TOKEN, HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const WAIT = { timeout: 20_000 };
/** Longer than one 5 s poll: what only a poll brings must be there by then. */
const POLL = { timeout: 8_000 };

describe('dashboard staleness in Chromium', () => {
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
  /** Each test starts live with no dialog open, whatever the one before left. */
  const ready = async () => {
    await page.evaluate(() =>
      document.querySelectorAll<HTMLDialogElement>('dialog[open]').forEach((d) => d.close()),
    );
    await page.locator('#live[data-status="live"]').waitFor(WAIT);
    await row('scheduler.policy').waitFor(WAIT);
  };
  const select = async (name: string) => {
    await row(name).click();
    await page.locator('#detail-name', { hasText: name }).waitFor(WAIT);
  };
  /** Sets a knob through the API (past its cooldown); returns its new version. */
  const promote = async (name: string, value: unknown): Promise<number> => {
    const cur = await api.knobs.get(name);
    api.clock.advance(120_000);
    const res = await fetch(`${api.url}/api/knobs/${name}/promote`, {
      method: 'POST',
      headers: { ...api.bearer(operatorToken), 'content-type': 'application/json' },
      body: JSON.stringify({ value, baseVersion: cur.version, reason: 'from the API' }),
    });
    expect(res.status).toBe(200);
    return cur.version + 1;
  };
  const versionShown = (name: string, version: number) =>
    row(name)
      .locator('[data-col="version"]', { hasText: `v${version}` })
      .waitFor(WAIT);

  it('polls the audit panel: a token created through the API (no stream event) shows', async () => {
    await ready();
    await page.locator('#audit-rows tr').first().waitFor(WAIT);
    const res = await fetch(`${api.url}/api/tokens`, {
      method: 'POST',
      headers: { ...api.bearer(ADMIN_TOKEN), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', role: 'viewer' }),
    });
    expect(res.status).toBe(201);
    const { info } = (await res.json()) as { info: { id: string } };
    const entry = page.locator('#audit-rows tr', { hasText: `token:${info.id}` });
    await entry.waitFor(POLL);
    // The actor's full name (with its token id) is the cell's tooltip.
    expect(await entry.locator('td').nth(1).getAttribute('title')).toBe('admin#env');
  });

  it("follows the selected knob's history and pin notes while the stream is down", async () => {
    await ready();
    const name = 'messaging.linger_ms';
    await select(name);
    const down = (route: Route) => route.abort();
    await page.route('**/api/events', down);
    try {
      api.app.server.closeAllConnections(); // ends the live stream; reconnects are refused
      await page.locator('#live:not([data-status="live"])').waitFor(WAIT);
      const version = await promote(name, 20);
      await page.locator(`#knob-detail .history tr[data-version="${version}"]`).waitFor(POLL);
      const pins = page.locator('#knob-detail .chart-note.note-pin');
      expect(await pins.count()).toBe(0);
      await api.knobs.pin(name, 'someone#t1', 'hold while down'); // keeps the version
      await pins.first().waitFor(POLL);
      await api.knobs.unpin(name, 'someone#t1', 'done');
    } finally {
      await page.unroute('**/api/events', down);
    }
  });

  it("never shows a knob's history under another knob's name while the new one loads", async () => {
    // Review: the previous knob's history, chart and rollback buttons stayed under the newly
    // selected knob's name when the list redrew first (the poll while the stream is down), and
    // its rollback buttons sent the old knob's versions for the new knob.
    await ready();
    const [a, b] = ['scheduler.straggler_threshold', 'scheduler.retry_limit'];
    for (const v of [4, 5, 6]) await promote(a, v); // A: 3 more versions; B: v1 only
    await select(a);
    await page.locator('#knob-detail .history tr[data-version="4"]').waitFor(WAIT);
    const down = (route: Route) => route.abort();
    const slow: Route[] = [];
    const hold = (route: Route) => void slow.push(route);
    await page.route('**/api/events', down);
    try {
      api.app.server.closeAllConnections();
      await page.locator('#live:not([data-status="live"])').waitFor(WAIT);
      await page.route(`**/api/knobs/${b}/history**`, hold);
      await select(b); // drawn by the list's redraw: B's history is still on its way
      const versions = await page
        .locator('#knob-detail .history tbody tr')
        .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')));
      const rollbacks = await page
        .locator('#knob-detail button[data-rollback]')
        .evaluateAll((bs) => bs.map((x) => x.getAttribute('data-rollback')));
      expect({ versions, rollbacks }).toEqual({ versions: [], rollbacks: [] });
      await page.unroute(`**/api/knobs/${b}/history**`, hold);
      for (const r of slow.splice(0)) await r.continue().catch(() => {});
      await page.locator('#knob-detail .history tr[data-version="1"]').waitFor(WAIT);
    } finally {
      await page.unroute(`**/api/knobs/${b}/history**`, hold);
      for (const r of slow) await r.continue().catch(() => {});
      await page.unroute('**/api/events', down);
    }
  });

  it('draws a rollback refused as stale again from the refreshed row; the next confirm goes through', async () => {
    await ready();
    const name = 'scheduler.straggler_threshold';
    await promote(name, 4);
    const target = await promote(name, 5);
    await versionShown(name, await promote(name, 6));
    await select(name);
    await page.locator(`#knob-detail button[data-rollback="${target}"]`).click();
    const diff = page.locator('#confirm-dialog[open] .diff');
    expect(await diff.innerText()).toBe('6 x median → 5 x median');
    // The knob moves while the dialog is open: the confirm is refused as stale.
    const moved = await promote(name, 7);
    await page.locator('#confirm-reason').fill('back to 5');
    await page.locator('#confirm-ok').click();
    await page.locator('#confirm-error', { hasText: 'KNOBOS_STALE_VERSION' }).waitFor(WAIT);
    // Drawn again from the refreshed row before the error shows.
    expect.soft(await diff.innerText()).toBe('7 x median → 5 x median');
    expect
      .soft(await page.locator('#confirm-dialog').innerText())
      .toContain(`restored as version ${moved + 1}`);
    api.clock.advance(120_000); // past the cooldown of the change above
    await page.locator('#confirm-ok').click();
    await versionShown(name, moved + 1);
    expect(await page.locator('#confirm-dialog').getAttribute('open')).toBeNull();
    const [last] = await api.knobs.history(name, { limit: 1 });
    expect(last).toMatchObject({ kind: 'rollback', new: 5, reason: 'back to 5' });
  });

  it('pins on the version its dialog shows, and draws the dialog again after a 409', async () => {
    await ready();
    const name = 'messaging.batch_size';
    await select(name);
    const bodies: unknown[] = [];
    const seen = (r: Request) => {
      if (r.method() === 'POST' && r.url().endsWith(`/api/knobs/${name}/pin`))
        bodies.push(r.postDataJSON());
    };
    page.on('request', seen);
    try {
      const shown = (await api.knobs.get(name)).version;
      await page.locator('#pin-btn').click();
      const dialog = page.locator('#confirm-dialog[open] .dialog-body');
      expect(await dialog.innerText()).toContain('pinned at 64 messages');
      // The knob moves while the dialog is open: the server refuses the pin as stale (409).
      const moved = await promote(name, 100);
      await page.locator('#confirm-reason').fill('hold the batch');
      await page.locator('#confirm-ok').click();
      await page.locator('#confirm-error', { hasText: 'KNOBOS_STALE_VERSION' }).waitFor(WAIT);
      expect(bodies).toEqual([{ reason: 'hold the batch', baseVersion: shown }]);
      // Drawn again from the refreshed row before the error shows.
      expect(await dialog.innerText()).toContain(`pinned at 100 messages (v${moved})`);
      await page.locator('#confirm-ok').click();
      await row(name).locator('.badge.pinned').waitFor(WAIT);
      expect(bodies[1]).toEqual({ reason: 'hold the batch', baseVersion: moved });
      expect(await api.knobs.get(name)).toMatchObject({ pinned: true, version: moved, value: 100 });
    } finally {
      page.off('request', seen);
    }
  });

  const dialogBody = () => page.locator('#confirm-dialog[open] .dialog-body');
  const okButton = () => page.locator('#confirm-dialog[open] #confirm-ok');

  it('says who pinned after a 409 "already pinned", and offers no pin', async () => {
    await ready();
    const name = 'scheduler.retry_limit';
    await select(name);
    await page.locator('#pin-btn').click();
    expect(await dialogBody().innerText()).toContain('pinned at 3 attempts');
    // Another operator pins while the dialog is open.
    await api.knobs.pin(name, 'carol#t2', 'incident 7');
    let pins = 0;
    const seen = (r: Request) => {
      if (r.method() === 'POST' && r.url().endsWith(`/api/knobs/${name}/pin`)) pins++;
    };
    page.on('request', seen);
    try {
      await page.locator('#confirm-reason').fill('hold retries');
      await okButton().click();
      await page.locator('#confirm-error', { hasText: 'KNOBOS_STATE' }).waitFor(WAIT);
      expect(await dialogBody().innerText()).toBe('Already pinned by carol: incident 7');
      expect(await okButton().innerText()).toBe('Already pinned');
      expect(await okButton().isDisabled()).toBe(true);
      // Enter in the reason does not send it either.
      await page.locator('#confirm-reason').press('Enter');
      await page.waitForTimeout(300);
      expect(pins).toBe(1);
    } finally {
      page.off('request', seen);
      await api.knobs.unpin(name, 'carol#t2', 'done');
    }
  });

  it('unpins only the pin its dialog names; a pin set since is refused (409) and drawn', async () => {
    await ready();
    const name = 'scheduler.lease_ms';
    await api.knobs.pin(name, 'bob#t1', 'hold the lease');
    await select(name);
    const bodies: unknown[] = [];
    const seen = (r: Request) => {
      if (r.method() === 'POST' && r.url().endsWith(`/api/knobs/${name}/unpin`))
        bodies.push(r.postDataJSON());
    };
    page.on('request', seen);
    try {
      await page.locator('#unpin-btn').click();
      expect(await dialogBody().innerText()).toContain('Removes the pin of bob (hold the lease)');
      // bob unpins and carol pins while the dialog is open.
      await api.knobs.unpin(name, 'bob#t1', 'done');
      await api.knobs.pin(name, 'carol#t2', 'mine now');
      await page.locator('#confirm-reason').fill('lease is fine');
      await okButton().click();
      await page.locator('#confirm-error', { hasText: 'KNOBOS_STATE' }).waitFor(WAIT);
      expect(bodies).toEqual([
        { reason: 'lease is fine', pinnedBy: 'bob#t1', pinReason: 'hold the lease' },
      ]);
      expect(await api.knobs.get(name)).toMatchObject({ pinned: true, pinnedBy: 'carol#t2' });
      expect(await dialogBody().innerText()).toContain('Removes the pin of carol (mine now)');
      // Confirmed again, knowing whose pin it is.
      await okButton().click();
      await page.locator('#pin-btn').waitFor(WAIT);
      expect(bodies[1]).toEqual({
        reason: 'lease is fine',
        pinnedBy: 'carol#t2',
        pinReason: 'mine now',
      });
      expect((await api.knobs.get(name)).pinned).toBe(false);
    } finally {
      page.off('request', seen);
    }
  });

  it('draws a rollback refused as pinned (423) again: it names the pin and offers no rollback', async () => {
    await ready();
    const name = 'scheduler.dispatch_batch';
    const target = await promote(name, 32);
    await versionShown(name, await promote(name, 64));
    await select(name);
    await page.locator(`#knob-detail button[data-rollback="${target}"]`).click();
    await api.knobs.pin(name, 'carol#t2', 'batches are fine');
    try {
      await page.locator('#confirm-reason').fill('back');
      await okButton().click();
      await page.locator('#confirm-error', { hasText: 'KNOBOS_PINNED' }).waitFor(WAIT);
      expect(await dialogBody().innerText()).toContain(
        'Pinned by carol: batches are fine. Unpin it first.',
      );
      expect(await okButton().isDisabled()).toBe(true);
    } finally {
      await api.knobs.unpin(name, 'carol#t2', 'done');
    }
  });
});
