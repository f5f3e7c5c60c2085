import { envBool, envInt, runMain, ConfigError, type Env } from '../env.js';
import { startSimulator, type SimulatorOptions } from './index.js';

/** Simulator options from the environment (see README, "The simulator"). */
export function simulatorOptionsFromEnv(env: Env): SimulatorOptions {
  const symbols = env.SIM_SYMBOLS?.trim();
  if (
    symbols !== undefined &&
    symbols !== '' &&
    !/^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$/.test(symbols)
  ) {
    throw new ConfigError(
      'SIM_SYMBOLS',
      `expected a comma-separated symbol list, got ${JSON.stringify(symbols)}`,
    );
  }
  const options: SimulatorOptions = {
    port: envInt(env, 'SIM_PORT', 4100, 0, 65_535),
    host: env.SIM_HOST || '127.0.0.1',
    seed: envInt(env, 'SIM_SEED', 1, 0, 2 ** 31 - 1),
    highRate: envBool(env, 'SIM_HIGH_RATE', false),
    autoTrade: envBool(env, 'SIM_AUTO_TRADE', true),
    limits: {
      pingIntervalMs: envInt(env, 'SIM_PING_INTERVAL_MS', 180_000, 100, 3_600_000),
      pongTimeoutMs: envInt(env, 'SIM_PONG_TIMEOUT_MS', 600_000, 100, 3_600_000),
      maxConnectionLifetimeMs: envInt(
        env,
        'SIM_MAX_CONNECTION_LIFETIME_MS',
        86_400_000,
        1_000,
        604_800_000,
      ),
    },
    listenKeyValidityMs: envInt(env, 'SIM_LISTEN_KEY_VALIDITY_MS', 3_600_000, 1_000, 86_400_000),
  };
  if (symbols) options.symbols = symbols.split(',');
  if (env.SIM_REPLAY) {
    options.replay = { dir: env.SIM_REPLAY, speed: envInt(env, 'SIM_REPLAY_SPEED', 1, 0, 1_000) };
  }
  return options;
}

await runMain(async () => {
  const sim = await startSimulator(simulatorOptionsFromEnv(process.env));
  process.stdout.write(
    `Binance simulator ready\n  REST:    ${sim.restUrl}\n  streams: ${sim.streamUrl}/public  ${sim.streamUrl}/market  ${sim.streamUrl}/private\n  control: ${sim.restUrl}/_sim/state\n`,
  );
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
});
