/** Benchmark child: the Binance simulator on its own process (and CPU), on port 0. */
import {
  startSimulator,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../src/simulator/index.js';
import { serve } from './ipc.js';

let sim: SimulatorHandle | undefined;

serve({
  async start(arg) {
    sim = await startSimulator({ ...(arg as SimulatorOptions), port: 0, host: '127.0.0.1' });
    return { restUrl: sim.restUrl, streamUrl: sim.streamUrl };
  },
  cpu: () => process.cpuUsage(),
  async close() {
    await sim?.close();
    setImmediate(() => process.exit(0));
  },
});
