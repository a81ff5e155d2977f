// The knob history chart, drawn by the dashboard's own modules in Chromium (served from
// controlplane/dashboard/ by a bare static server): y ticks carry the digits their spacing
// needs (a knob that never changed, the default of every knob, drew ticks one unit apart all
// reading "30k" or "64 KiB"), and the x range reaches the newest change when the server's
// clock is ahead of the browser's (it was drawn past the right edge).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from './helpers/api-browser.ts';

const DIR = join(import.meta.dirname, '..', 'controlplane', 'dashboard');

describe('the knob history chart', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const name = (req.url ?? '/').split('?')[0]!.replace(/^\//, '');
      if (name === '' || name === 'blank') {
        res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<!doctype html><body><div id="knob-detail"></div><div id="toasts"></div></body>');
        return;
      }
      try {
        const body = readFileSync(join(DIR, name.replace(/\.\./g, '')));
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/blank`);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  // The page's code goes as text: vitest would rewrite a dynamic import() written in a function.
  const yLabels = (values: number[], unit: string): Promise<string[]> =>
    page.evaluate(`(async () => {
      const { lineChart } = await import('/chart.js');
      const values = ${JSON.stringify(values)};
      const t0 = Date.now() - 3600000;
      const svg = lineChart({
        width: 620,
        height: 210,
        xDomain: [t0, Date.now()],
        series: [{ points: values.map((y, i) => ({ x: t0 + i * 60000, y })), step: true }],
        yUnit: ${JSON.stringify(unit)},
      });
      return [...svg.querySelectorAll('g.chart-grid text[text-anchor="end"]')].map(
        (t) => t.textContent,
      );
    })()`);

  it('labels every y tick differently, also one unit apart on a large value', async () => {
    for (const [values, unit] of [
      [[30_000], 'ms'],
      [[65_536], 'bytes'],
      [[30_000, 30_020], 'ms'],
      [[0, 250], 'ms'],
    ] as const) {
      const labels = await yLabels([...values], unit);
      expect(labels.length, JSON.stringify(values)).toBeGreaterThan(1);
      expect(new Set(labels).size, JSON.stringify(labels)).toBe(labels.length);
    }
  });

  it('draws the newest change inside the plot when the server clock is 2 min ahead', async () => {
    const res = await page.evaluate(`(async () => {
      const { renderDetail } = await import('/knobs-view.js');
      const serverNow = Date.now() + 120000;
      const spec = { name: 'scheduler.lease_ms', type: 'duration', min: 500, max: 600000,
        unit: 'ms', cost: 'light', description: 'lease',
        safety: { maxStepRatio: 4, cooldownMs: 30000 } };
      const row = { name: 'scheduler.lease_ms', service: 'scheduler', value: 60000,
        default: 30000, version: 2, updatedAt: serverNow - 5000, updatedBy: 'op#1',
        reason: 'r', pinned: false, spec };
      const history = [
        { version: 2, new: 60000, at: serverNow - 5000, kind: 'promote', actor: 'op#1', reason: 'up' },
        { version: 1, new: 30000, at: serverNow - 600000, kind: 'seed', actor: 'system', reason: 'seed' },
      ];
      const state = { auth: { role: 'viewer', tenant: null }, knobs: new Map([[row.name, row]]),
        selected: row.name, history, knobAudit: [], historyFor: row.name,
        refreshKnob: async () => {} };
      renderDetail(state);
      const svg = document.querySelector('#knob-detail svg.chart');
      const width = Number(svg.getAttribute('viewBox').split(' ')[2]);
      const dots = [...svg.querySelectorAll('circle.chart-dot')].map((c) => Number(c.getAttribute('cx')));
      return { width, dots };
    })()`);
    const { width, dots } = res as { width: number; dots: number[] };
    expect(dots).toHaveLength(2);
    for (const cx of dots) expect(cx, JSON.stringify(dots)).toBeLessThanOrEqual(width);
  });
});
