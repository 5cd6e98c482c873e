// Rotate certificate (the fix of a `certificate` risk on a member: docs/risks.md): a new server
// certificate from the environment's CA (PGHERD_CERT_AUTHORITIES), in place of the one ssl_cert_file
// names, taken by a reload, and proved by a TLS handshake showing it. The key and its request are made
// on the member's host (openssl, umask 077) and the key never leaves it; the worker signs the request's
// public key for the names the inventory gives the member (its host name and address), whatever the
// request asked. The old files are kept beside as *.pgherd-old; a certificate Postgres does not take (a
// reload that failed) puts them back.
import { z } from 'zod';
import { asks } from '@/lib/actions/drivers';
import { defineAction, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { refuse } from '@/lib/fleet/refusal';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { withInstance } from '@/lib/fleet/pg-access';
import { probeCertificate } from '@/lib/fleet/risks/cert-probe';
import { setting } from '@/lib/settings/settings';
import { execNotedOk, execNoted } from '@/lib/actions/steps/exec-noted';
import { signRequest, type Authority } from '@/lib/actions/steps/sign-certificate';
import { failed, readEach, readingOf, readOn } from './read';

export const rotateCertificateParams = z
  .object({
    days: z
      .union([
        z.number(),
        z
          .string()
          .regex(/^\d{1,4}$/, 'a whole number of days')
          .transform(Number),
      ])
      .pipe(z.number().int('a whole number of days').min(1).max(825, "at most 825 days (what clients accept of a server's)"))
      .optional(),
  })
  .strict();

interface TlsFiles {
  ssl: boolean;
  certFile: string;
  keyFile: string;
}

const FILES_SQL = `SELECT current_setting('ssl') = 'on' AS ssl,
  CASE WHEN current_setting('ssl_cert_file') LIKE '/%' THEN current_setting('ssl_cert_file')
       ELSE current_setting('data_directory') || '/' || current_setting('ssl_cert_file') END AS "certFile",
  CASE WHEN current_setting('ssl_key_file') LIKE '/%' THEN current_setting('ssl_key_file')
       ELSE current_setting('data_directory') || '/' || current_setting('ssl_key_file') END AS "keyFile"`;

/** The environment's CA, where pgherd is given one. */
const authorityOf = (environment: string): Authority | null => setting('PGHERD_CERT_AUTHORITIES')?.[environment] ?? null;

interface RotateState {
  csr: string;
  pem: string;
  notAfter: string;
}

/** On the host: the key (umask 077) and its request, once the directories of both files are writable. */
const REQUEST = [
  'umask 077',
  'for f in "$1" "$2"; do d=$(dirname -- "$f"); test -w "$d" || { echo "$(id -un) cannot write in $d (where $f is)" >&2; exit 3; }; done',
  'exec openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$2.pgherd-new" -subj "/CN=$3"',
].join('; ');
/**
 * On the host: the certificate (stdin) beside, the old files kept, then both renamed into place; a rename
 * that fails puts the old ones back (exit 4).
 */
const INSTALL = [
  'set -e',
  'umask 022',
  'cat > "$1.pgherd-new"',
  'cp -p -- "$1" "$1.pgherd-old"',
  'cp -p -- "$2" "$2.pgherd-old"',
  'if ! { mv -- "$2.pgherd-new" "$2" && mv -- "$1.pgherd-new" "$1"; }; then cp -p -- "$1.pgherd-old" "$1"; cp -p -- "$2.pgherd-old" "$2"; exit 4; fi',
].join('; ');
const RESTORE = 'mv -- "$1.pgherd-old" "$1"; mv -- "$2.pgherd-old" "$2"';
/** Once the new certificate is proved: the old key is not kept (a key rotated because it leaked must not stay). */
const FORGET = 'rm -f -- "$1.pgherd-old" "$2.pgherd-old"';

async function reload(t: InstanceRef) {
  await withInstance(t, { connectionTimeoutMillis: 5000, statement_timeout: 10_000, application_name: 'pgherd-maintenance' }, (c) =>
    c.query('SELECT pg_reload_conf()'),
  );
}

/** Until a handshake shows the certificate whose end is `notAfter` (10 s at most); what it shows last. */
async function shows(t: InstanceRef, notAfter: string): Promise<string | null> {
  let seen: string | null = null;
  for (let k = 0; k < 20; k++) {
    seen = (await probeCertificate(t, 5000).catch(() => null))?.notAfter ?? null;
    if (seen === notAfter) return seen;
    await new Promise((r) => setTimeout(r, 500));
  }
  return seen;
}

function steps(t: InstanceRef, f: TlsFiles, ca: Authority, days: number, names: string[]): ActionStep<RotateState>[] {
  return [
    {
      name: `make a key and a request on ${t.hostname}`,
      does: { kind: 'tls.request', instance: t.id, keyFile: f.keyFile },
      says: `on ${t.hostname}: a new EC P-256 key beside ${f.keyFile} (it never leaves the host) and a request for it`,
      timeoutMs: 60_000,
      run: async (x: RunContext<RotateState>) => {
        const r = await execNotedOk(x.deps, t, x, ['sh', '-c', REQUEST, 'sh', f.certFile, f.keyFile, names[0] ?? t.hostname], 30_000);
        x.state.csr = r.stdout;
      },
      always: {
        name: 'remove what was not put in place',
        does: { kind: 'tls.cleanup', instance: t.id },
        says: `remove ${f.keyFile}.pgherd-new and ${f.certFile}.pgherd-new if they are still there`,
        timeoutMs: 30_000,
        run: async (x) => {
          await execNoted(x.deps, t, x, ['rm', '-f', '--', `${f.keyFile}.pgherd-new`, `${f.certFile}.pgherd-new`], 20_000);
        },
      },
    },
    {
      name: "sign it with the environment's CA",
      does: { kind: 'tls.sign', instance: t.id, names, days, ca: ca.certFile },
      says: `sign its key for ${names.join(', ')} (those names only, whatever the request asks), valid ${String(days)} days, with ${ca.certFile}`,
      timeoutMs: 30_000,
      run: async (x: RunContext<RotateState>) => {
        const signed = await signRequest(ca, x.state.csr, names, days);
        x.state.pem = signed.pem;
        x.state.notAfter = signed.notAfter;
        x.note({ stdout: `signed for ${names.join(', ')}, until ${signed.notAfter}` });
      },
    },
    {
      name: 'put it in place and reload',
      does: { kind: 'tls.install', instance: t.id, certFile: f.certFile, keyFile: f.keyFile },
      says: `replace ${f.certFile} and ${f.keyFile}, reload, and check a TLS handshake shows the new certificate: else the old ones go back; once it does, the old ones are removed`,
      timeoutMs: 90_000,
      run: async (x: RunContext<RotateState>) => {
        await execNotedOk(x.deps, t, x, ['sh', '-c', INSTALL, 'sh', f.certFile, f.keyFile], 30_000, { stdin: x.state.pem });
        await reload(t);
        const seen = await shows(t, x.state.notAfter);
        if (seen !== x.state.notAfter) {
          await execNotedOk(x.deps, t, x, ['sh', '-c', RESTORE, 'sh', f.certFile, f.keyFile], 30_000);
          await reload(t);
          throw new Error(
            `${t.label} did not take the new certificate after a reload (it shows one until ${seen ?? 'nothing'}; its log says why): the old certificate and key are back`,
          );
        }
        await execNotedOk(x.deps, t, x, ['sh', '-c', FORGET, 'sh', f.certFile, f.keyFile], 30_000);
        const text = `${t.label}: a new certificate for ${names.join(', ')}, until ${x.state.notAfter.slice(0, 10)}`;
        x.note({ stdout: text });
        x.deps.outcome?.(text);
      },
    },
  ];
}

export const rotateCertificateAction = defineAction({
  name: 'rotate-certificate',
  // The member's files and a reload: whatever runs the herd (RDS is refused: its certificates are AWS's).
  control: asks(null),
  label: 'Rotate server certificate',
  permission: 'operator',
  dangerous: true,
  params: {
    schema: rotateCertificateParams,
    fields: [
      {
        name: 'days',
        label: 'Valid for (days)',
        kind: 'text',
        emptyLabel: "the CA's days (365)",
        help: 'How long the new certificate is valid.',
      },
    ],
  },
  state: (): RotateState => ({ csr: '', pem: '', notAfter: '' }),
  prepare: (targets) =>
    readEach(
      targets.filter((t) => !t.rds),
      (t) => readOn(t, async (c) => (await c.query<TlsFiles>(FILES_SQL)).rows[0] ?? { ssl: false, certFile: '', keyFile: '' }),
    ),
  plan: (t, { params, prepared }) => {
    if (t.rds)
      return refuse('not-applicable', `${t.label} is an RDS DB instance: its certificates are AWS's (its CA certificate identifier)`);
    const ca = authorityOf(t.serverEnvironment);
    if (!ca)
      return refuse('not-applicable', `pgherd is given no certificate authority for ${t.serverEnvironment} (PGHERD_CERT_AUTHORITIES)`);
    const f = readingOf(prepared, t.id);
    if (!f) return refuse('unreachable', `${t.label} was not read`);
    if (failed(f)) return refuse('unreachable', `${t.label} does not answer (${f.error}): its certificate files cannot be read`);
    if (!f.ssl) return refuse('not-applicable', `${t.label} runs with ssl off: there is no certificate to rotate`);
    if (f.certFile === f.keyFile)
      return refuse(
        'not-applicable',
        `${t.label}'s ssl_cert_file and ssl_key_file are one file (${f.certFile}): pgherd rotates a certificate and a key in files of their own`,
      );
    const names = [...new Set([t.hostname, t.address].filter(Boolean))];
    const days = params.days ?? ca.days ?? 365;
    return {
      facts: [
        { label: 'Certificate', value: `${f.certFile} (key ${f.keyFile})` },
        { label: 'New', value: `for ${names.join(', ')}, ${String(days)} days, signed by ${ca.certFile}` },
        { label: 'Key', value: 'made on the host, never sent anywhere; the old key removed once the new certificate is proved' },
      ],
      steps: steps(t, f, ca, days, names),
      warnings: ['clients that pin the old certificate itself (not the CA) will refuse the new one'],
    };
  },
});
