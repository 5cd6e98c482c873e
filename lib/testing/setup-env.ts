// Vitest setup file (each test file's process): pgherd's settings pointed at the shared lab, as the
// console and the worker get them, so that actions run in-process reach the fleet the way they would.
import pg from 'pg';
import { expect, inject } from 'vitest';
import { readLab, useLabSettings } from '@/lib/lab/lab';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // see lib/lab/aws.ts
useLabSettings(readLab(inject('labFile')));

// node-postgres deprecates a query sent on a client that has queries waiting (two queries at once on one
// connection, or one sent before the connection is ready); it says so once a process with no caller.
// Here each caller is named once, with the test and the stack, so that it can be found and mended.
{
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const seen = new Set<string>();
  proto.query = function (this: { _queryQueue?: unknown[]; pipeline?: boolean }, ...args: unknown[]) {
    if ((this._queryQueue?.length ?? 0) > 0 && !this.pipeline) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 40;
      const stack = new Error('a query sent on a pg client with queries still waiting').stack ?? '';
      Error.stackTraceLimit = limit;
      const ours = stack.split('\n').filter((l) => !l.includes('node_modules') && !l.includes('setup-env'));
      const key = ours.slice(0, 3).join('|');
      if (!seen.has(key)) {
        seen.add(key);
        const s = expect.getState();
        console.error(`[pg-queued-query] ${s.testPath ?? ''} > ${s.currentTestName ?? ''}\n${ours.join('\n')}`);
      }
    }
    return original.apply(this, args);
  };
}
