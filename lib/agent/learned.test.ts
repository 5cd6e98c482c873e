// The agent learns the clusters pgherd has on record on its host from pgherd's answer, and finds one
// by its data directory's lock file though its socket directory is not one it watches.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { learnedDirectories } from './cli';
import { agentConfigSchema, discover } from './discover';

const dir = mkdtempSync(path.join(tmpdir(), 'pgherd-learned-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the clusters pgherd made on the agent\u2019s host', () => {
  it('are read from pgherd\u2019s answer: absolute paths only, at most 64', () => {
    const answer = JSON.stringify({ server: 'h', dataDirectories: ['/srv/green17', 'relative', '/a/../etc', 7, ...Array(80).fill('/x')] });
    expect(learnedDirectories(answer)).toEqual(['/srv/green17', ...Array(63).fill('/x')]);
    expect(learnedDirectories('not json')).toEqual([]);
    expect(learnedDirectories('{"server":"h"}')).toEqual([]);
  });

  it('are found by their lock file, whatever socket directory they use', async () => {
    // A running postmaster's lock file (this process stands in for it): its socket directory is its own.
    const green = path.join(dir, 'green17');
    const socket = path.join(green, 'run');
    mkdirSync(socket, { recursive: true });
    writeFileSync(path.join(green, 'postmaster.pid'), [String(process.pid), green, '1700000000', '5433', socket, '*', ''].join('\n'));
    const base = {
      server: 'https://pgherd.example',
      tokenFile: '/t',
      lsclusters: false,
      patroni: false,
      socketDirectories: ['/nonexistent'],
    };
    expect(await discover(agentConfigSchema.parse(base))).toEqual([]);
    const answer = JSON.stringify({ server: 'h', dataDirectories: [green] });
    const found = await discover(agentConfigSchema.parse({ ...base, dataDirectories: learnedDirectories(answer) }));
    expect(found).toEqual([{ port: 5433, socketDirectory: socket, dataDirectory: green, running: true }]);
  });
});
