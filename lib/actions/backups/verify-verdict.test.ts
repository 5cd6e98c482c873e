// pgbackrest verify exits 0 whatever it finds (2.45): the drill reads its report. Reports as pgBackRest
// printed them here (a repository that verifies; one read with the wrong passphrase).
import { describe, expect, it } from 'vitest';
import { verifyVerdict } from './restore-drill.action';

const ok = `2026-11-26 00:26:12.001 P00   INFO: verify command begin 2.45: --config=/tmp/pv/ok.conf --stanza=s
2026-11-26 00:26:12.226 P00   INFO: stanza: s
                                    status: ok
                                      archiveId: 15-1, total WAL checked: 2, total valid WAL: 2
                                        missing: 0, checksum invalid: 0, size invalid: 0, other: 0
                                      backup: 20261126-002603F, status: valid, total files checked: 964, total valid files: 964
                                        missing: 0, checksum invalid: 0, size invalid: 0, other: 0
2026-11-26 00:26:12.226 P00   INFO: verify command end: completed successfully (269ms)`;

const wrongKey = `2026-11-26 00:26:09.002 P00   INFO: verify command begin 2.45: --config=/tmp/pv/bad.conf
2026-11-26 00:26:09.002 P00 DETAIL: unable to flush
                                    HINT: is or was the repo encrypted?
2026-11-26 00:26:09.003 P00   INFO: stanza: s
                                    status: error
                                      No usable backup.info file
                                      No usable archive.info file
2026-11-26 00:26:09.003 P00   INFO: verify command end: completed successfully (3ms)`;

const missing = `2026-11-26 00:30:00.000 P00   INFO: stanza: s
                                    status: error
                                      archiveId: 15-1, total WAL checked: 2, total valid WAL: 2
                                        missing: 0, checksum invalid: 0, size invalid: 0, other: 0
                                      backup: 20261126-002603F, status: invalid, total files checked: 964, total valid files: 963
                                        missing: 0, checksum invalid: 1, size invalid: 1, other: 0
2026-11-26 00:30:00.100 P00   INFO: verify command end: completed successfully (269ms)`;

describe('verifyVerdict', () => {
  it('says ok only when the stanza\u2019s status is ok', () => {
    expect(verifyVerdict(ok, 's')).toBe('ok');
  });
  it('names what is wrong when the repository cannot be read (a wrong passphrase)', () => {
    expect(verifyVerdict(wrongKey, 's')).toBe('status: error | No usable backup.info file | No usable archive.info file');
  });
  it('names the invalid backup and its counts, not the clean lines', () => {
    expect(verifyVerdict(missing, 's')).toBe(
      'status: error | backup: 20261126-002603F, status: invalid, total files checked: 964, total valid files: 963 | missing: 0, checksum invalid: 1, size invalid: 1, other: 0',
    );
  });
  it('a report of another stanza, or none, is not ok', () => {
    expect(verifyVerdict(ok, 'other')).toMatch(/^no report for stanza other/);
    expect(verifyVerdict('', 's')).toMatch(/^no report for stanza s/);
  });
});
