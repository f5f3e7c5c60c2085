import { afterEach } from 'vitest';

/**
 * Registers an afterEach that runs, newest first, everything deferred during the test
 * (clients, gateways, simulators), so every test tears down what it started.
 */
export function autoCleanup(): (fn: () => unknown) => void {
  const pending: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of pending.splice(0).reverse()) await fn();
  });
  return (fn) => {
    pending.push(fn);
  };
}
