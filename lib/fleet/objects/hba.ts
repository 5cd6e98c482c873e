// Access rules: a herd's declared pg_hba lines as the file pgherd writes (placeholders filled in with the
// herd's own addresses), compared with what the server parsed (pg_hba_file_rules), and checked against
// the connections a herd cannot lose: pgherd's own, each replica's replication, its poolers', and the
// local socket its control plane uses. A line that would shut one of them out is named; nothing is
// written. pg_hba takes the first line that matches, so that is the line each check finds.
import type { HbaDecl } from './declaration';

export interface HbaLine {
  type: HbaDecl['type'];
  databases: string[];
  users: string[];
  /** As pg_hba_file_rules says it: an address and a netmask, or a keyword (all, samehost, samenet), or null (local). */
  address: string | null;
  netmask: string | null;
  method: string;
  options: string[];
}

/** A rendered line: what it is, its text in the file, and the declaration line it comes from. */
export interface RenderedLine extends HbaLine {
  text: string;
  /** `hba host all all {members} trust (set base v2 (environment))` */
  source: string;
}

export interface HbaContext {
  /** Every member's address, as pgherd reaches it. */
  members: string[];
  /** pgherd's address as the primary saw it (null: over a socket, or not known). */
  pgherd: string | null;
  poolers: string[];
}

const isV4 = (a: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a);
const quoteHba = (n: string) => (/^[A-Za-z0-9_+]+$/.test(n) ? n : `"${n}"`);

function v4Mask(bits: number): string {
  const m = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

function v6Groups(a: string): number[] | null {
  const [head = '', tail, extra] = a.split('::');
  if (extra !== undefined) return null;
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  if (tail === undefined && h.length !== 8) return null;
  const fill = 8 - h.length - t.length;
  if (fill < 0) return null;
  const groups = [...h, ...Array<string>(tail === undefined ? 0 : fill).fill('0'), ...t].map((g) => parseInt(g || '0', 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}

function v6Text(groups: number[]): string {
  // As Postgres prints an inet: the longest run of zero groups as ::.
  let best = [-1, 0];
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > (best[1] ?? 0) && j - i > 1) best = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  const [at = -1, len = 0] = best;
  if (at < 0) return hex.join(':');
  return `${hex.slice(0, at).join(':')}::${hex.slice(at + len).join(':')}`;
}

function v6Mask(bits: number): string {
  const g = Array.from({ length: 8 }, (_, i) => {
    const b = Math.max(0, Math.min(16, bits - i * 16));
    return b === 0 ? 0 : (0xffff << (16 - b)) & 0xffff;
  });
  return v6Text(g);
}

/** A CIDR as pg_hba_file_rules says it: the address as written (not masked) and its netmask. */
export function splitCidr(cidr: string): { address: string; netmask: string } {
  const [ip = '', bits = '0'] = cidr.split('/');
  if (isV4(ip)) return { address: ip, netmask: v4Mask(Number(bits)) };
  const g = v6Groups(ip);
  return { address: g ? v6Text(g) : ip, netmask: v6Mask(Number(bits)) };
}

/** The herd's lines, placeholders filled in; or the lines that cannot be (a placeholder with no address). */
export function renderHba(decls: (HbaDecl & { from: string })[], ctx: HbaContext): { lines: RenderedLine[]; errors: string[] } {
  const lines: RenderedLine[] = [];
  const errors: string[] = [];
  for (const d of decls) {
    const source = `${d.text} (${d.from})`;
    const cidr = (a: string) => `${a}/${isV4(a) ? 32 : 128}`;
    let addresses: (string | null)[];
    if (d.address === '{members}') addresses = ctx.members.map(cidr);
    else if (d.address === '{poolers}') addresses = ctx.poolers.map(cidr);
    else if (d.address === '{pgherd}') {
      if (!ctx.pgherd) {
        errors.push(`${source}: pgherd's own address is not known (it reached the primary over a socket, or has not read it yet)`);
        continue;
      }
      addresses = [cidr(ctx.pgherd)];
    } else addresses = [d.address];
    for (const a of [...new Set(addresses)]) {
      const where = a === null ? { address: null, netmask: null } : a.includes('/') ? splitCidr(a) : { address: a, netmask: null };
      const text = [
        d.type,
        d.databases.map(quoteHba).join(','),
        d.users.map((u) => (u.startsWith('+') ? `+${quoteHba(u.slice(1))}` : quoteHba(u))).join(','),
        ...(a === null ? [] : [a]),
        d.method,
        ...d.options,
      ].join(' ');
      lines.push({ type: d.type, databases: d.databases, users: d.users, ...where, method: d.method, options: d.options, text, source });
    }
  }
  return { lines, errors };
}

export const HBA_HEADER =
  "# Written by pgherd from the herd's declared access rules (its object set and overrides).\n# Edits here are drift: pgherd shows them, and Apply fleet objects writes this file again.\n";

export const hbaFileText = (lines: RenderedLine[]) => `${HBA_HEADER}${lines.map((l) => l.text).join('\n')}\n`;

/** A rule as compared: the same for a rendered line and a row of pg_hba_file_rules. */
export const ruleKey = (r: HbaLine) =>
  JSON.stringify([r.type, r.databases, r.users, r.address, r.netmask, r.method, [...r.options].sort()]);

/** A connection the herd cannot lose. `user` or `ssl` null: not known (every line that could match is looked at). */
export interface Essential {
  /** In words: `pgherd (pgherd@127.0.0.1, database postgres)`. */
  who: string;
  local: boolean;
  address: string | null;
  ssl: boolean | null;
  user: string | null;
  database: string;
  /** The roles `user` is a member of, directly or not (for +group), when known. */
  memberOf?: string[];
  /** The methods it can log in by (absent: any but reject). pgherd's own: SCRAM, a certificate, trust. */
  methods?: readonly string[];
}

type Match = 'yes' | 'no' | 'maybe';

function v4Number(a: string): number {
  return a.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

function addressMatch(l: HbaLine, addr: string | null): Match {
  if (l.address === null) return 'no';
  if (l.address === 'all') return 'yes';
  if (l.address === 'samehost' || l.address === 'samenet') return 'maybe';
  if (addr === null) return 'maybe';
  if (isV4(addr) && isV4(l.address) && l.netmask && isV4(l.netmask)) {
    const m = v4Number(l.netmask);
    return (v4Number(addr) & m) >>> 0 === (v4Number(l.address) & m) >>> 0 ? 'yes' : 'no';
  }
  if (!isV4(addr) && !isV4(l.address) && l.netmask) {
    const a = v6Groups(addr);
    const b = v6Groups(l.address);
    const m = v6Groups(l.netmask);
    if (!a || !b || !m) return 'maybe';
    return a.every((g, i) => (g & (m[i] ?? 0)) === ((b[i] ?? 0) & (m[i] ?? 0))) ? 'yes' : 'no';
  }
  return 'no';
}

function matches(l: HbaLine, e: Essential): Match {
  const all: Match[] = [];
  if (e.local !== (l.type === 'local')) return 'no';
  if (!e.local) {
    if (l.type === 'hostssl') all.push(e.ssl === null ? 'maybe' : e.ssl ? 'yes' : 'no');
    if (l.type === 'hostnossl') all.push(e.ssl === null ? 'maybe' : e.ssl ? 'no' : 'yes');
    all.push(addressMatch(l, e.address));
  }
  const replication = e.database === 'replication';
  all.push(
    l.databases.some((d) => (replication ? d === 'replication' : d === 'all' || d === e.database))
      ? 'yes'
      : !replication && l.databases.some((d) => d === 'sameuser' || d === 'samerole')
        ? 'maybe'
        : 'no',
  );
  all.push(
    l.users.some((u) => u === 'all' || (e.user !== null && u === e.user) || (u.startsWith('+') && e.memberOf?.includes(u.slice(1))))
      ? 'yes'
      : e.user === null || (l.users.some((u) => u.startsWith('+')) && !e.memberOf)
        ? 'maybe'
        : 'no',
  );
  if (all.includes('no')) return 'no';
  return all.includes('maybe') ? 'maybe' : 'yes';
}

/**
 * For each connection the herd cannot lose, the first line that would shut it out (a reject it meets
 * first, or no line that lets it in), in words; empty: every one still gets in. What is not known of a
 * connection (a replica's user while it does not stream, a pooler's users) is read in its favour: a line
 * that could let it in does, a reject counts only where it surely matches.
 */
export function shutOut(lines: RenderedLine[], essentials: Essential[]): string[] {
  const out: string[] = [];
  for (const e of essentials) {
    let verdict: string | null = `no line lets in ${e.who}`;
    for (const l of lines) {
      const m = matches(l, e);
      // samehost and samenet depend on the server's own addresses, which pgherd does not read: a reject
      // there may match, an allow may not.
      const byHost = l.address === 'samehost' || l.address === 'samenet';
      if (m === 'no') continue;
      if (l.method === 'reject') {
        if (m === 'maybe' && !byHost) continue;
        verdict = `${l.source} would shut out ${e.who}`;
        break;
      }
      if (byHost) continue;
      verdict =
        e.methods && !e.methods.includes(l.method)
          ? `${l.source} would shut out ${e.who}: it logs in by ${e.methods.join(', ')}, not ${l.method}`
          : null;
      break;
    }
    if (verdict) out.push(verdict);
  }
  return out;
}
