// The lab's certificate authority, made with openssl when the lab starts: slapd's certificate and
// every fleet instance's are signed by it, and pgherd verifies them against it (nothing trusts it but
// the lab). EC P-256 keys: a certificate per instance costs a few milliseconds.
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mkdirOwned, run, type Identity } from './proc';

export interface LabCa {
  /** The CA's certificate: public, what clients verify against. */
  caFile: string;
  keyFile: string;
  dir: string;
}

export interface LabCertificate {
  certFile: string;
  /** Readable by the lab user only (Postgres refuses a key others can read). */
  keyFile: string;
}

const ossl = (id: Identity, args: string[]) => run(id, ['/usr/bin/openssl', ...args]);
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makeCa(id: Identity, dir: string, name = 'pgherd lab CA'): Promise<LabCa> {
  mkdirOwned(id, dir, 0o755);
  const ca: LabCa = { caFile: path.join(dir, 'ca.pem'), keyFile: path.join(dir, 'ca.key'), dir };
  await ossl(id, ['req', '-x509', ...EC, '-days', '400', '-subj', `/CN=${name}`, '-keyout', ca.keyFile, '-out', ca.caFile]);
  chmodSync(ca.keyFile, 0o600);
  chmodSync(ca.caFile, 0o644);
  return ca;
}

/** A server certificate for `ips` and `names`, signed by the CA, written as <dir>/<base>.pem and .key (replacing them). */
export async function issueCertificate(
  id: Identity,
  ca: LabCa,
  dir: string,
  base: string,
  sans: { ips: string[]; names: string[] },
  /** How long it is valid: a year, so that no lab certificate is a risk (lib/features/risks) unless a test makes it one. */
  days = 365,
): Promise<LabCertificate> {
  mkdirOwned(id, dir, 0o755);
  const f = (ext: string) => path.join(dir, `${base}.${ext}`);
  await ossl(id, ['req', ...EC, '-subj', `/CN=${sans.names[0] ?? sans.ips[0] ?? 'localhost'}`, '-keyout', f('key'), '-out', f('csr')]);
  const alt = [...sans.ips.map((a) => `IP:${a}`), ...sans.names.map((n) => `DNS:${n}`)].join(',');
  writeFileSync(f('ext'), `subjectAltName=${alt}\nextendedKeyUsage=serverAuth\n`);
  chownSync(f('ext'), id.uid, id.gid);
  await ossl(id, [
    'x509',
    '-req',
    '-in',
    f('csr'),
    '-CA',
    ca.caFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-CAserial',
    path.join(dir, `${base}.srl`),
    '-days',
    String(days),
    '-extfile',
    f('ext'),
    '-out',
    f('pem'),
  ]);
  chmodSync(f('key'), 0o600);
  chmodSync(f('pem'), 0o644);
  return { certFile: f('pem'), keyFile: f('key') };
}
