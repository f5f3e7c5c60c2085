import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  GraphQLError,
  Kind,
  getOperationAST,
  visit,
  BREAK,
  type DocumentNode,
  type ExecutionResult,
  type FormattedExecutionResult,
  type FragmentDefinitionNode,
  type GraphQLFormattedError,
  type SelectionSetNode,
} from 'graphql';
import type { WebSocket } from 'ws';
import type { Credentials } from '../binance/rest.js';
import type { OverflowPolicy } from '../hub/hub.js';
import type { Logger } from '../log.js';

/**
 * Shared delivery of WebSocket subscriptions (design.md, items 7 and 8; issue 6).
 *
 * A plain yoga + graphql-ws server runs every subscriber's operation on its own: one source
 * iterator, one GraphQL execution, one `JSON.stringify` and a chain of promises per subscriber
 * per event. That is about 40 µs of CPU per delivered message, a tenth of what a raw `ws`
 * broadcast manages. Here subscribers of the same operation form a *group*: the operation runs
 * once per group (through yoga's enveloped `subscribe`, so masking and plugins still apply), each
 * result is serialized once into a Buffer, and every member only adds its framing
 * (`{"id":…,"type":"next","payload":…}`) and a socket write.
 *
 * Who may share: a group key is (document, operationName, variables, context key). The context
 * key is '' for operations that read only public data and a hash of the caller's credentials for
 * operations that read account data, so two different credential sets never share a group. An
 * operation is shared only when every root field it may select is listed in `SHARED_FIELDS` and
 * it carries no directive other than `@skip`/`@include`; anything else runs per subscriber, as
 * before. When in doubt, a field stays out of the table.
 *
 * Per subscriber, what is left is framing and a write: the frame (`prefix` + shared body + `}`,
 * with the WebSocket header), and writes are coalesced: while the current tick fans out (every
 * event of one upstream read, at most `coalesceMs`) a socket's messages are held, then framed
 * into one buffer and written to the TCP socket at once, so a socket with several
 * subscriptions, or several events in a burst, costs one allocation and one syscall.
 *
 * Slow sockets: each member looks at its socket's `bufferedAmount` before writing. While the
 * socket is backed up, the member keeps what the data's policy allows (`latest`: only the newest
 * payload; `drop-oldest`: the newest `pendingCapacity` payloads, dropped ones counted and
 * logged; `disconnect`: everything, until `pendingCapacity` is exceeded, then the whole socket
 * is closed with `SLOW_CONSUMER_CLOSE_CODE`). The socket's `drain` flushes what was kept. The
 * gateway's memory per socket is therefore bounded by `sendHighWaterBytes` plus the kept
 * payloads, whatever the client does.
 */

/** How one subscription root field may be shared. */
export interface FieldSharing {
  /** `public`: the result never depends on the caller; `private`: it depends on credentials. */
  scope: 'public' | 'private';
  /** what a member keeps while its socket is backed up */
  policy: OverflowPolicy;
  /**
   * The value is a full state (a book view, a ticker, a list of balances): a member joining a
   * live group gets the group's last payload at once, as a lone subscriber gets the current
   * view on subscribe.
   */
  replayLast: boolean;
}

/**
 * The subscription fields that may be shared, and how. Every field here must resolve from its
 * arguments and, for `private` fields, the caller's credentials only: nothing else in the
 * context may change the result. Fields not listed (e.g. `status`) always run per subscriber.
 */
export const SHARED_FIELDS: Readonly<Record<string, FieldSharing>> = {
  orderBook: { scope: 'public', policy: 'latest', replayLast: true },
  ticker: { scope: 'public', policy: 'latest', replayLast: true },
  trades: { scope: 'public', policy: 'drop-oldest', replayLast: false },
  accountEvents: { scope: 'private', policy: 'disconnect', replayLast: false },
  orderUpdates: { scope: 'private', policy: 'disconnect', replayLast: false },
  balances: { scope: 'private', policy: 'disconnect', replayLast: true },
  positions: { scope: 'private', policy: 'disconnect', replayLast: true },
};

/** The sharing of one operation: its fields' rules merged, the strictest winning. */
export interface SharePlan extends FieldSharing {
  /** root field names, for logs */
  fields: string;
}

/**
 * Close code for a socket too slow for data that is never dropped (account data). In the
 * application range (4000–4999) and outside graphql-ws' own codes; the graphql-ws client does
 * not treat it as fatal, so it reconnects and resubscribes (and gets the full state again).
 */
export const SLOW_CONSUMER_CLOSE_CODE = 4410;
export const SLOW_CONSUMER_CLOSE_REASON = 'Too slow for account data';

const ALLOWED_DIRECTIVES = new Set(['skip', 'include']);
const POLICY_STRICTNESS: Record<OverflowPolicy, number> = {
  latest: 0,
  'drop-oldest': 1,
  disconnect: 2,
};

const plans = new WeakMap<DocumentNode, Map<string, SharePlan | null>>();

/**
 * How the operation may be shared, or undefined when it must run per subscriber. Cached per
 * (parsed document, operation name); yoga's parser cache hands back the same document object for
 * the same text, so this runs once per distinct document.
 */
export function sharePlan(
  document: DocumentNode,
  operationName: string | null | undefined,
): SharePlan | undefined {
  let byName = plans.get(document);
  if (!byName) {
    byName = new Map();
    plans.set(document, byName);
  }
  const name = operationName ?? '';
  let plan = byName.get(name);
  if (plan === undefined) {
    plan = computePlan(document, operationName) ?? null;
    byName.set(name, plan);
  }
  return plan ?? undefined;
}

function computePlan(
  document: DocumentNode,
  operationName: string | null | undefined,
): SharePlan | undefined {
  const op = getOperationAST(document, operationName);
  if (!op || op.operation !== 'subscription') return undefined;
  let foreignDirective = false;
  visit(document, {
    Directive(node) {
      if (!ALLOWED_DIRECTIVES.has(node.name.value)) {
        foreignDirective = true;
        return BREAK;
      }
      return undefined;
    },
  });
  if (foreignDirective) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  const names = new Set<string>();
  if (!rootFieldNames(op.selectionSet, fragments, names, new Set())) return undefined;
  let plan: SharePlan | undefined;
  for (const field of names) {
    const rule = SHARED_FIELDS[field];
    if (!rule) return undefined;
    plan = plan
      ? {
          fields: `${plan.fields},${field}`,
          scope: plan.scope === 'private' || rule.scope === 'private' ? 'private' : 'public',
          policy:
            POLICY_STRICTNESS[rule.policy] > POLICY_STRICTNESS[plan.policy]
              ? rule.policy
              : plan.policy,
          replayLast: plan.replayLast && rule.replayLast,
        }
      : { fields: field, ...rule };
  }
  return plan;
}

/** Every field name the root selection may select (directives ignored: any may apply). */
function rootFieldNames(
  set: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  out: Set<string>,
  visiting: Set<string>,
): boolean {
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) out.add(sel.name.value);
    else if (sel.kind === Kind.INLINE_FRAGMENT) {
      if (!rootFieldNames(sel.selectionSet, fragments, out, visiting)) return false;
    } else {
      const frag = fragments.get(sel.name.value);
      if (!frag) return false;
      if (visiting.has(frag.name.value)) continue;
      visiting.add(frag.name.value);
      if (!rootFieldNames(frag.selectionSet, fragments, out, visiting)) return false;
      visiting.delete(frag.name.value);
    }
  }
  return true;
}

const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 1;

/**
 * The key of an operation's group: the document's identity, the operation name, the variables
 * (keys sorted) and the context key. Two subscribers with the same key get the same bytes.
 */
export function groupKey(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | null | undefined,
  contextKey: string,
): string {
  let id = documentIds.get(document);
  if (id === undefined) {
    id = nextDocumentId++;
    documentIds.set(document, id);
  }
  return `${id}\u0000${operationName ?? ''}\u0000${stableJson(variables ?? {})}\u0000${contextKey}`;
}

/**
 * The context key: '' for public operations; for private ones a sha256 of the credentials in
 * effect (key and secret: a wrong secret must not ride on a right one), `anonymous` without any.
 */
export function contextKey(plan: SharePlan, credentials: Credentials | undefined): string {
  if (plan.scope === 'public') return '';
  if (!credentials) return 'anonymous';
  return createHash('sha256')
    .update(credentials.apiKey)
    .update('\u0000')
    .update(credentials.apiSecret ?? '')
    .digest('hex');
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` give the same key. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${stableJson(obj[k])}`)
    .join(',')}}`;
}

/**
 * HTTP strips yoga's `extensions.http`/`unexpected` from errors; the WebSocket transport strips
 * them too, so both answer alike (stack-notes trap 11).
 */
export function stripError(e: GraphQLError | GraphQLFormattedError): GraphQLFormattedError {
  const json = (e instanceof GraphQLError ? e.toJSON() : e) as GraphQLFormattedError;
  if (!json.extensions) return json;
  const {
    http: _http,
    unexpected: _unexpected,
    ...rest
  } = json.extensions as Record<string, unknown>;
  return { ...json, extensions: rest };
}

/** The result with stripped errors, or undefined when it has none (graphql-ws `onNext` shape). */
export function stripResult(
  result: ExecutionResult | FormattedExecutionResult,
): FormattedExecutionResult | undefined {
  if (!result.errors) return undefined;
  return { ...result, errors: result.errors.map(stripError) } as FormattedExecutionResult;
}

// ---- delivery ------------------------------------------------------------------------------

/** Knobs of shared delivery; the defaults are in `DEFAULT_SHARED_DELIVERY`. */
export interface SharedDeliveryOptions {
  /**
   * A socket with more than this many bytes waiting in user space counts as backed up: members
   * stop writing to it and keep what their policy allows until it drains.
   */
  sendHighWaterBytes: number;
  /** payloads a member keeps for a backed-up socket (`drop-oldest` and `disconnect`) */
  pendingCapacity: number;
  /** at most one "dropping for a slow subscriber" warning per socket per this interval */
  dropLogIntervalMs: number;
  /**
   * Write coalescing: a socket's messages are held until the work of the current tick is done
   * (every event that arrived in one upstream read, fanned out), but never longer than this,
   * then leave in one buffer and one write instead of one syscall each. 0 writes every frame at
   * once.
   *
   * The cap is a guard for pathological reads, not a latency knob: the batch is one read's
   * work, and a socket's bytes cannot leave before that work is done anyway unless the batch is
   * cut. Cutting it (a 1 ms cap was tried) turned a read of 9 trades to 1000 sockets into
   * several writes per socket; at 100k msg/s that cost CPU, the extra time let bigger bursts
   * pile up in the next read, and p99 went from about 20 ms to 45–125 ms (`npm run bench`).
   */
  coalesceMs: number;
}

export const DEFAULT_SHARED_DELIVERY: Readonly<SharedDeliveryOptions> = {
  sendHighWaterBytes: 128 * 1024,
  pendingCapacity: 1_000,
  dropLogIntervalMs: 10_000,
  coalesceMs: 20,
};

/** Counters for /metrics and the tests. */
export interface DeliveryCounters {
  /** live groups */
  groups: number;
  /** live shared subscriptions */
  members: number;
  /** groups created since start */
  groupsCreated: number;
  /** results pulled from group operations: one GraphQL execution each */
  executions: number;
  /** `next` frames written to sockets by the shared path */
  delivered: number;
  /** socket writes that carried them (coalescing: one per socket per batch) */
  socketWrites: number;
  /** payloads replaced by a newer one for a backed-up socket (`latest`) */
  conflated: number;
  /** payloads dropped for a backed-up socket (`drop-oldest`) */
  dropped: number;
  /** sockets closed because they were too slow for never-dropped data */
  disconnected: number;
  /** last payloads sent at once to members joining a live group */
  replayed: number;
}

/** Every counter at zero (also what a transport without shared delivery reports). */
export const ZERO_DELIVERY_COUNTERS: Readonly<DeliveryCounters> = {
  groups: 0,
  members: 0,
  groupsCreated: 0,
  executions: 0,
  delivered: 0,
  socketWrites: 0,
  conflated: 0,
  dropped: 0,
  disconnected: 0,
  replayed: 0,
};

/** What `join` needs to start a group's operation; `start` is dropped once a group has it. */
export interface ShareTicket {
  key: string;
  plan: SharePlan;
  start: (() => Promise<AsyncIterable<ExecutionResult> | ExecutionResult>) | undefined;
}

type Settled = { done: true } | { done: false; error: unknown };

const TEXT_FRAME = { binary: false } as const;
const FRAME_END = 0x7d; // '}'

/** Bytes of an unmasked server frame header for a payload of `length` (RFC 6455 §5.2). */
function frameHeaderLength(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/**
 * Writes one text frame (FIN, unmasked) carrying `prefix` + `body` + `}` into `out` at `at`;
 * returns the offset after it.
 */
function writeFrame(out: Buffer, at: number, prefix: Buffer, body: Buffer): number {
  const length = prefix.length + body.length + 1;
  const head = frameHeaderLength(length);
  out[at] = 0x81;
  if (head === 2) out[at + 1] = length;
  else if (head === 4) {
    out[at + 1] = 126;
    out.writeUInt16BE(length, at + 2);
  } else {
    out[at + 1] = 127;
    out.writeUInt32BE(0, at + 2);
    out.writeUInt32BE(length, at + 6);
  }
  prefix.copy(out, at + head);
  body.copy(out, at + head + prefix.length);
  out[at + head + length - 1] = FRAME_END;
  return at + head + length;
}

/** The groups of one gateway, and the outlets (one per socket) they write to. */
export class SharedDelivery {
  readonly options: SharedDeliveryOptions;
  private readonly groups = new Map<string, Group>();
  /** @internal live outlets, for `outletStats` */
  readonly outlets = new Set<Outlet>();
  /** @internal counters, mutated by groups, members and outlets */
  readonly counters: Omit<DeliveryCounters, 'groups' | 'members'> = { ...ZERO_DELIVERY_COUNTERS };
  /** @internal */
  members = 0;
  /** outlets corked in the current batch, and when the batch began */
  private corked: Outlet[] = [];
  private batchStartedAt = 0;
  private writesInBatch = 0;
  private flushQueued = false;
  private readonly flushTick = (): void => {
    this.flushQueued = false;
    this.uncorkAll();
  };

  constructor(
    readonly logger: Logger,
    options: Partial<SharedDeliveryOptions> = {},
  ) {
    this.options = { ...DEFAULT_SHARED_DELIVERY, ...options };
  }

  /**
   * The outlet of one WebSocket: its backpressure state, drain handling and slow close. `raw` is
   * the TCP socket under it (the upgrade request's socket), for `drain` and corking.
   */
  outlet(socket: WebSocket, raw: Socket): Outlet {
    const outlet = new Outlet(this, socket, raw);
    this.outlets.add(outlet);
    return outlet;
  }

  /**
   * Adds subscription `id` on `outlet` to the ticket's group, starting the group when it is new.
   * Resolves with the member (an iterator that yields nothing and ends with the group; the bytes
   * go straight to the socket) or, when the operation failed at subscribe, with its result.
   */
  async join(
    ticket: ShareTicket,
    outlet: Outlet,
    id: string,
  ): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    let group = this.groups.get(ticket.key);
    if (!group) {
      const start = ticket.start;
      if (!start) throw new Error('shared subscription ticket used twice');
      group = new Group(this, ticket.key, ticket.plan);
      this.groups.set(ticket.key, group);
      this.counters.groupsCreated += 1;
      group.begin(start);
    }
    ticket.start = undefined;
    const member = new Member(group, outlet, id);
    group.add(member);
    const outcome = await group.started;
    if (outcome !== LIVE) {
      member.detach();
      return outcome;
    }
    return member;
  }

  /**
   * @internal Adds a freshly corked outlet to the current batch. The batch ends at
   * `process.nextTick`, which runs once the microtasks of the current tick (the groups'
   * fan-outs of every event of one upstream read) have drained, or earlier in `wrote`.
   */
  cork(outlet: Outlet): void {
    if (this.corked.length === 0) {
      this.batchStartedAt = performance.now();
      this.writesInBatch = 0;
    }
    this.corked.push(outlet);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flushTick);
    }
  }

  /** @internal After each write: a batch older than `coalesceMs` is flushed at once. */
  wrote(): void {
    this.counters.delivered += 1;
    if ((++this.writesInBatch & 63) === 0 && this.corked.length > 0) {
      if (performance.now() - this.batchStartedAt > this.options.coalesceMs) this.uncorkAll();
    }
  }

  /** Ends the current batch now: every held frame is written (before a shutdown's closes). */
  flush(): void {
    this.uncorkAll();
  }

  private uncorkAll(): void {
    const list = this.corked;
    if (list.length === 0) return;
    this.corked = [];
    for (const outlet of list) outlet.uncorkBatch();
  }

  /** @internal */
  forget(group: Group): void {
    if (this.groups.get(group.key) === group) this.groups.delete(group.key);
  }

  stats(): DeliveryCounters {
    return { ...this.counters, groups: this.groups.size, members: this.members };
  }

  /** Per socket: bytes waiting in user space, payloads kept by members, members (tests, status). */
  outletStats(): { bufferedBytes: number; pending: number; members: number }[] {
    return [...this.outlets].map((o) => o.stats());
  }

  /** Live groups by root fields, for tests and debugging. */
  groupSizes(): { fields: string; members: number }[] {
    return [...this.groups.values()].map((g) => ({ fields: g.plan.fields, members: g.size }));
  }
}

const LIVE = Symbol('live');

/** One running operation and the subscriptions that share its results. */
class Group {
  readonly started: Promise<typeof LIVE | ExecutionResult>;
  private resolveStarted!: (v: typeof LIVE | ExecutionResult) => void;
  private readonly members = new Set<Member>();
  private iterator: AsyncIterator<ExecutionResult> | undefined;
  /** the last payload, for members joining a live group (only when `plan.replayLast`) */
  private last: Buffer | undefined;
  private state: 'starting' | 'live' | 'ended' = 'starting';

  constructor(
    private readonly owner: SharedDelivery,
    readonly key: string,
    readonly plan: SharePlan,
  ) {
    this.started = new Promise((resolve) => {
      this.resolveStarted = resolve;
    });
  }

  get size(): number {
    return this.members.size;
  }

  begin(start: NonNullable<ShareTicket['start']>): void {
    start().then(
      (result) => {
        if (!isAsyncIterable(result)) {
          this.state = 'ended';
          this.owner.forget(this);
          this.resolveStarted(result);
          return;
        }
        this.iterator = result[Symbol.asyncIterator]();
        this.state = 'live';
        this.resolveStarted(LIVE);
        if (this.members.size === 0) this.stop();
        else void this.pump(this.iterator);
      },
      (error: unknown) => {
        // Unexpected (yoga answers bad input with a result): every member gets a masked error
        // for this operation alone, as a lone subscriber's socket would have, minus the 4500.
        this.state = 'ended';
        this.owner.forget(this);
        this.owner.logger.error('shared subscription failed to start', {
          fields: this.plan.fields,
          error: error instanceof Error ? error : String(error),
        });
        this.resolveStarted({
          errors: [
            new GraphQLError('Unexpected error.', {
              extensions: { code: 'INTERNAL_SERVER_ERROR' },
            }),
          ],
        });
      },
    );
  }

  add(member: Member): void {
    this.members.add(member);
    this.owner.members += 1;
    if (this.state === 'live' && this.last) {
      this.owner.counters.replayed += 1;
      member.offer(this.last);
    }
  }

  remove(member: Member): void {
    if (!this.members.delete(member)) return;
    this.owner.members -= 1;
    if (this.members.size === 0 && this.state === 'live') this.stop();
  }

  /** Last member gone: the group leaves the map at once and its operation is released. */
  private stop(): void {
    this.state = 'ended';
    this.owner.forget(this);
    const it = this.iterator;
    if (it?.return) {
      it.return().catch((error: unknown) =>
        this.owner.logger.warn('shared subscription failed to stop', {
          fields: this.plan.fields,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }

  private async pump(it: AsyncIterator<ExecutionResult>): Promise<void> {
    let outcome: Settled = { done: true };
    try {
      for (;;) {
        const step = await it.next();
        if (step.done || this.state !== 'live') break;
        this.owner.counters.executions += 1;
        this.publish(step.value);
      }
    } catch (error) {
      outcome = { done: false, error };
    }
    if (this.state === 'live') {
      this.state = 'ended';
      this.owner.forget(this);
    }
    for (const m of [...this.members]) m.settle(outcome);
  }

  /** Serializes the result once and offers the same bytes to every member. */
  private publish(result: ExecutionResult): void {
    const body = Buffer.from(JSON.stringify(stripResult(result) ?? result));
    if (this.plan.replayLast) this.last = body;
    for (const m of this.members) m.offer(body);
  }
}

/**
 * One shared subscription: the graphql-ws side sees an iterator that never yields and ends with
 * the group (graphql-ws then sends `complete` or `error` as usual, and calls `return()` on the
 * client's `complete` or on close); the data goes straight to the socket.
 */
class Member implements AsyncIterableIterator<ExecutionResult> {
  /** `{"id":"…","type":"next","payload":` for this subscription */
  private readonly prefix: Buffer;
  /** payloads kept while the socket is backed up, oldest first */
  private pending: Buffer[] = [];
  private settled: Settled | undefined;
  private waiter:
    | { resolve: (r: IteratorResult<ExecutionResult>) => void; reject: (e: unknown) => void }
    | undefined;
  private attached = true;

  constructor(
    private readonly group: Group,
    private readonly outlet: Outlet,
    id: string,
  ) {
    this.prefix = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
    outlet.attach(this);
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  get policy(): OverflowPolicy {
    return this.group.plan.policy;
  }

  get fields(): string {
    return this.group.plan.fields;
  }

  /** A new payload of the group: written at once, or kept by policy while the socket is full. */
  offer(body: Buffer): void {
    const out = this.outlet;
    // a socket on its way out takes nothing more (and must not count as a slow consumer)
    if (!this.attached || !out.open) return;
    if (this.pending.length > 0 && !out.backedUp()) this.flush();
    if (this.pending.length === 0 && !out.backedUp()) {
      out.send(this.prefix, body);
      return;
    }
    const counters = out.owner.counters;
    if (this.policy === 'latest') {
      if (this.pending.length > 0) counters.conflated += 1;
      this.pending = [body];
    } else {
      this.pending.push(body);
      if (this.pending.length > out.owner.options.pendingCapacity) {
        if (this.policy === 'disconnect') {
          out.closeSlow(this);
          return;
        }
        this.pending.shift();
        counters.dropped += 1;
        out.noteDrop(this);
      }
    }
    out.waitForDrain(this);
  }

  /** Writes kept payloads while the socket takes them; `force` ignores backpressure (end). */
  flush(force = false): void {
    const out = this.outlet;
    let i = 0;
    while (i < this.pending.length && (force || !out.backedUp())) {
      out.send(this.prefix, this.pending[i]!);
      i += 1;
    }
    if (i > 0) this.pending = i === this.pending.length ? [] : this.pending.slice(i);
    if (this.pending.length === 0) out.drained(this);
  }

  /** The group ended (done or failed): write what is kept, then end the iterator. */
  settle(outcome: Settled): void {
    if (this.attached) this.flush(true);
    this.detach();
    this.finish(outcome);
  }

  /** Leaves the group and the outlet (idempotent). */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.pending = [];
    this.outlet.release(this);
    this.group.remove(this);
  }

  /** The socket is being closed (too slow): nothing more is sent; graphql-ws cleans up. */
  abort(): void {
    this.detach();
    this.finish({ done: true });
  }

  private finish(outcome: Settled): void {
    if (this.settled) return;
    this.settled = outcome;
    const w = this.waiter;
    this.waiter = undefined;
    if (!w) return;
    if (outcome.done) w.resolve({ value: undefined, done: true });
    else w.reject(outcome.error);
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    const s = this.settled;
    if (s) {
      if (s.done) return Promise.resolve({ value: undefined, done: true });
      this.settled = { done: true };
      return Promise.reject(s.error);
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.detach();
    this.finish({ done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.detach();
    this.finish({ done: true });
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ExecutionResult> {
    return this;
  }
}

/**
 * The shared path's view of one WebSocket: whether it is backed up (`bufferedAmount` above the
 * high-water mark), which members wait for its `drain`, and the slow-consumer close.
 */
export class Outlet {
  private readonly members = new Set<Member>();
  private readonly waiting = new Set<Member>();
  private closing = false;
  /** in the current coalescing batch (frames held, or the socket corked) */
  private inBatch = false;
  /**
   * The current batch's messages, held as (prefix, body) pairs until the batch ends and then
   * written as one buffer: one allocation and one write per socket per batch, whatever the
   * number of subscriptions and events (direct framing only). They are not in `bufferedAmount`
   * yet, so they never count as backpressure; anything else written to the socket first calls
   * `flushHeld`, so the order on the wire is the order of the calls.
   */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private readonly coalesce: boolean;
  /** frames are built here and written to `raw` (no extension negotiated), see `send` */
  private readonly direct: boolean;
  private lastDropLogAt = 0;
  private droppedSinceLog = 0;
  private readonly highWater: number;
  private readonly onDrain = (): void => this.flushWaiting();

  constructor(
    readonly owner: SharedDelivery,
    private readonly socket: WebSocket,
    private readonly raw: Socket,
  ) {
    this.highWater = owner.options.sendHighWaterBytes;
    this.coalesce = owner.options.coalesceMs > 0;
    this.direct = socket.extensions === '';
    raw.on('drain', this.onDrain);
  }

  /** @internal Ends this socket's part of a coalescing batch: its frames leave in one write. */
  uncorkBatch(): void {
    if (!this.inBatch) return;
    this.inBatch = false;
    if (this.direct) this.flushHeld();
    else this.raw.uncork();
  }

  /**
   * Writes the held frames now, as one buffer. Called at the end of a batch and before anything
   * else is written to or closes the socket (graphql-ws messages, closes), so nothing overtakes
   * them. Dropped if the socket is no longer open (no data may follow a close frame).
   */
  flushHeld(): void {
    const held = this.held;
    if (held.length === 0) return;
    const total = this.heldBytes;
    this.heldBytes = 0;
    if (this.socket.readyState !== 1) {
      held.length = 0;
      return;
    }
    const out = Buffer.allocUnsafe(total);
    this.owner.counters.socketWrites += 1;
    let at = 0;
    for (let i = 0; i < held.length; i += 2) {
      const prefix = held[i]!;
      const body = held[i + 1]!;
      at = writeFrame(out, at, prefix, body);
    }
    held.length = 0; // the same array serves the next batch
    this.raw.write(out);
  }

  /** The socket is open (not closing or closed). */
  get open(): boolean {
    return this.socket.readyState === 1;
  }

  /**
   * True while the socket holds more than the high-water mark the kernel did not take (the
   * current batch's held frames aside), or is no longer open.
   */
  backedUp(): boolean {
    return this.socket.readyState !== 1 || this.socket.bufferedAmount > this.highWater;
  }

  /**
   * @internal Writes one `next` message: `prefix` (`{"id":…,"type":"next","payload":`), the
   * shared `body`, and `}`. Where no WebSocket extension was negotiated (the gateway's server
   * never offers permessage-deflate) ws' sender keeps no queue of its own, so the frame is built
   * here (FIN + text opcode, unmasked, RFC 6455 §5.2), byte-for-byte what `ws.send` would write,
   * and goes straight to the TCP socket: held until the batch ends when coalescing, at once
   * otherwise. Where an extension was negotiated, `ws.send` frames it (inside a cork).
   */
  send(prefix: Buffer, body: Buffer): void {
    if (this.socket.readyState !== 1) return;
    if (!this.inBatch && this.coalesce) {
      this.inBatch = true;
      if (!this.direct) this.raw.cork();
      this.owner.cork(this);
    }
    const length = prefix.length + body.length + 1;
    if (this.direct && this.coalesce) {
      this.held.push(prefix, body);
      this.heldBytes += frameHeaderLength(length) + length;
    } else if (this.direct) {
      const frame = Buffer.allocUnsafe(frameHeaderLength(length) + length);
      writeFrame(frame, 0, prefix, body);
      this.raw.write(frame);
      this.owner.counters.socketWrites += 1;
    } else {
      const message = Buffer.allocUnsafe(length);
      prefix.copy(message, 0);
      body.copy(message, prefix.length);
      message[length - 1] = FRAME_END;
      this.socket.send(message, TEXT_FRAME);
      this.owner.counters.socketWrites += 1;
    }
    this.owner.wrote();
  }

  /** @internal */
  attach(member: Member): void {
    this.members.add(member);
  }

  /** @internal */
  release(member: Member): void {
    this.members.delete(member);
    this.waiting.delete(member);
  }

  /** @internal */
  waitForDrain(member: Member): void {
    this.waiting.add(member);
  }

  /** @internal */
  drained(member: Member): void {
    this.waiting.delete(member);
  }

  private flushWaiting(): void {
    for (const m of this.waiting) {
      if (this.backedUp()) return;
      m.flush();
    }
    if (this.droppedSinceLog > 0 && this.waiting.size === 0) this.logDrops('recovered');
  }

  /** @internal counts a drop and warns at most once per `dropLogIntervalMs` */
  noteDrop(member: Member): void {
    this.droppedSinceLog += 1;
    const now = Date.now();
    if (now - this.lastDropLogAt >= this.owner.options.dropLogIntervalMs) {
      this.lastDropLogAt = now;
      this.logDrops('dropping', member.fields);
    }
  }

  private logDrops(what: 'dropping' | 'recovered', fields?: string): void {
    this.owner.logger.warn(
      what === 'dropping'
        ? 'slow subscriber: dropping the oldest messages'
        : 'slow subscriber caught up',
      { ...(fields && { fields }), dropped: this.droppedSinceLog },
    );
    this.droppedSinceLog = 0;
  }

  /**
   * Data that is never dropped has outgrown the member's bound: the socket is closed with
   * `SLOW_CONSUMER_CLOSE_CODE` and every subscription on it ends here. The close frame queues
   * behind what the socket still holds; ws terminates the socket if the close handshake does not
   * finish within its own timeout (30 s), so memory stays bounded either way.
   */
  closeSlow(member: Member): void {
    if (this.closing) return;
    this.closing = true;
    this.owner.counters.disconnected += 1;
    this.owner.logger.warn('slow subscriber disconnected', {
      fields: member.fields,
      code: SLOW_CONSUMER_CLOSE_CODE,
      bufferedBytes: this.socket.bufferedAmount,
    });
    this.flushHeld();
    this.socket.close(SLOW_CONSUMER_CLOSE_CODE, SLOW_CONSUMER_CLOSE_REASON);
    for (const m of [...this.members]) m.abort();
  }

  /** The socket closed: stop listening for its drain. */
  dispose(): void {
    this.held = [];
    this.heldBytes = 0;
    this.owner.outlets.delete(this);
    this.raw.off('drain', this.onDrain);
    for (const m of [...this.members]) m.abort();
  }

  stats(): { bufferedBytes: number; pending: number; members: number } {
    let pending = 0;
    for (const m of this.members) pending += m.pendingCount;
    return { bufferedBytes: this.socket.bufferedAmount, pending, members: this.members.size };
  }
}

function isAsyncIterable(v: unknown): v is AsyncIterable<ExecutionResult> {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}
