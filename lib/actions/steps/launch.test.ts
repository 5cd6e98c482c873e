import { describe, expect, it } from 'vitest';
import { consoleFingerprints } from '@/lib/adapters/aws/ec2-launch';
import { keyToPin } from './launch';

// As cloud-init 22 prints it on an EC2 console (Debian 12's image), between the kernel's lines.
const CONSOLE = `[    3.120394] cloud-init[512]: Cloud-init v. 22.4.2 running 'modules:final'
ec2: 
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 SHA256:5B3bX3Ivp1RkR0yB7Kx0bXfQ2k0mY0m2cM3Wz1c7nV8 root@ip-10-0-1-23 (ECDSA)
ec2: 256 SHA256:Qm1V8nVv4o1ZJ7o0Jd3h7Xh7c7Qh6nS8H3o3G0z8y1A root@ip-10-0-1-23 (ED25519)
ec2: 3072 SHA256:Zr2t6b9w0e8sVb2Wq8h0L1k3Jj8mWq1q6v0c7b9n2mE root@ip-10-0-1-23 (RSA)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB root@ip-10-0-1-23
-----END SSH HOST KEY KEYS-----
`;

describe('consoleFingerprints', () => {
  it('reads cloud-init\u2019s block, by key type; the key pinned is the one ssh2 asks for first (ed25519)', () => {
    const f = consoleFingerprints(CONSOLE);
    expect(f).toEqual({
      ecdsa: 'SHA256:5B3bX3Ivp1RkR0yB7Kx0bXfQ2k0mY0m2cM3Wz1c7nV8',
      ed25519: 'SHA256:Qm1V8nVv4o1ZJ7o0Jd3h7Xh7c7Qh6nS8H3o3G0z8y1A',
      rsa: 'SHA256:Zr2t6b9w0e8sVb2Wq8h0L1k3Jj8mWq1q6v0c7b9n2mE',
    });
    expect(keyToPin(f)).toBe('SHA256:Qm1V8nVv4o1ZJ7o0Jd3h7Xh7c7Qh6nS8H3o3G0z8y1A');
    expect(keyToPin({ rsa: 'SHA256:x', ecdsa: 'SHA256:y' })).toBe('SHA256:y');
  });

  it('gives nothing for a console still booting, a block cut off, or two blocks that disagree', () => {
    expect(consoleFingerprints('')).toEqual({});
    expect(consoleFingerprints('[    0.000000] Linux version 6.1.0\n')).toEqual({});
    // Cut off before its end line: not read (the rest may say other keys).
    expect(consoleFingerprints(CONSOLE.split('ec2: -----END')[0]!)).toEqual({});
    // A console written to again with other keys (a host re-imaged, or a line forged into the console by
    // a process on the host): which is the host's cannot be told.
    const other = CONSOLE.replace('Qm1V8nVv4o1ZJ7o0Jd3h7Xh7c7Qh6nS8H3o3G0z8y1A', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(consoleFingerprints(`${CONSOLE}${other}`)).toEqual({});
    expect(consoleFingerprints(`${CONSOLE}${CONSOLE}`)).toHaveProperty('ed25519');
  });

  it('ignores lines in the block that are not fingerprints (a forged short hash, a comment)', () => {
    const text = CONSOLE.replace('ec2: 3072 SHA256:Zr2t', 'ec2: 3072 SHA256:short (RSA)\nec2: 3072 SHA256:Zr2t');
    expect(consoleFingerprints(text).rsa).toBe('SHA256:Zr2t6b9w0e8sVb2Wq8h0L1k3Jj8mWq1q6v0c7b9n2mE');
  });
});
