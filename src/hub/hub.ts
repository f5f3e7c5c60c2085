import type { Logger } from '../log.js';

/**
 * What a subscriber's bounded queue does when the subscriber reads slower than its topic
 * publishes (design.md, item 8):
 * - `latest`: keep only the newest value (order books, tickers: an old view is worthless);
 * - `drop-oldest`: keep the newest `capacity` values and count what was dropped (trades);
 * - `disconnect`: never drop; a subscriber that falls `capacity` behind is ended with an error
 *   (account data, where a silent gap would be a lie).
 */
export type OverflowPolicy = 'latest' | 'drop-oldest' | 'disconnect';

/** The producer behind a topic: started by the first lease, stopped after the last one lingers out. */
export interface TopicSource<T> {
  start(publish: (value: T) => void, fail: (error: Error) => void): void;
  stop(): void;
  /** A value to give a new subscriber at once (the current book, the last ticker), if any. */
  current?(): T | undefined;
}

export interface SubscribeOptions {
  policy: OverflowPolicy;
  /** queue length for `drop-oldest` and `disconnect` */
  capacity?: number;
}

/** Thrown into a subscriber's iterator when it cannot keep up with never-dropped data. */
export class SlowSubscriberError extends Error {
  constructor(topic: string) {
    super(`Subscriber too slow for ${topic}: disconnected rather than losing events.`);
    this.name = 'SlowSubscriberError';
  }
}

interface TopicState<T> {
  key: string;
  source: TopicSource<T>;
  subscribers: Set<Subscriber<T>>;
  lingerTimer: NodeJS.Timeout | undefined;
  published: number;
}

/** Counters the metrics endpoint reads. */
export interface HubStats {
  topics: number;
  subscribers: number;
  delivered: number;
  dropped: number;
  disconnectedSlow: number;
}

/**
 * Topics with reference-counted leases. The first subscriber of a key starts its source; later
 * ones attach a bounded queue; the last one leaving starts a linger, and the source stops only
 * if nobody comes back (graphql-ws client `lazyCloseTimeout` pattern).
 */
export class Hub {
  private readonly topics = new Map<string, TopicState<unknown>>();
  private readonly counters = { delivered: 0, dropped: 0, disconnectedSlow: 0 };

  constructor(private readonly options: { lingerMs: number; logger: Logger }) {}

  /**
   * A lease on `key` as an async iterator; `return()` releases it. `makeSource` is called only
   * when the topic does not exist yet.
   */
  subscribe<T>(
    key: string,
    makeSource: () => TopicSource<T>,
    options: SubscribeOptions,
  ): AsyncIterableIterator<T> {
    let topic = this.topics.get(key) as TopicState<T> | undefined;
    const fresh = topic === undefined;
    if (!topic) {
      topic = {
        key,
        source: makeSource(),
        subscribers: new Set(),
        lingerTimer: undefined,
        published: 0,
      };
      this.topics.set(key, topic as TopicState<unknown>);
    }
    clearTimeout(topic.lingerTimer);
    topic.lingerTimer = undefined;
    const t = topic;
    const sub = new Subscriber<T>(key, options, this.counters, () => this.release(t, sub));
    t.subscribers.add(sub);
    if (fresh) {
      t.source.start(
        (value) => this.publish(t, value),
        (error) => {
          for (const s of [...t.subscribers]) s.fail(error);
        },
      );
    } else {
      const current = t.source.current?.();
      if (current !== undefined) sub.push(current);
    }
    return sub;
  }

  private publish<T>(topic: TopicState<T>, value: T): void {
    topic.published += 1;
    for (const s of topic.subscribers) s.push(value);
  }

  private release<T>(topic: TopicState<T>, sub: Subscriber<T>): void {
    if (!topic.subscribers.delete(sub) || topic.subscribers.size > 0) return;
    topic.lingerTimer = setTimeout(() => {
      if (topic.subscribers.size > 0 || this.topics.get(topic.key) !== topic) return;
      this.topics.delete(topic.key);
      try {
        topic.source.stop();
      } catch (err) {
        this.options.logger.error('topic source failed to stop', { topic: topic.key, error: err });
      }
    }, this.options.lingerMs);
  }

  /** Number of live subscribers of a topic (0 when it does not exist). */
  subscriberCount(key: string): number {
    return this.topics.get(key)?.subscribers.size ?? 0;
  }

  topicKeys(): string[] {
    return [...this.topics.keys()];
  }

  stats(): HubStats {
    let subscribers = 0;
    for (const t of this.topics.values()) subscribers += t.subscribers.size;
    return { topics: this.topics.size, subscribers, ...this.counters };
  }

  /** Per-topic subscriber counts, for /metrics. */
  subscribersByTopic(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [k, t] of this.topics) out.set(k, t.subscribers.size);
    return out;
  }

  /** Stops every source and ends every subscriber. */
  close(): void {
    for (const topic of this.topics.values()) {
      clearTimeout(topic.lingerTimer);
      for (const s of [...topic.subscribers]) s.end();
      try {
        topic.source.stop();
      } catch {
        // closing anyway
      }
    }
    this.topics.clear();
  }
}

/**
 * One subscriber's bounded queue as an explicit async iterator: unlike an `async function*`,
 * its `return()` runs even while a `next()` is pending, so the lease is always released.
 */
class Subscriber<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private failWaiting: ((e: Error) => void) | undefined;
  private failure: Error | undefined;
  private done = false;
  /** values dropped by the `drop-oldest` policy since the last read */
  droppedSinceRead = 0;

  constructor(
    private readonly key: string,
    private readonly options: SubscribeOptions,
    private readonly counters: { delivered: number; dropped: number; disconnectedSlow: number },
    private readonly onRelease: () => void,
  ) {}

  push(value: T): void {
    if (this.done) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      this.failWaiting = undefined;
      this.counters.delivered += 1;
      resolve({ value, done: false });
      return;
    }
    const { policy } = this.options;
    const capacity = this.options.capacity ?? 1000;
    if (policy === 'latest') {
      this.queue.length = 0;
      this.queue.push(value);
      return;
    }
    if (this.queue.length >= capacity) {
      if (policy === 'drop-oldest') {
        this.queue.shift();
        this.droppedSinceRead += 1;
        this.counters.dropped += 1;
      } else {
        this.counters.disconnectedSlow += 1;
        this.fail(new SlowSubscriberError(this.key));
        return;
      }
    }
    this.queue.push(value);
  }

  fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.queue.length = 0;
    if (this.failWaiting) {
      const reject = this.failWaiting;
      this.waiting = undefined;
      this.failWaiting = undefined;
      this.finish();
      reject(error);
    }
  }

  end(): void {
    if (this.done) return;
    const resolve = this.waiting;
    this.waiting = undefined;
    this.failWaiting = undefined;
    this.finish();
    resolve?.({ value: undefined, done: true });
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.onRelease();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) {
      this.counters.delivered += 1;
      this.droppedSinceRead = 0;
      return Promise.resolve({ value: this.queue.shift() as T, done: false });
    }
    if (this.failure) {
      const error = this.failure;
      this.failure = undefined;
      this.finish();
      return Promise.reject(error);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
