import { describe, expect, it } from 'vitest';
import { Hub, SlowSubscriberError, type TopicSource } from '../src/hub/hub.js';
import { silentLogger } from '../src/log.js';
import { sleep } from './helpers/wait.js';

class ManualSource implements TopicSource<number> {
  publish: (v: number) => void = () => undefined;
  fail: (e: Error) => void = () => undefined;
  starts = 0;
  stops = 0;
  last: number | undefined;
  start(publish: (v: number) => void, fail: (e: Error) => void): void {
    this.starts += 1;
    this.publish = (v) => {
      this.last = v;
      publish(v);
    };
    this.fail = fail;
  }
  stop(): void {
    this.stops += 1;
  }
  current(): number | undefined {
    return this.last;
  }
}

describe('hub', () => {
  it('starts a topic once for many subscribers and stops it after the last one lingers out', async () => {
    const hub = new Hub({ lingerMs: 50, logger: silentLogger });
    const src = new ManualSource();
    const a = hub.subscribe('t', () => src, { policy: 'latest' });
    const b = hub.subscribe('t', () => new ManualSource(), { policy: 'latest' });
    expect(src.starts).toBe(1);
    expect(hub.subscriberCount('t')).toBe(2);
    await a.return!();
    await b.return!();
    await b.return!();
    expect(src.stops).toBe(0);
    const c = hub.subscribe('t', () => new ManualSource(), { policy: 'latest' });
    await sleep(80);
    expect(src.stops).toBe(0);
    await c.return!();
    await sleep(80);
    expect(src.stops).toBe(1);
    expect(hub.topicKeys()).toEqual([]);
  });

  it('gives a late subscriber the current value at once', async () => {
    const hub = new Hub({ lingerMs: 10, logger: silentLogger });
    const src = new ManualSource();
    const a = hub.subscribe('t', () => src, { policy: 'latest' });
    src.publish(7);
    const b = hub.subscribe('t', () => new ManualSource(), { policy: 'latest' });
    expect(await b.next()).toEqual({ value: 7, done: false });
    expect(await a.next()).toEqual({ value: 7, done: false });
    hub.close();
  });

  it('latest keeps only the newest value for a slow reader', async () => {
    const hub = new Hub({ lingerMs: 10, logger: silentLogger });
    const src = new ManualSource();
    const it = hub.subscribe('t', () => src, { policy: 'latest' });
    for (let i = 1; i <= 100; i++) src.publish(i);
    expect(await it.next()).toEqual({ value: 100, done: false });
    hub.close();
  });

  it('drop-oldest keeps the newest N and counts the drops', async () => {
    const hub = new Hub({ lingerMs: 10, logger: silentLogger });
    const src = new ManualSource();
    const it = hub.subscribe('t', () => src, { policy: 'drop-oldest', capacity: 3 });
    for (let i = 1; i <= 10; i++) src.publish(i);
    const got = [(await it.next()).value, (await it.next()).value, (await it.next()).value];
    expect(got).toEqual([8, 9, 10]);
    expect(hub.stats().dropped).toBe(7);
    hub.close();
  });

  it('disconnect ends a subscriber that falls behind never-dropped data, with a clear error', async () => {
    const hub = new Hub({ lingerMs: 10, logger: silentLogger });
    const src = new ManualSource();
    const slow = hub.subscribe('t', () => src, { policy: 'disconnect', capacity: 5 });
    const fast = hub.subscribe('t', () => new ManualSource(), {
      policy: 'disconnect',
      capacity: 5,
    });
    const received: number[] = [];
    for (let i = 1; i <= 6; i++) {
      src.publish(i);
      received.push((await fast.next()).value as number);
    }
    await expect(slow.next()).rejects.toBeInstanceOf(SlowSubscriberError);
    expect(received).toEqual([1, 2, 3, 4, 5, 6]);
    expect(hub.subscriberCount('t')).toBe(1);
    expect(hub.stats().disconnectedSlow).toBe(1);
    hub.close();
  });

  it('return() releases the lease even while a next() is pending', async () => {
    const hub = new Hub({ lingerMs: 10, logger: silentLogger });
    const src = new ManualSource();
    const it = hub.subscribe('t', () => src, { policy: 'latest' });
    const pending = it.next();
    await it.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    await sleep(30);
    expect(src.stops).toBe(1);
  });
});
