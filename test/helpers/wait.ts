/** Polls `check` every 100 ms until it holds; fails after `ms` with what was awaited. */
export async function waitFor(check: () => Promise<boolean>, what: string, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
