import { loadConfig } from './config.js';
import { runMain } from './env.js';
import { startGateway } from './gateway.js';

await runMain(async () => {
  const config = loadConfig(process.env);
  const gateway = await startGateway(config);
  const stop = (signal: string): void => {
    gateway.logger.info('shutting down', { signal });
    void gateway.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
});
