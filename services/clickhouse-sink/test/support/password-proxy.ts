import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The local ClickHouse 18.16 has only a password-less `default` user. To run the sink with a real secret
 * (and prove it never reaches a log), tests put this proxy in front: it requires HTTP basic auth with the
 * given password (else 401, as ClickHouse answers a wrong password) and forwards to ClickHouse without it.
 * Setting `down` makes every request fail with 503: ClickHouse "unavailable" for one test only, without
 * touching the shared server.
 */
export interface PasswordProxy {
  url: string;
  down: boolean;
  close(): Promise<void>;
}

export async function startPasswordProxy(
  target: string,
  user: string,
  password: string,
): Promise<PasswordProxy> {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    if (proxy.down || req.headers.authorization !== expected) {
      req.resume();
      if (proxy.down) res.writeHead(503).end('unavailable (test proxy is down)');
      else res.writeHead(401).end('Code: 516, e.displayText() = DB::Exception: wrong password');
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    delete headers.authorization;
    const forward = httpRequest(
      { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const proxy: PasswordProxy = {
    url: '',
    down: false,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
