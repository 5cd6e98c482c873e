// The SSH layer against the lab's real sshd.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { readLab } from '@/lib/lab/lab';
import { SshPool, type SshTarget } from './ssh-client';
import { HostKeyMismatchError, HostKeyNotPinnedError, SshCommandError, SshTimeoutError } from './ssh-errors';

const lab = readLab(inject('labFile'));
const ssh = lab.ssh!;
const pinned: { fp?: string } = {};
const pool = new SshPool({
  privateKey: readFileSync(ssh.privateKeyPath),
  onFirstContact: (_t, fp) => {
    pinned.fp = fp;
  },
});
const target = (address: string, fp: string | null = ssh.hostKeyFingerprint): SshTarget => ({
  host: address,
  port: ssh.port,
  username: ssh.user,
  hostKeyFingerprint: fp,
});
afterAll(() => pool.close());

describe('SshPool against the lab sshd', () => {
  it('runs commands as the lab user and reports stdout, stderr and exit code', async () => {
    const r = await pool.exec(target(lab.instances[0]!.address), ['sh', '-c', 'id -un; echo oops >&2; exit 3']);
    expect(r).toMatchObject({ code: 3, stdout: `${ssh.user}\n`, stderr: 'oops\n' });
    await expect(pool.execOk(target(lab.instances[0]!.address), ['false'])).rejects.toBeInstanceOf(SshCommandError);
  });

  it('passes hostile arguments through as data: nothing they name is executed', async () => {
    const marker = `/tmp/pgherd-ssh-injection-${process.pid}`;
    const args = [`/data; touch ${marker}`, `$(touch ${marker})`, `\`touch ${marker}\``, "it's", 'a\nb'];
    const r = await pool.execOk(target(lab.instances[1]!.address), ['printf', '%s\\0', ...args]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
    expect(existsSync(marker)).toBe(false);
  });

  it('records the host key on a read-only first contact, refuses to change anything on a host without one, and refuses a changed one, naming both fingerprints', async () => {
    const contacts: string[] = [];
    const first = new SshPool({
      privateKey: readFileSync(ssh.privateKeyPath),
      onFirstContact: (_t, fp) => {
        pinned.fp = fp;
        contacts.push(fp);
      },
    });
    // A command that changes something is refused before any connection is made.
    const marker = `/tmp/pgherd-unpinned-${process.pid}`;
    await expect(first.exec(target(lab.instances[2]!.address, null), ['touch', marker])).rejects.toBeInstanceOf(HostKeyNotPinnedError);
    expect(existsSync(marker)).toBe(false);
    expect(contacts).toEqual([]);
    await first.execOk(target(lab.instances[2]!.address, null), ['true'], { readOnly: true });
    expect(pinned.fp).toBe(ssh.hostKeyFingerprint);
    await first.close();
    const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const err = (await pool
      .exec(target(lab.instances[3]!.address, wrong), ['touch', '/tmp/should-not-exist'])
      .catch((e: unknown) => e)) as HostKeyMismatchError;
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect(err.message).toContain(lab.instances[3]!.address);
    expect(err.message).toContain(wrong);
    expect(err.message).toContain(ssh.hostKeyFingerprint);
  });

  it('reuses one connection for many commands, capped per host, all of 40 parallel commands succeeding', async () => {
    const t = target(lab.instances[4]!.address);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.execOk(t, ['echo', String(i)])));
    expect(results.map((r) => Number(r.stdout))).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('gets through sshd dropping parallel connects (MaxStartups) by retrying the handshake', async () => {
    const many = Array.from({ length: 30 }, () => new SshPool({ privateKey: readFileSync(ssh.privateKeyPath) }));
    const res = await Promise.all(many.map((p) => p.execOk(target(lab.instances[5]!.address), ['true']).then(() => 'ok')));
    expect(res.filter((x) => x === 'ok')).toHaveLength(30);
    await Promise.all(many.map((p) => p.close()));
  });

  it('kills a command that outlives its timeout', async () => {
    const t0 = Date.now();
    await expect(pool.exec(target(lab.instances[6]!.address), ['sleep', '30'], { timeoutMs: 500 })).rejects.toBeInstanceOf(SshTimeoutError);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
