// Entry of every worker thread. Worker threads do not inherit `--import tsx`, so a worker whose module is
// TypeScript source (how the services run) registers tsx itself before loading it.
import { workerData } from 'node:worker_threads';

if (workerData.module.endsWith('.ts')) (await import('tsx/esm/api')).register();
await import(workerData.module);
