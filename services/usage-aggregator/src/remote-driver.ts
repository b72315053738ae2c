import { Worker } from 'node:worker_threads';
import type { DriverReply, DriverRequest, WorkerMessage, WorkerSetup } from './driver-protocol.js';

/**
 * The main thread's handle on the driver worker: `call` sends a request and resolves with its reply. The
 * worker answers in order, so replies resolve in the order the calls were made. If the worker dies, every
 * pending and later call rejects and `onFailure` is told once: the task state is gone with it, and only a
 * restart of the process (restoring from the committed offsets) can go on.
 */
export class RemoteDriver {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (reply: DriverReply) => void; reject: (error: Error) => void }
  >();
  private nextId = 0;
  private failure: Error | undefined;
  private closing = false;

  constructor(setup: WorkerSetup, onFailure: (error: Error) => void) {
    // Same extension as this file: .ts when running from source under tsx, .js when compiled.
    const module = new URL(`./driver-worker${import.meta.url.slice(-3)}`, import.meta.url).href;
    this.worker = new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
      // V8's default young generation: since each record is decoded just before its task takes it, a larger
      // one (192 MB, which paid off while a batch's decoded records all lived until its end) gains nothing.
      workerData: { module, setup },
    });
    this.worker.on('message', (message: WorkerMessage) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.reply);
      else waiter.reject(new Error(message.error));
    });
    const die = (error: Error) => {
      if (this.failure) return;
      this.failure = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
      if (!this.closing) onFailure(error);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`driver worker exited with code ${code}`)));
  }

  call(request: DriverRequest, transfer: ArrayBuffer[] = []): Promise<DriverReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, request }, transfer);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
