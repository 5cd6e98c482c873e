// The API while pgherd's own database cannot be reached: 503 with a clear message, not 500.
import net from 'node:net';
import { NextRequest } from 'next/server';
import { describe, expect, it } from 'vitest';
import { createDb, isDatabaseUnavailable } from '@/db/client';
import { z } from 'zod';
import { restartAction } from '@/lib/actions/control/restart.action';
import { ParamsError, type Plan } from '@/lib/engine/plan';
import { ConfirmationError, NothingToRunError, StalePlanError, WrongTargetsError } from '@/lib/engine/submit';
import { handle, jsonBody } from './respond';

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('the API with pgherd\u2019s database down', () => {
  it('answers 503 saying so when a query cannot reach the database', async () => {
    const { db, pool } = createDb(`postgres://pgherd@127.0.0.1:${await closedPort()}/pgherd`, 1);
    try {
      const err = await db.execute('SELECT 1').then(
        () => null,
        (e: unknown) => e,
      );
      expect(isDatabaseUnavailable(err)).toBe(true);
      const route = handle(async () => {
        await db.execute('SELECT 1');
        throw new Error('unreachable');
      });
      const res = await route(new NextRequest('http://127.0.0.1/api/v1/instances'), { params: Promise.resolve({}) });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect((await res.json()).error).toMatch(/database is unavailable; nothing was changed/);
    } finally {
      await pool.end();
    }
  });

  it('still answers 500 for other failures', async () => {
    expect(isDatabaseUnavailable(new Error('syntax error at or near "SELEC"'))).toBe(false);
    const res = await handle(async () => {
      throw new Error('boom');
    })(new NextRequest('http://127.0.0.1/api/v1/instances'), { params: Promise.resolve({}) });
    expect(res.status).toBe(500);
  });
});

describe('request bodies', () => {
  it('are cut off at the cap while they arrive, chunked ones too (no Content-Length)', async () => {
    let sent = 0;
    const chunk = new Uint8Array(16 * 1024).fill(0x20);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= 64 * 1024 * 1024) {
          c.close();
          return;
        }
        sent += chunk.byteLength;
        c.enqueue(chunk);
      },
    });
    const req = new NextRequest('http://127.0.0.1/api/v1/operations', {
      method: 'POST',
      body,
      duplex: 'half',
    } as unknown as ConstructorParameters<typeof NextRequest>[1]);
    expect(req.headers.get('content-length')).toBeNull();
    const res = await handle(async (r) => {
      await jsonBody(r, z.object({}));
      throw new Error('read it all');
    })(req, { params: Promise.resolve({}) });
    expect(res.status).toBe(413);
    // Stopped after the first 64 kB and a little read-ahead, not after 64 MB.
    expect(sent).toBeLessThan(1024 * 1024);
  });
});

describe('a plan or submit that is not taken', () => {
  it('is answered from the error itself: the status, error and details the API has always given', async () => {
    const answer = async (err: unknown) => {
      const res = await handle(async () => {
        throw err;
      })(new NextRequest('http://127.0.0.1/api/v1/operations', { method: 'POST' }), { params: Promise.resolve({}) });
      return [res.status, await res.text()];
    };
    const plan: Plan = {
      action: 'restart',
      label: 'Restart',
      params: {},
      targets: [],
      on: 'instance',
      missing: [7],
      digest: 'a'.repeat(32),
      typeToConfirm: 'production',
      idempotencyKey: 'k',
    };
    expect(await answer(new StalePlanError(plan))).toEqual([
      409,
      `{"error":"the inventory changed since this plan was made; review the new plan","details":{"digest":"${'a'.repeat(32)}","missing":[7]}}`,
    ]);
    expect(await answer(new ConfirmationError('production'))).toEqual([
      400,
      '{"error":"type \\"production\\" to confirm","details":{"confirm":"production"}}',
    ]);
    expect(await answer(new NothingToRunError())).toEqual([409, '{"error":"every target was refused: nothing to run","details":null}']);
    // The refusals are said grouped by reason, the most targets first: three in the message, each with its targets in the details.
    const refused = [
      { id: 1, reason: 'i-1 has no capacity' },
      { id: 2, reason: 'ledger is run by Patroni' },
      { id: 3, reason: 'ledger is run by Patroni' },
      { id: 4, reason: 'i-4 has no capacity' },
      { id: 5, reason: 'ledger is run by Patroni' },
      { id: 6, reason: 'd is fenced' },
      { id: 7, reason: 'd is fenced' },
    ];
    expect(await answer(new NothingToRunError(refused))).toEqual([
      409,
      JSON.stringify({
        error:
          'every target was refused: nothing to run (ledger is run by Patroni (3 targets); d is fenced (2 targets); i-1 has no capacity; and 1 more)',
        details: {
          refusals: [
            { reason: 'ledger is run by Patroni', targets: [2, 3, 5] },
            { reason: 'd is fenced', targets: [6, 7] },
            { reason: 'i-1 has no capacity', targets: [1] },
            { reason: 'i-4 has no capacity', targets: [4] },
          ],
        },
      }),
    ]);
    expect(await answer(new ParamsError('reload takes no parameters'))).toEqual([
      400,
      '{"error":"invalid params","details":{"params":"reload takes no parameters"}}',
    ]);
    expect(await answer(new WrongTargetsError(restartAction))).toEqual([
      400,
      '{"error":"restart runs on instances: give instanceIds","details":null}',
    ]);
  });
});
