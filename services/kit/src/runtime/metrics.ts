import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A process's registry: the Node.js default metrics, every series labelled with the service's name. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Makers of the metrics a process registers on its registry (the ops server's /metrics): a counter, gauge or
 * histogram by name, help and label names, so a service's metrics file states only those. A gauge may read
 * its value at each scrape (`read`), a histogram may have its own buckets.
 */
export function metricsOn(registry: Registry) {
  const registers = [registry];
  return {
    counter: (name: string, help: string, labelNames: readonly string[] = []) =>
      new Counter({ name, help, labelNames, registers }),
    gauge: (
      name: string,
      help: string,
      labelNames: readonly string[] = [],
      options: { read?: () => number } = {},
    ) => {
      const { read } = options;
      return new Gauge({
        name,
        help,
        labelNames,
        registers,
        ...(read
          ? {
              collect() {
                this.set(read());
              },
            }
          : {}),
      });
    },
    histogram: (
      name: string,
      help: string,
      labelNames: readonly string[] = [],
      options: { buckets?: number[] } = {},
    ) =>
      new Histogram({
        name,
        help,
        labelNames,
        registers,
        ...(options.buckets ? { buckets: options.buckets } : {}),
      }),
  };
}
