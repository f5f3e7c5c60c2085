import { loadConfig } from './config.js';
import { envInt, runMain } from './env.js';
import { startGateway } from './gateway.js';
import { startSimulator } from './simulator/index.js';

/**
 * `npm run demo`: the built-in Binance simulator and the gateway against it, fully offline.
 * PORT/HOST/LOG_LEVEL configure the gateway as usual; SIM_PORT the simulator (default 4100).
 */
await runMain(async () => {
  const simPort = envInt(process.env, 'SIM_PORT', 4100, 0, 65_535);
  const sim = await startSimulator({ port: simPort, autoTrade: true });
  const config = loadConfig({
    ...process.env,
    BINANCE_REST_URL: sim.restUrl,
    BINANCE_STREAM_URL: sim.streamUrl,
  });
  const gateway = await startGateway(config);
  process.stdout.write(`
  Binance Futures GraphQL gateway — offline demo

  GraphiQL:   ${gateway.url}
  Simulator:  ${sim.restUrl} (REST), ${sim.streamUrl}/public|market|private (streams)

  Demo accounts (paste into GraphiQL's Headers tab for account data):
    alice  {"X-MBX-APIKEY": "alice-demo-api-key", "X-MBX-APISECRET": "alice-demo-api-secret"}
    bob    {"X-MBX-APIKEY": "bob-demo-api-key", "X-MBX-APISECRET": "bob-demo-api-secret"}

  Try:
    subscription { orderBook(symbol: "BTCUSDT", depth: 5) { lastUpdateId bids { price quantity } asks { price quantity } } }
  and, with alice's headers:
    subscription { accountEvents { __typename ... on OrderUpdate { symbol side orderStatus orderId lastFilledPrice } ... on AccountUpdate { reason balances { asset walletBalance } } } }

`);
  const stop = (): void => {
    void gateway
      .close()
      .then(() => sim.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
});
