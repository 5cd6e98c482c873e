import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mountOf } from '@/lib/agent/collect';
import { sameDevice } from '@/lib/adapters/aws/ebs';
import { suggestedGiB } from '@/lib/features/risks/view';
import { growCommand } from './grow-volume.action';

const GiB = 1024 ** 3;

describe('the mount under a data directory', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mount-of-'));
  const data = path.join(dir, 'vol a', 'pgdata');
  mkdirSync(data, { recursive: true });
  const table = path.join(dir, 'mountinfo');
  it('is the longest mount point holding its real path, with spaces unescaped; the last mount over a point wins', () => {
    writeFileSync(
      table,
      [
        '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
        `42 27 7:0 / ${dir.replace(/ /g, '\\040')}/vol\\040a rw,relatime shared:1 - ext4 /dev/loop1 rw`,
        `43 27 7:0 / ${dir}/vol\\040a rw,relatime - xfs /dev/nvme1n1 rw`,
        `44 27 7:0 / ${dir}/vol rw,relatime - xfs /dev/loop9 rw`,
      ].join('\n'),
    );
    expect(mountOf(data, table)).toEqual({ mountPoint: path.join(dir, 'vol a'), fsType: 'xfs', device: '/dev/nvme1n1' });
  });
  it('says nothing of a source that is not a device, and nothing at all for a path that is not there', () => {
    writeFileSync(table, `27 1 0:5 / / rw - overlay overlay rw\n`);
    expect(mountOf(data, table)).toEqual({ mountPoint: '/', fsType: 'overlay' });
    expect(mountOf(path.join(dir, 'nope'), table)).toEqual({});
  });
});

describe('Grow data volume', () => {
  it('grows xfs by its mount point and ext4 by its device, through sudo -n; nothing else', () => {
    expect(growCommand({ fsType: 'xfs', mountPoint: '/var/lib/pg', device: '/dev/nvme1n1' })).toEqual([
      'sudo',
      '-n',
      '/usr/sbin/xfs_growfs',
      '-d',
      '/var/lib/pg',
    ]);
    expect(growCommand({ fsType: 'ext4', mountPoint: '/var/lib/pg', device: '/dev/xvdf' })).toEqual([
      'sudo',
      '-n',
      '/usr/sbin/resize2fs',
      '/dev/xvdf',
    ]);
    expect(growCommand({ fsType: 'btrfs', mountPoint: '/x', device: '/dev/sdb' })).toBeNull();
  });
  it('takes /dev/sdf and /dev/xvdf for the same attachment, and no other', () => {
    expect(sameDevice('/dev/sdf', '/dev/xvdf')).toBe(true);
    expect(sameDevice('/dev/sdf', '/dev/sdf')).toBe(true);
    expect(sameDevice('/dev/sdf', '/dev/sdg')).toBe(false);
    expect(sameDevice('/dev/sdf', '/dev/xvdf1')).toBe(false);
  });
  it('is offered half again the filesystem, or sixty days of growth, at least a GiB more', () => {
    expect(suggestedGiB({ totalBytes: 100 * GiB, freeBytes: 5 * GiB, growthPerDay: null })).toBe(150);
    expect(suggestedGiB({ totalBytes: 100 * GiB, freeBytes: 5 * GiB, growthPerDay: 2 * GiB })).toBe(215);
    expect(suggestedGiB({ totalBytes: 0.94 * GiB, freeBytes: 0.01 * GiB })).toBe(2);
  });
});
