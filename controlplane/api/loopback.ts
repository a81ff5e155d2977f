// Loopback names: where the API may listen with auth off, and the only Host names it then
// answers (a page whose own name was rebound to 127.0.0.1 arrives with that name).

/** Whether `host` (a name or an address, IPv6 with or without brackets) is the loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
