/**
 * The replay store interface (src/state/replay.ts) with the memory store
 * (src/credentials/replay-cache.ts): the claims of one request are made together, each id at most
 * once, the first taken id refuses the request with its own code, and ids forgotten to bound
 * memory make older proofs refused. The Redis store is exercised against a real redis-server in
 * test/integration/shared-state.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { AgentwardError } from '../../src/errors.ts';
import { MemoryReplayStore } from '../../src/credentials/replay-cache.ts';
import { claimAll, type ReplayClaim, type ReplaySpace } from '../../src/state/replay.ts';

const NOW = 1_800_000_000_000;
const claim = (space: ReplaySpace, key: string, code: 'ERR_DPOP_REPLAYED' | 'ERR_WPT_REPLAYED', mark = NOW / 1000): ReplayClaim => ({ space, key, mark, ttlMs: 60_000, replayed: () => new AgentwardError(code) });

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return (err as AgentwardError).code;
  }
}

describe('claimAll with the memory store', () => {
  test('new ids are recorded together; a request whose ids were all seen is refused with the first one\'s code', async () => {
    const store = new MemoryReplayStore(() => NOW);
    const dpop = store.space('dpop', { max: 100 });
    const wpt = store.space('wpt', { max: 100 });
    expect(await outcome(claimAll([claim(wpt, 'w1', 'ERR_WPT_REPLAYED'), claim(dpop, 'd1', 'ERR_DPOP_REPLAYED')]))).toBe('OK');
    expect(await outcome(claimAll([claim(wpt, 'w1', 'ERR_WPT_REPLAYED'), claim(dpop, 'd1', 'ERR_DPOP_REPLAYED')]))).toBe('ERR_WPT_REPLAYED');
    expect(await outcome(claimAll([claim(wpt, 'w2', 'ERR_WPT_REPLAYED'), claim(dpop, 'd1', 'ERR_DPOP_REPLAYED')]))).toBe('ERR_DPOP_REPLAYED');
    expect([dpop.size, wpt.size]).toEqual([1, 2]);
  });

  test('namespaces are apart: the same hash in two spaces is two ids', async () => {
    const store = new MemoryReplayStore(() => NOW);
    const results = await store.claim([claim(store.space('dpop', { max: 10 }), 'k', 'ERR_DPOP_REPLAYED'), claim(store.space('wpt', { max: 10 }), 'k', 'ERR_WPT_REPLAYED')]);
    expect(results).toEqual(['new', 'new']);
  });

  test('the same id twice in one request, and two requests racing with one id: exactly one wins', async () => {
    const store = new MemoryReplayStore(() => NOW);
    const space = store.space('dpop', { max: 10 });
    expect(await store.claim([claim(space, 'x', 'ERR_DPOP_REPLAYED'), claim(space, 'x', 'ERR_DPOP_REPLAYED')])).toEqual(['new', 'seen']);
    const race = await Promise.all([outcome(claimAll([claim(space, 'y', 'ERR_DPOP_REPLAYED')])), outcome(claimAll([claim(space, 'y', 'ERR_DPOP_REPLAYED')]))]);
    expect(race.sort()).toEqual(['ERR_DPOP_REPLAYED', 'OK']);
  });

  test('a full space forgets its oldest ids and from then on refuses proofs as old (forgotten)', async () => {
    const store = new MemoryReplayStore(() => NOW);
    const space = store.space('dpop', { max: 2 });
    for (const [key, mark] of [['a', 100], ['b', 200], ['c', 300]] as const) await claimAll([claim(space, key, 'ERR_DPOP_REPLAYED', mark)]);
    expect(space.forgotten(100)).toBe(true);
    expect(space.forgotten(101)).toBe(false);
    expect(space.size).toBe(2);
  });

  test('no claims: nothing to do', async () => {
    expect(await outcome(claimAll([]))).toBe('OK');
  });
});
