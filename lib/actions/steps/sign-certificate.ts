// A member's new server certificate, signed on the worker by its environment's CA
// (PGHERD_CERT_AUTHORITIES) from a request made on the member's host: the private key never leaves the
// host. Of the request only its public key is used: the subject and the names are pgherd's (the member's
// host name and address from the inventory), never what the host asked for, so a host cannot have itself
// a certificate for another's name. openssl (every Postgres host and worker has it) does the signing.
import { spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Authority {
  certFile: string;
  keyFile: string;
  days?: number | undefined;
}

/** Runs openssl with `stdin`; its stdout, or an error with its stderr. */
function openssl(args: string[], stdin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`openssl ${args[0] ?? ''}: ${err.trim().slice(0, 300)}`))));
    p.stdin.end(stdin);
  });
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

/** The certificate for `names` (host names and addresses: the first is its common name), for the request's key. */
export async function signRequest(
  ca: Authority,
  csrPem: string,
  names: string[],
  days: number,
): Promise<{ pem: string; notAfter: string }> {
  if (!/^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n?$/.test(csrPem))
    throw new Error('the host sent no certificate request (PEM) back');
  const bad = names.filter((n) => !net.isIP(n) && !NAME.test(n));
  if (!names.length || bad.length) throw new Error(`not a host name or address: ${bad.join(', ') || '(none)'}`);
  const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const dir = await mkdtemp(path.join(tmpdir(), 'pgherd-sign-'));
  try {
    const ext = path.join(dir, 'ext');
    await writeFile(
      ext,
      `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
      { mode: 0o600 },
    );
    // (x509 -req checks the request's self-signature first: one altered on the way is refused.)
    const pem = await openssl(
      [
        'x509',
        '-req',
        '-CA',
        ca.certFile,
        '-CAkey',
        ca.keyFile,
        '-days',
        String(days),
        '-subj',
        `/CN=${names[0] ?? ''}`,
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-extfile',
        ext,
      ],
      csrPem,
    );
    return { pem, notAfter: new Date(new X509Certificate(pem).validTo).toISOString() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
