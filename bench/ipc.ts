/**
 * A tiny request/response layer over Node's child-process IPC, so the benchmark's processes
 * (simulator, server under test, clients) each run on their own and answer the orchestrator.
 * `advanced` serialization carries typed arrays (latency samples) without JSON.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Handler = (arg: unknown) => unknown;

interface Request {
  id: number;
  method: string;
  arg: unknown;
}

interface Response {
  id: number;
  result?: unknown;
  error?: string;
}

/** Child side: answers the parent's calls with `handlers`; exits when the parent goes away. */
export function serve(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('this script is started by bench/run.ts');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (msg: Request) => {
    const handler = handlers[msg.method];
    const reply = (r: Omit<Response, 'id'>): void => {
      if (process.connected) process.send?.({ id: msg.id, ...r });
    };
    if (!handler) {
      reply({ error: `unknown method ${msg.method}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg.arg))
      .then(
        (result) => reply({ result }),
        (err: unknown) => reply({ error: err instanceof Error ? err.stack : String(err) }),
      );
  });
}

/** Parent side: one benchmark process. */
export class Child {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private exited = false;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.on('message', (msg: Response) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`${name}: ${msg.error}`));
      else p.resolve(msg.result);
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) {
        p.reject(new Error(`${name} exited (${code ?? signal})`));
      }
      this.pending.clear();
    });
  }

  /**
   * Starts `bench/<script>` under tsx, optionally pinned to `cpus` (taskset, all threads), with
   * `--expose-gc` so memory can be measured after a full collection.
   */
  static start(script: string, name: string, cpus?: string): Child {
    const path = fileURLToPath(new URL(script, import.meta.url));
    // BENCH_PROFILE=<dir>: V8 CPU profiles of the server under test, for looking at hot spots
    const profile =
      process.env.BENCH_PROFILE && script.includes('server')
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
        : [];
    if (process.env.BENCH_TRACE_GC && script.includes('server')) profile.push('--trace-gc');
    const proc = fork(path, [], {
      execArgv: ['--import', 'tsx', '--expose-gc', '--max-old-space-size=4096', ...profile],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    if (cpus !== undefined && proc.pid !== undefined) pin(proc.pid, cpus);
    return new Child(name, proc);
  }

  call<T>(method: string, arg?: unknown, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}.${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, method, arg } satisfies Request);
    });
  }

  /** Asks the process to close, then kills it if it has not exited within a second. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    await Promise.race([this.call('close', undefined, 3_000).catch(() => undefined), exited]);
    if (this.proc.connected) this.proc.disconnect();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 1_000);
    await exited;
    clearTimeout(timer);
  }
}

let tasksetWorks: boolean | undefined;

/** Pins a process and its threads to a CPU list; a no-op where taskset is missing. */
export function pin(pid: number, cpus: string): boolean {
  if (tasksetWorks === false) return false;
  try {
    execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
    tasksetWorks = true;
  } catch {
    tasksetWorks = false;
  }
  return tasksetWorks;
}

/** Whether the last `pin` succeeded (for the report). */
export function pinning(): boolean {
  return tasksetWorks === true;
}
