/**
 * The benchmark's rig, scaled down: simulator, server under test and a client process over
 * loopback, as `npm run bench` runs them. Not a speed check (figures live in
 * docs/benchmarks.md): it proves the rig measures what it says, so a change that breaks the
 * frame-level client, the arrival stamps or the shared path's counters shows up here rather
 * than as a silently wrong benchmark.
 */
import { describe, expect, it } from 'vitest';
import { runFanout, type CpuLayout, type FanoutSpec } from '../bench/fanout.js';

const layout: CpuLayout = { server: undefined, others: undefined, clientProcesses: 1 };
const small: Omit<FanoutSpec, 'kind'> = {
  subscribers: 20,
  topics: 1,
  subsPerSocket: 2,
  tradeRatePerSec: 60,
  warmupMs: 300,
  measureMs: 2_000,
};

describe('benchmark rig', () => {
  it('delivers every trade to every gateway subscriber, executed once per event', async () => {
    const r = await runFanout({ kind: 'gateway', ...small }, layout);
    expect(r.errors).toBe(0);
    expect(r.dropped).toBe(0);
    expect(r.deliveredPerSec).toBeGreaterThan(0);
    // one execution per event, shared by the 20 subscribers of the one operation
    expect(r.executionsPerMessage).toBeDefined();
    expect(r.executionsPerMessage!).toBeGreaterThan(0);
    expect(r.executionsPerMessage!).toBeLessThanOrEqual(1 / 20 + 0.01);
    // each delivered message is matched to its upstream arrival: receipt after arrival
    expect(r.latencySamples).toBeGreaterThan(0);
    expect(r.p50Ms).toBeGreaterThan(0);
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
    expect(r.tradesPerReadMean).toBeGreaterThanOrEqual(1);
    // the server's frame count and the clients' message count describe the same traffic (their
    // windows differ by a few ms of IPC, and trades come in bursts: no tight bound)
    expect(r.sentPerSec / r.deliveredPerSec).toBeGreaterThan(0.6);
    expect(r.sentPerSec / r.deliveredPerSec).toBeLessThan(1.6);
  }, 60_000);

  it('serves the textbook yoga + useServer reference, one execution per subscriber', async () => {
    const r = await runFanout({ kind: 'plain', ...small }, layout);
    expect(r.errors).toBe(0);
    expect(r.deliveredPerSec).toBeGreaterThan(0);
    expect(r.latencySamples).toBeGreaterThan(0);
    // graphql-ws' own useServer sends every frame through ws (counted by the server process)
    expect(r.sentPerSec / r.deliveredPerSec).toBeGreaterThan(0.6);
    expect(r.sentPerSec / r.deliveredPerSec).toBeLessThan(1.6);
  }, 60_000);

  it('measures the raw ws reference with the same client and stamps', async () => {
    const r = await runFanout({ kind: 'raw', ...small }, layout);
    expect(r.errors).toBe(0);
    expect(r.deliveredPerSec).toBeGreaterThan(0);
    expect(r.executionsPerMessage).toBeUndefined();
    expect(r.latencySamples).toBeGreaterThan(0);
    expect(r.p50Ms).toBeGreaterThan(0);
  }, 60_000);
});
