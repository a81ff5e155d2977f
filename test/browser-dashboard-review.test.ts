// The dashboard's review fixes in a real browser (Debian's Chromium through playwright-core)
// against a real server and Redis, on one page: knob changes made before its stream connects
// or while the stream is refused still show; an unavailable server at load keeps the saved
// token; polls keep the keyboard focus; odd reports do not break a panel; the value editor
// checks and promotes; an action's error (field and rule) stays in its dialog; a rollback
// tells close floats apart; dialogs drop their listeners; signing out clears the page.
import type { CDPSession, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { launchBrowser, type Browser } from './helpers/api-browser.ts';
import { ADMIN_TOKEN, HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const WAIT = { timeout: 20_000 };

describe('dashboard review fixes in Chromium', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let browser: Browser;
  let page: Page;
  let operatorToken: string;
  let proposals: ProposalTable;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis, { listen: true });
    api.clock.advance(HOUR_MS / 2);
    operatorToken = await api.token('operator');
    proposals = new ProposalTable(api.knobs);
    // Telemetry of two services (two tabs to move between) and one registered policy.
    const now = Date.now();
    for (const service of ['scheduler', 'files']) {
      const tel = new Telemetry({
        redis: api.redis,
        keys: api.knobs.keys,
        service,
        instance: 'w1',
      });
      await tel.flush(now - 30_000);
      for (const t of [now - 20_000, now - 10_000]) {
        tel.gauge('queue_depth', 3);
        await tel.flush(t);
      }
    }
    const res = await fetch(`${api.url}/api/policies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'alpha',
        kind: 'scheduling',
        artifact: { heuristic: 'srpt' },
        reason: 'r',
      }),
    });
    expect(res.status).toBe(201);
    browser = await launchBrowser();
    page = await browser.context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await redis?.stop();
  });

  const row = (name: string) => page.locator(`tr[data-knob="${name}"]`);
  const cell = (name: string, col: string) => row(name).locator(`[data-col="${col}"]`).first();
  const live = () => page.locator('#live[data-status="live"]').waitFor(WAIT);
  /** Each test starts signed in and live, with no dialog open, whatever the one before left. */
  const ready = async () => {
    await page.evaluate(() =>
      document
        .querySelectorAll<HTMLDialogElement>('dialog[open]:not(#login-dialog)')
        .forEach((d) => d.close()),
    );
    if (await page.locator('#login-dialog[open]').count()) {
      await page.locator('#login-token').fill(operatorToken);
      await page.locator('#login-ok').click();
    }
    await live();
    await row('scheduler.policy').waitFor(WAIT);
  };

  /** Sets a knob through the API (past its cooldown); returns its new version. */
  const promote = async (name: string, value: unknown): Promise<number> => {
    const cur = await api.knobs.get(name);
    api.clock.advance(120_000);
    const res = await fetch(`${api.url}/api/knobs/${name}/promote`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value, baseVersion: cur.version, reason: 'from the API' }),
    });
    expect(res.status).toBe(200);
    return cur.version + 1;
  };
  /** One step up: a knob event, after which the pipeline and registry reload. */
  const bump = async (name = 'messaging.linger_ms') =>
    promote(name, ((await api.knobs.get(name)).value as number) + 1);
  const versionShown = (name: string, version: number) =>
    page.waitForFunction(
      ([n, v]) =>
        document.querySelector(`tr[data-knob="${n}"] [data-col="version"]`)?.textContent === v,
      [name, `v${version}`] as const,
      WAIT,
    );
  /** What has the keyboard focus: its tag, then its data-key, href or text. */
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return `${el?.tagName} ${el?.getAttribute('href') ?? el?.textContent?.trim() ?? ''}`;
    });

  it('shows a knob change made while the stream was refused (429) once it connects', async () => {
    // The stream is refused (another client holds the slots) while the knob changes.
    let refuse = true;
    const events = (route: Route) =>
      refuse
        ? route.fulfill({
            status: 429,
            contentType: 'application/json',
            body: JSON.stringify({
              error: { code: 'KNOBOS_API_TOO_MANY_STREAMS', message: 'full' },
            }),
          })
        : route.continue();
    await page.route('**/api/events', events);
    try {
      await page.goto(`${api.url}/`);
      await page.locator('#login-token').fill(operatorToken, WAIT);
      await page.locator('#login-ok').click();
      await row('messaging.linger_ms').waitFor(WAIT);
      expect(await page.locator('#live').getAttribute('data-status')).not.toBe('live');
      const version = await promote('messaging.linger_ms', 40);
      refuse = false;
      await live();
      await versionShown('messaging.linger_ms', version);
      expect(await cell('messaging.linger_ms', 'value').innerText()).toContain('40 ms');
    } finally {
      await page.unroute('**/api/events', events);
    }
  });

  it('backs off and reloads at most a few times when the stream connects and ends at once', async () => {
    await page.goto(`${api.url}/`);
    // Signed in already when an earlier test left the token in this tab's session.
    const login = page.locator('#login-token');
    const signIn = await login.waitFor({ state: 'visible', timeout: 3_000 }).then(
      () => true,
      () => false,
    );
    if (signIn) {
      await login.fill(operatorToken, WAIT);
      await page.locator('#login-ok').click();
    }
    await live();
    const knobLists: number[] = [];
    const seen = (r: { url(): string }) => {
      if (new URL(r.url()).pathname === '/api/knobs') knobLists.push(Date.now());
    };
    // A stream that answers its hello and ends (a proxy closing it, a server bouncing).
    const flapping = (route: Route) =>
      route.fulfill({
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        body: 'id: 1\nevent: hello\ndata: {"epoch":1}\n\n',
      });
    page.on('request', seen);
    await page.route('**/api/events', flapping);
    try {
      api.app.server.closeAllConnections();
      await page.waitForTimeout(8_000);
      // Before, the pause went back to 1 s on every connect: a reload every second or so
      // (8 or more in 8 s). Growing 1, 2, 4 s, with reloads coalesced: at most 5.
      expect(knobLists.length).toBeGreaterThan(0);
      expect(knobLists.length).toBeLessThanOrEqual(5);
    } finally {
      page.off('request', seen);
      await page.unroute('**/api/events', flapping);
    }
  });

  it('shows a knob change made after the list was read but before the stream connected', async () => {
    await ready();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let first = true;
    const held = async (route: Route) => {
      if (first) {
        first = false;
        await released;
      }
      await route.continue();
    };
    await page.route('**/api/events', held);
    try {
      await page.reload();
      await row('messaging.linger_ms').waitFor(WAIT);
      const version = await promote('messaging.linger_ms', 41);
      release();
      await live();
      await versionShown('messaging.linger_ms', version);
    } finally {
      await page.unroute('**/api/events', held);
    }
  });

  it('keeps the saved token and says the server is unavailable when whoami fails with 503', async () => {
    await ready();
    let failures = 2;
    const whoami = (route: Route) =>
      failures-- > 0
        ? route.fulfill({
            status: 503,
            contentType: 'application/json',
            body: JSON.stringify({
              error: { code: 'KNOBOS_API_UNAVAILABLE', message: 'Redis is not reachable' },
            }),
          })
        : route.continue();
    await page.route('**/api/whoami', whoami);
    try {
      await page.reload();
      await page
        .locator('#live[data-status="unavailable"]', { hasText: 'Server unavailable' })
        .waitFor(WAIT);
      expect(await page.evaluate(() => sessionStorage.getItem('knobos.token'))).toBe(operatorToken);
      await live(); // retried, and signed in with the saved token
      await row('messaging.linger_ms').waitFor(WAIT);
      expect(await page.locator('#login-dialog').getAttribute('open')).toBeNull();
      expect(failures).toBeLessThan(0);
    } finally {
      await page.unroute('**/api/whoami', whoami);
    }
  });

  it("draws the header's status group on the dark bar, not as a light status pill", async () => {
    await ready();
    const bg = await page.evaluate(
      () =>
        getComputedStyle(document.querySelector('#live')?.parentElement as Element).backgroundColor,
    );
    expect(bg).toBe('rgba(0, 0, 0, 0)');
  });

  it('keeps the keyboard focus in the telemetry tabs, the pipeline and the registry as they reload', async () => {
    await ready();
    // A tab chosen with the keyboard keeps the focus through the redraw it causes.
    const files = page.locator('#telemetry-tabs .tab', { hasText: 'files' });
    await files.focus();
    await page.keyboard.press('Enter');
    await page.locator('#telemetry-tabs .tab.active', { hasText: 'files' }).waitFor(WAIT);
    await page.waitForTimeout(200);
    expect.soft(await focused()).toBe('BUTTON files');

    // A proposal link keeps it while the list gains a row (a knob event reloads it).
    const a = await proposals.create({
      learner: 'bo',
      reason: 'r',
      changes: [{ name: 'files.cache_policy', value: 'arc', baseVersion: 1 }],
    });
    await bump();
    const link = page.locator(`tr[data-proposal="${a.id}"] a`);
    await link.waitFor(WAIT);
    await link.focus();
    const b = await proposals.create({
      learner: 'bo',
      reason: 'r',
      changes: [{ name: 'files.cache_policy', value: 'fifo', baseVersion: 1 }],
    });
    await bump();
    await page.locator(`tr[data-proposal="${b.id}"]`).waitFor(WAIT);
    expect.soft(await focused()).toBe(`A #proposal=${a.id}`);

    // A registry link keeps it through a reload that changes nothing.
    const version = page.locator('tr[data-version="alpha@1"] a');
    await version.focus();
    const reloaded = page.waitForResponse(/\/api\/policies\?limit=/, WAIT);
    await bump();
    await reloaded;
    await page.waitForTimeout(200);
    expect.soft(await focused()).toBe('A #policy=alpha%401');
  });

  it('names the panel of a failed reload, and draws reports whose fields are not as expected', async () => {
    await ready();
    const down = (route: Route) =>
      route.fulfill({
        status: 500,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'KNOBOS_TEST', message: 'proposals are down' } }),
      });
    await page.route(/\/api\/proposals\?/, down);
    try {
      await bump();
      await page
        .locator('#toasts .toast.error', {
          hasText: 'Pipeline and registry could not be loaded: proposals are down',
        })
        .waitFor(WAIT);
    } finally {
      await page.unroute(/\/api\/proposals\?/, down);
    }

    const p = await proposals.create({
      learner: 'bo',
      reason: 'r',
      changes: [{ name: 'files.cache_policy', value: 'arc', baseVersion: 1 }],
    });
    await proposals.transition(p.id, 'simulated', {
      actor: 'loop',
      reason: 'gate',
      simReport: { outcome: 'successful', reasons: 'single reason string' },
    });
    await proposals.annotate(p.id, {
      shadowReport: {
        verdict: 'better',
        reasons: { not: 'a list' },
        details: 'oops',
        divergenceRate: 'high',
      },
    });
    await bump();
    const shown = page.locator(`tr[data-proposal="${p.id}"]`);
    await shown.waitFor(WAIT);
    expect(await shown.locator('[data-col="sim"] .verdict').getAttribute('title')).toBe(
      'single reason string',
    );
    expect(await page.locator(`[data-shadow="${p.id}"]`).innerText()).toContain('no measure yet');
    expect(await page.locator('#toasts .toast.error', { hasText: 'join' }).count()).toBe(0);
    // The details dialog reads them the same way.
    await shown.locator('a').click();
    await page.locator('#detail-dialog[open]').waitFor(WAIT);
    expect(await page.locator('#detail-dialog').innerText()).toContain('single reason string');
    await page.locator('#detail-close').click();
    await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
  });

  it('changes a knob through the value editor, checked against its declaration', async () => {
    await ready();
    const name = 'messaging.batch_size';
    await row(name).click();
    await page.locator('#detail-name', { hasText: name }).waitFor(WAIT);
    const value = page.locator('#edit-value');
    const reason = page.locator('#edit-reason');
    const submit = page.locator('#edit-submit');
    const valueError = page.locator('#edit-value-error');
    expect(await value.inputValue()).toBe('64');
    const posts: unknown[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith(`/api/knobs/${name}/promote`))
        posts.push(r.postDataJSON());
    });

    // Checked here first, each failure next to the field with its rule; nothing is sent.
    await reason.fill('tune');
    for (const [text, rule] of [
      ['abc', 'rule type'],
      ['1.5', 'rule integer'],
      ['5000', 'rule max'],
      ['600', 'rule max_step_ratio'],
    ]) {
      await value.fill(text as string);
      await submit.click();
      expect(await valueError.innerText()).toContain(rule);
      expect(await value.getAttribute('aria-invalid')).toBe('true');
    }
    await value.fill('100');
    await reason.fill('');
    await submit.click();
    expect(await page.locator('#edit-reason-error').innerText()).toContain('reason is required');
    expect(posts).toEqual([]);

    // The knob changes while the operator types: the first submit says so, the second sends.
    await reason.fill('tune for the batch test');
    const moved = await bump(name);
    await page.locator('.fact dd', { hasText: `v${moved}` }).waitFor(WAIT);
    expect(await value.inputValue()).toBe('100'); // what was typed stays
    await submit.click();
    expect(await page.locator('#edit-error').innerText()).toContain(`changed to v${moved}`);
    expect(posts).toEqual([]);
    api.clock.advance(60_000); // past the cooldown of the change above
    await submit.click();
    await versionShown(name, moved + 1);
    expect(posts).toEqual([{ value: 100, baseVersion: moved, reason: 'tune for the batch test' }]);
    const [last] = await api.knobs.history(name, { limit: 1 });
    expect(last).toMatchObject({ new: 100, reason: 'tune for the batch test' });
    expect(last?.actor).toMatch(/^test-operator#/);

    // The server's refusals go next to the field they name (or under the form), with the rule.
    await value.fill('120');
    await reason.fill('again');
    await submit.click(); // within the cooldown
    await page.locator('#edit-error', { hasText: 'rule cooldown' }).waitFor(WAIT);
    await row('scheduler.policy_version').click();
    await page.locator('#detail-name', { hasText: 'scheduler.policy_version' }).waitFor(WAIT);
    await value.fill('3');
    await reason.fill('try a version');
    await submit.click();
    await valueError.filter({ hasText: 'rule registry' }).waitFor(WAIT);
    expect(await valueError.innerText()).toContain('field body.value');
  });

  it('keeps a confirmation open with the error (field and rule) and the reason when the action fails', async () => {
    await ready();
    const name = 'scheduler.dispatch_batch';
    await row(name).click();
    await page.locator('#detail-name', { hasText: name }).waitFor(WAIT);
    let fail = true;
    const pin = (route: Route) =>
      fail
        ? route.fulfill({
            status: 400,
            contentType: 'application/json',
            body: JSON.stringify({
              error: {
                code: 'KNOBOS_API_VALIDATION',
                message: 'reason is odd',
                field: 'body.reason',
                rule: 'pattern',
              },
            }),
          })
        : route.continue();
    await page.route(`**/api/knobs/${name}/pin`, pin);
    try {
      await page.locator('#pin-btn').click();
      await page.locator('#confirm-reason').fill('hold for the test');
      await page.locator('#confirm-ok').click();
      const error = page.locator('#confirm-dialog[open] #confirm-error[role="alert"]');
      await error.waitFor(WAIT);
      expect(await error.innerText()).toBe(
        'KNOBOS_API_VALIDATION: reason is odd (field body.reason, rule pattern)',
      );
      expect(await page.locator('#confirm-reason').inputValue()).toBe('hold for the test');
      fail = false;
      await page.locator('#confirm-ok').click();
      await row(name).locator('.badge.pinned').waitFor(WAIT);
      // The stream's change can draw the badge before the action's reply closes the dialog.
      await page.locator('#confirm-dialog:not([open])').waitFor({ ...WAIT, state: 'attached' });
      expect((await api.knobs.get(name)).pinReason).toBe('hold for the test');
    } finally {
      await page.unroute(`**/api/knobs/${name}/pin`, pin);
    }
    // Error toasts are alerts that stay until dismissed.
    // (A string: vitest would rewrite a dynamic import inside a function.)
    await page.evaluate("import('/dialogs.js').then((m) => m.toast('a test error', 'error'))");
    const toast = page.locator('#toasts .toast.error', { hasText: 'a test error' });
    expect(await toast.getAttribute('role')).toBe('alert');
    await toast.locator('button[aria-label="Dismiss"]').click();
    expect(await toast.count()).toBe(0);
  });

  it('shows a rollback between two close floats with the digits that tell them apart', async () => {
    await ready();
    const name = 'scheduler.straggler_threshold';
    await promote(name, 8);
    const target = await promote(name, 12.3451);
    const now = await promote(name, 12.3452);
    await versionShown(name, now);
    await row(name).click();
    await page.locator(`#knob-detail button[data-rollback="${target}"]`).click();
    expect(await page.locator('#confirm-dialog .diff').innerText()).toBe(
      '12.3452 x median → 12.3451 x median',
    );
    await page.locator('#confirm-cancel').click();
  });

  it('leaves no listeners behind on the dialogs', async () => {
    await ready();
    const cdp: CDPSession = await page.context().newCDPSession(page);
    const listeners = async (id: string) => {
      const { result } = await cdp.send('Runtime.evaluate', {
        expression: `document.getElementById('${id}')`,
      });
      const { listeners: all } = await cdp.send('DOMDebugger.getEventListeners', {
        objectId: result.objectId as string,
      });
      return all.length;
    };
    for (let i = 0; i < 2; i++) {
      await page.locator('[data-action="pin"]').click();
      await page.locator('#confirm-dialog[open]').waitFor(WAIT);
      await page.locator('#confirm-cancel').click();
    }
    expect(await listeners('confirm-dialog')).toBe(0);
    expect(await listeners('login-dialog')).toBe(0); // it was shown at the first sign-in
    await cdp.detach();
  });

  it('clears the page and says "Signed out" when signing out', async () => {
    await ready();
    await page.locator('#audit-rows tr').first().waitFor(WAIT);
    await page.locator('#signout').click();
    await page.locator('#login-dialog[open]').waitFor(WAIT);
    await page.waitForTimeout(300);
    expect(await page.locator('#live').innerText()).toBe('Signed out');
    expect(await page.locator('tr[data-knob]').count()).toBe(0);
    expect(await page.locator('#audit-rows tr').count()).toBe(0);
    expect(await page.locator('#pipeline-list > *').count()).toBe(0);
    expect(await page.locator('#registry-list > *').count()).toBe(0);
    expect(await page.locator('#who').innerText()).toBe('');
    expect(await page.evaluate(() => sessionStorage.getItem('knobos.token'))).toBeNull();
    // Signing in again brings it all back.
    await page.locator('#login-token').fill(operatorToken);
    await page.locator('#login-ok').click();
    await live();
    await row('scheduler.policy').waitFor(WAIT);
  });
});
