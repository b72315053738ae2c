import { createServer, type AddressInfo } from 'node:net';

/** A port nothing listens on yet (taken from the OS, then released), e.g. a service's OPS_PORT. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A service's /readyz answer: 200 or 503, and its body (`checks`, and `waitingFor` while not ready). */
export async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
