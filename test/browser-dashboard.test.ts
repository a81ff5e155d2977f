// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// server and Redis: it signs in once per tab, shows the seeded knobs, updates live when a knob
// changes through the API, shows proposals, shadow runs and registry versions as they are
// written to their tables, and lets an operator pin, unpin and roll back a knob through the
// confirmation dialog. A screenshot is kept in test-artifacts/dashboard.png.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { PolicyRegistry } from '../controlplane/registry/registry.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { launchBrowser, type Browser } from './helpers/api-browser.ts';
import { ADMIN_TOKEN, HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { tinyTpchTrace } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const ARTIFACTS = resolve(import.meta.dirname, '..', 'test-artifacts');
const WAIT = { timeout: 20_000 };

describe('dashboard in Chromium', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let browser: Browser;
  let page: Page;
  let operatorToken: string;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis, { listen: true });
    api.clock.advance(HOUR_MS / 2);
    await api.knobs.promote({
      name: 'scheduler.dispatch_batch',
      value: 32,
      baseVersion: 1,
      actor: 'ucb-bandit#auto',
      actorKind: 'automation',
      reason: 'bandit: +12% throughput in sim',
    });
    api.clock.set(Date.now() - 60_000);
    await reportTelemetry(api);
    operatorToken = await api.token('operator');
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

  /** Changes a knob through the API (one step up, past its cooldown); returns its new version. */
  const bump = async (name: string): Promise<number> => {
    const cur = await api.knobs.get(name);
    api.clock.advance(60_000);
    const res = await fetch(`${api.url}/api/knobs/${name}/promote`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        value: (cur.value as number) + 1,
        baseVersion: cur.version,
        reason: 'bump',
      }),
    });
    expect(res.status).toBe(200);
    return cur.version + 1;
  };
  const versionShown = (name: string, version: number) =>
    page.waitForFunction(
      ([n, v]) =>
        document.querySelector(`tr[data-knob="${n}"] [data-col="version"]`)?.textContent === v,
      [name, `v${version}`] as const,
      WAIT,
    );
  /** What has the keyboard focus: `row:<knob>`, `rollback:<version>`, an id or a tag name. */
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (el?.dataset['knob']) return `row:${el.dataset['knob']}`;
      if (el?.dataset['rollback']) return `rollback:${el.dataset['rollback']}`;
      return el?.id || el?.tagName;
    });
  /** Answers the requests a route matches only after release(), with what the server said before. */
  const hold = () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let seen!: () => void;
    const first = new Promise<void>((r) => (seen = r));
    const passed: Promise<void>[] = [];
    const handler = (route: Route) => {
      const p = route.fetch().then(async (response) => {
        seen();
        await released;
        await route.fulfill({ response });
      });
      passed.push(p);
      return p;
    };
    return { handler, first, release, settled: () => Promise.all(passed) };
  };

  it('asks for a token once, then shows every seeded knob', async () => {
    await page.goto(`${api.url}/`);
    await page.locator('#login-token').fill(operatorToken, WAIT);
    await page.locator('#login-ok').click();
    await row('scheduler.policy').waitFor(WAIT);
    expect(await page.locator('tr[data-knob]').count()).toBe(api.knobs.catalog.length);
    expect(await cell('scheduler.policy', 'value').innerText()).toContain('fifo');
    expect(await cell('scheduler.dispatch_batch', 'value').innerText()).toContain('32 tasks');
    expect(await cell('scheduler.dispatch_batch', 'version').innerText()).toBe('v2');
    expect(await page.locator('#who').innerText()).toBe('test-operator');
    expect(await page.locator('#no-proposals').innerText()).toContain('No proposals yet');
    await page.locator('.tchart').first().waitFor(WAIT); // live telemetry charts
    // The token is kept for the tab: a reload signs in without asking.
    await page.reload();
    await row('scheduler.policy').waitFor(WAIT);
    expect(await page.locator('#login-dialog').getAttribute('open')).toBeNull();
  });

  it('updates a knob live when it changes through the API, without reloading', async () => {
    await page.locator('#live[data-status="live"]').waitFor(WAIT);
    const marker = await page.evaluate(
      () => ((window as unknown as { marker: number }).marker = 42),
    );
    const res = await fetch(`${api.url}/api/knobs/messaging.linger_ms/promote`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value: 9, baseVersion: 1, reason: 'from the API' }),
    });
    expect(res.status).toBe(200);
    await page.waitForFunction(
      () =>
        document
          .querySelector('tr[data-knob="messaging.linger_ms"] [data-col="value"]')
          ?.textContent?.includes('9 ms'),
      undefined,
      WAIT,
    );
    expect(await cell('messaging.linger_ms', 'version').innerText()).toBe('v2');
    expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(
      marker,
    );
  });

  it('shows proposals, shadow runs and registry versions as they reach their tables', async () => {
    const proposals = new ProposalTable(api.knobs);
    const p = await proposals.create({
      learner: 'bo-files',
      reason: 'calibrated on 5000 live records',
      changes: [{ name: 'files.cache_policy', value: 'arc', baseVersion: 1 }],
    });
    await proposals.transition(p.id, 'simulated', {
      actor: 'loop:files',
      reason: 'gate passed',
      simReport: { outcome: 'successful', improvement: 0.12, reasons: ['better on 9/10 slices'] },
    });
    await proposals.annotate(p.id, {
      shadowReport: {
        verdict: 'better',
        details: {
          incumbent: { hitRatio: 0.41, requests: 5000 },
          candidate: { hitRatio: 0.63, requests: 5000 },
        },
      },
    });
    const trace = tinyTpchTrace();
    const registry = new PolicyRegistry({ knobs: api.knobs, evaluator: { mode: 'inline', trace } });
    try {
      await registry.register(
        {
          name: 'scheduler',
          kind: 'scheduling',
          artifact: { heuristic: 'srpt' },
          lineage: { learner: 'ppo', run: 'run-7' },
        },
        'ppo#learner',
      );
      const spec = { seeds: [1, 2], jobs: 20, workers: 4 };
      await registry.evaluate('scheduler', 1, { actor: 'op#1', reason: 'sim', spec });
      await registry.shadow('scheduler', 1, { actor: 'op#1', reason: 'shadow', spec });
    } finally {
      await registry.close();
      trace.remove();
    }

    // No reload: the panels poll and follow knob events.
    // (A poll may land between two of the writes above: wait for the last state.)
    const row = page.locator(`tr[data-proposal="${p.id}"]`);
    await row.locator('[data-col="shadow"]', { hasText: 'better' }).waitFor(WAIT);
    expect(await row.locator('[data-col="sim"]').innerText()).toBe('successful +12.0%');
    expect(await row.locator('[data-col="shadow"]').innerText()).toBe('better');
    expect(await page.locator('[data-stage="simulated"] .count').innerText()).toBe('1');
    const version = page.locator('tr[data-version="scheduler@1"]', { hasText: 'shadow' });
    await version.waitFor(WAIT);
    expect(await version.innerText()).toContain('shadow');
    expect(await version.innerText()).toContain('heuristic:srpt');
    expect(await version.innerText()).toContain('ppo');
    expect(await page.locator('[data-shadow="scheduler@1"]').innerText()).toMatch(
      /% of decisions diverge/,
    );
    expect(await page.locator(`[data-shadow="${p.id}"]`).innerText()).toContain(
      'hit ratio 41.0% → 63.0%',
    );

    // Details open from the proposal's link.
    await row.locator('a').click();
    await page.locator('#detail-dialog[open]').waitFor(WAIT);
    const detail = await page.locator('#detail-dialog').innerText();
    expect(detail).toContain(p.id);
    expect(detail).toContain('files.cache_policy → arc');
    expect(detail).toContain('better on 9/10 slices');
    await page.locator('#detail-close').click();
  });

  it('lets an operator pin, unpin and roll back a knob through the confirmation dialog', async () => {
    await row('scheduler.dispatch_batch').click();
    await page.locator('#detail-name', { hasText: 'scheduler.dispatch_batch' }).waitFor(WAIT);

    // Cancelling changes nothing.
    await page.locator('#pin-btn').click();
    await page.locator('#confirm-cancel').click();
    expect((await api.knobs.get('scheduler.dispatch_batch')).pinned).toBe(false);

    await page.locator('#pin-btn').click();
    await page.locator('#confirm-reason').fill('holding during the load test');
    await page.locator('#confirm-ok').click();
    await row('scheduler.dispatch_batch').locator('.badge.pinned').waitFor(WAIT);
    const pinned = await api.knobs.get('scheduler.dispatch_batch');
    expect(pinned).toMatchObject({ pinned: true, pinReason: 'holding during the load test' });
    expect(pinned.pinnedBy).toMatch(/^test-operator#/);

    await page.locator('#unpin-btn').click();
    await page.locator('#confirm-reason').fill('load test over');
    await page.locator('#confirm-ok').click();
    await page.locator('#pin-btn').waitFor(WAIT);

    await page.locator('button[data-rollback="1"]').click();
    expect(await page.locator('#confirm-dialog').innerText()).toContain('32 tasks → 16 tasks');
    await page.locator('#confirm-reason').fill('p99 regressed after the bandit change');
    await page.locator('#confirm-ok').click();
    await page.waitForFunction(
      () =>
        document.querySelector('tr[data-knob="scheduler.dispatch_batch"] [data-col="version"]')
          ?.textContent === 'v3',
      undefined,
      WAIT,
    );
    expect(await cell('scheduler.dispatch_batch', 'value').innerText()).toContain('16 tasks');
    const [last] = await api.knobs.history('scheduler.dispatch_batch', { limit: 1 });
    expect(last).toMatchObject({ kind: 'rollback', version: 3, new: 16 });
    expect(last?.actor).toMatch(/^test-operator#/);
    await page.locator('.chart-note.note-rollback').first().waitFor(WAIT); // annotated chart

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.waitForTimeout(2_600); // let the change highlight fade before the picture
    await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });

  it('goes live and draws every panel it can when one panel fails, a metric name is bad, and a policy is old', async () => {
    // A gauge whose name the :metric route refuses (camelCase), next to good ones.
    const tel = new Telemetry({
      redis: api.redis,
      keys: api.knobs.keys,
      service: 'scheduler',
      instance: 'w2',
    });
    const now = Date.now();
    await tel.flush(now - 30_000);
    for (const t of [now - 20_000, now - 10_000]) {
      tel.gauge('cacheHitRatio', 0.5);
      tel.gauge('queue_depth', 7);
      await tel.flush(t);
    }
    // A policy whose only version is older than the registry's newest 100.
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const register = async (name: string) => {
      const res = await fetch(`${api.url}/api/policies`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({
          name,
          kind: 'scheduling',
          artifact: { heuristic: 'srpt' },
          reason: 'r',
        }),
      });
      expect(res.status).toBe(201);
    };
    await register('alpha');
    for (let i = 0; i < 100; i++) await register('scheduler');

    const tab = await browser.context.newPage();
    try {
      // One panel's load fails: the audit log answers 500.
      await tab.route('**/api/audit?*', (route) =>
        route.fulfill({
          status: 500,
          contentType: 'application/json',
          body: JSON.stringify({ error: { code: 'KNOBOS_TEST', message: 'audit is down' } }),
        }),
      );
      await tab.goto(`${api.url}/`);
      await tab.locator('#login-token').fill(operatorToken, WAIT);
      await tab.locator('#login-ok').click();
      await tab.locator('#live[data-status="live"]').waitFor(WAIT);
      await tab.locator('#toasts .toast', { hasText: 'audit is down' }).first().waitFor(WAIT);
      await tab.locator('.tchart[data-metric="queue_depth"] svg').waitFor(WAIT);
      expect(await tab.locator('.tchart[data-metric="cacheHitRatio"]').count()).toBe(0);
      await tab.locator('[data-policy="alpha"]').waitFor(WAIT);
      expect(await tab.locator('[data-policy="alpha"] tr[data-version="alpha@1"]').count()).toBe(1);
    } finally {
      await tab.close();
    }
  });

  it('keeps a live change that arrives while the knob list is still loading', async () => {
    // The list is read, then held: the change below is newer than the snapshot.
    const list = hold();
    await page.route(/\/api\/knobs$/, list.handler);
    try {
      await page.reload();
      await list.first;
      await page.locator('#live[data-status="live"]').waitFor(WAIT);
      const version = await bump('messaging.linger_ms');
      await versionShown('messaging.linger_ms', version); // the event is in
      list.release();
      await list.settled();
      await row('scheduler.policy').waitFor(WAIT); // the snapshot is in
      expect(await page.locator('tr[data-knob]').count()).toBe(api.knobs.catalog.length);
      expect(await cell('messaging.linger_ms', 'version').innerText()).toBe(`v${version}`);
    } finally {
      await page.unroute(/\/api\/knobs$/, list.handler);
    }
  });

  it('draws the telemetry of the tab clicked last, not of a slower load before it', async () => {
    const tel = new Telemetry({
      redis: api.redis,
      keys: api.knobs.keys,
      service: 'files',
      instance: 'w1',
    });
    const now = Date.now();
    await tel.flush(now - 30_000);
    for (const t of [now - 20_000, now - 10_000]) {
      tel.gauge('hit_ratio', 0.6);
      await tel.flush(t);
    }
    const charts = /\/api\/telemetry\/scheduler\/[^/?]+\?/;
    const slow = hold();
    await page.route(charts, slow.handler);
    try {
      await page.locator('#telemetry-tabs .tab', { hasText: 'scheduler' }).click();
      await slow.first; // the scheduler's charts are loading
      await page.locator('#telemetry-tabs .tab:not([disabled])', { hasText: 'files' }).click();
      await page.locator('.tchart[data-metric="hit_ratio"] svg').waitFor(WAIT);
      slow.release();
      await slow.settled();
      await page.waitForTimeout(300); // the older load would render now
      expect(await page.locator('#telemetry-tabs .tab.active').innerText()).toBe('files');
      expect(await page.locator('.tchart[data-metric="hit_ratio"]').count()).toBe(1);
      expect(await page.locator('.tchart[data-metric="queue_depth"]').count()).toBe(0);
    } finally {
      await page.unroute(charts, slow.handler);
    }
  });

  it('keeps the keyboard focus on knob rows and detail buttons through selects and live changes', async () => {
    await page.locator('#live[data-status="live"]').waitFor(WAIT);
    expect(await page.getByRole('searchbox', { name: 'Filter knobs' }).count()).toBe(1);
    expect(await page.locator('#live').getAttribute('aria-live')).toBe('polite');

    // Enter and Space select the focused row, which keeps the focus.
    await row('messaging.linger_ms').focus();
    await page.keyboard.press('Enter');
    await page.locator('#detail-name', { hasText: 'messaging.linger_ms' }).waitFor(WAIT);
    expect(await row('messaging.linger_ms').getAttribute('aria-selected')).toBe('true');
    expect(await focused()).toBe('row:messaging.linger_ms');
    await row('scheduler.policy').focus();
    await page.keyboard.press('Space');
    await page.locator('#detail-name', { hasText: 'scheduler.policy' }).waitFor(WAIT);
    expect(await row('scheduler.policy').getAttribute('aria-selected')).toBe('true');
    expect(await row('messaging.linger_ms').getAttribute('aria-selected')).toBe('false');
    expect(await focused()).toBe('row:scheduler.policy');

    // A live change redraws the table (as the 5 s refresh does): the focus stays.
    await row('scheduler.policy').focus();
    await versionShown('messaging.linger_ms', await bump('messaging.linger_ms'));
    expect(await focused()).toBe('row:scheduler.policy');

    // A live change of the selected knob redraws its panel: the focused button keeps it.
    await row('messaging.linger_ms').click();
    const detail = page.locator('#knob-detail');
    await detail.locator('button[data-rollback="1"]').waitFor(WAIT);
    await page.locator('#pin-btn').focus();
    let version = await bump('messaging.linger_ms');
    await detail.locator(`tr[data-version="${version}"]`).waitFor(WAIT);
    expect(await focused()).toBe('pin-btn');
    await detail.locator('button[data-rollback="1"]').focus();
    version = await bump('messaging.linger_ms');
    await detail.locator(`tr[data-version="${version}"]`).waitFor(WAIT);
    expect(await focused()).toBe('rollback:1');
  });

  it('reports an error page that is not JSON by its status, and a network failure by its message', async () => {
    // A proxy's HTML page for the audit log, which reloads after a knob event.
    const audit = /\/api\/audit\?/;
    await page.route(audit, (route) =>
      route.fulfill({ status: 502, contentType: 'text/html', body: '<html>Bad gateway</html>' }),
    );
    await page.route('**/api/freeze', (route) => route.abort('failed'));
    try {
      await bump('messaging.linger_ms');
      await page.locator('#toasts .toast.error', { hasText: 'HTTP 502' }).first().waitFor(WAIT);
      // An action's failure shows in its dialog, which stays open with the reason typed.
      await page.locator('#freeze-btn').click();
      await page.locator('#confirm-reason').fill('network test');
      await page.locator('#confirm-ok').click();
      const error = page.locator('#confirm-dialog[open] #confirm-error[role="alert"]');
      await error.waitFor(WAIT);
      expect(await error.innerText()).toBe('error: Failed to fetch');
      expect(await page.locator('#confirm-reason').inputValue()).toBe('network test');
      expect(await api.knobs.frozen()).toBeNull();
      await page.locator('#confirm-cancel').click();
      expect(await page.locator('#confirm-dialog').getAttribute('open')).toBeNull();
    } finally {
      await page.unroute(audit);
      await page.unroute('**/api/freeze');
    }
  });
});

/** A quarter hour of scheduler telemetry ending now, so the charts have something to draw. */
async function reportTelemetry(api: ApiFixture): Promise<void> {
  const tel = new Telemetry({
    redis: api.redis,
    keys: api.knobs.keys,
    service: 'scheduler',
    instance: 'w1',
  });
  const now = Date.now();
  await tel.flush(now - 15 * 60_000 - 10_000);
  for (let t = now - 15 * 60_000, i = 0; t <= now; t += 10_000, i++) {
    tel.inc('tasks_done', 800 + Math.round(150 * Math.sin(i / 12)));
    tel.gauge('queue_depth', 40 + Math.round(25 * Math.cos(i / 15)));
    tel.observe('latency_ms', 25 + 10 * Math.sin(i / 9) + (i > 60 ? 12 : 0));
    await tel.flush(t);
  }
}
