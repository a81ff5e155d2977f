// Reads the API's server-sent-events stream over a real socket, as the dashboard does
// (fetch with the bearer token), and hands events to the test one type at a time.
export interface EventStream {
  /** The next event of `type` (earlier events of other types are skipped); fails after 10 s. */
  next(type: string): Promise<Record<string, unknown>>;
  /** Every event received so far, in order. */
  seen: { event: string; data: Record<string, unknown> }[];
  close(): void;
}

export async function openStream(baseUrl: string, token: string): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/api/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
  const seen: EventStream['seen'] = [];
  let cursor = 0;
  let wake: (() => void) | undefined;
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) seen.push({ event, data: JSON.parse(data) });
        }
        wake?.();
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    seen,
    async next(type) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        while (cursor < seen.length) {
          const e = seen[cursor++] as EventStream['seen'][number];
          if (e.event === type) return e.data;
        }
        if (Date.now() > deadline) throw new Error(`no '${type}' event within 10 s`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    },
    close: () => abort.abort(),
  };
}
