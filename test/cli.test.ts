import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from './helpers/wait.js';

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
  kill(signal?: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

function run(script: string, env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Run = {
    stdout: '',
    stderr: '',
    code: null,
    kill: (signal = 'SIGTERM') => child.kill(signal),
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  void out.exited.then((c) => (out.code = c));
  return out;
}

describe('command line', () => {
  it('npm run simulator prints its REST and stream URLs, serves them, and exits 0 on SIGTERM', async () => {
    const sim = run('src/simulator/cli.ts', { SIM_PORT: '0' });
    const rest = await waitFor(
      () => /REST:\s+(http:\/\/\S+)/.exec(sim.stdout)?.[1],
      20_000,
      'REST URL',
    );
    expect(sim.stdout).toMatch(/ws:\/\/127\.0\.0\.1:\d+\/public/);
    const res = await fetch(`${rest}/fapi/v1/exchangeInfo`);
    expect(res.status).toBe(200);
    sim.kill('SIGTERM');
    expect(await sim.exited).toBe(0);
  });

  it('npm run demo prints GraphiQL and the demo credentials; SIGTERM closes clients with 1001 and exits 0', async () => {
    const demo = run('src/demo.ts', { PORT: '0', SIM_PORT: '0', LOG_LEVEL: 'warn' });
    const url = await waitFor(
      () => /GraphiQL:\s+(http:\/\/\S+)/.exec(demo.stdout)?.[1],
      30_000,
      'GraphiQL URL',
    );
    expect(demo.stdout).toContain('alice-demo-api-key');
    expect(demo.stdout).toContain('subscription { orderBook');
    const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve) => ws.once('open', () => resolve()));
    ws.send(JSON.stringify({ type: 'connection_init' }));
    await new Promise<void>((resolve) => ws.once('message', () => resolve()));
    demo.kill('SIGTERM');
    expect(await closed).toBe(1001);
    expect(await demo.exited).toBe(0);
  }, 40_000);

  it.each([
    ['src/simulator/cli.ts', { SIM_PORT: 'abc' }, 'SIM_PORT'],
    ['src/index.ts', { PORT: '70000' }, 'PORT'],
    ['src/index.ts', { BINANCE_ENV: 'moon' }, 'BINANCE_ENV'],
    [
      'src/index.ts',
      { BINANCE_STREAM_URL: 'wss://fstream.binance.com/market' },
      'BINANCE_STREAM_URL',
    ],
    ['src/index.ts', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ])('%s with a bad %j stops with one line naming it, exit code 2', async (script, env, name) => {
    const p = run(script, env);
    expect(await p.exited).toBe(2);
    const lines = p.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
    expect(p.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });
});
