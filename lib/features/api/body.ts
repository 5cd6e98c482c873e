// A request body read with its size capped while it arrives: a chunked upload (no Content-Length) of
// a gigabyte is cut off at the cap, not read into memory and measured afterwards.

/** The body as text, or null as soon as it passes `max` bytes (the rest is not read). */
export async function readCapped(req: Request, max: number): Promise<string | null> {
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
