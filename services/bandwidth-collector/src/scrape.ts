/**
 * Reading an exporter's page with a size cap (DCGM_MAX_RESPONSE_BYTES): a page is a few hundred KB even on a
 * large node, and one answering gigabytes must not take the collector's memory, so the body is read in
 * chunks and abandoned as soon as it passes the cap (or refused up front by its content-length).
 */
export class ResponseTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`response over DCGM_MAX_RESPONSE_BYTES (${maxBytes} bytes): not parsed`);
    this.name = 'ResponseTooLargeError';
  }
}

export async function readCapped(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw new ResponseTooLargeError(maxBytes);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new ResponseTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
