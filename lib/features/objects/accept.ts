// Accepting a herd's object drift: what its primary has becomes what the herd declares, written as lines
// of the herd's own (its overrides: that herd alone; a set spans herds and is a global admin's to edit).
// A role, database or extension there undeclared, or one that differs from its declaration, is written
// as it runs; a declared one that is missing is not drift to accept (Apply creates it).
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { demand, type Actor } from '@/lib/engine/access';
import { writeAudit } from '@/lib/engine/write-audit';
import { badName, databaseLine, extensionLine, parseDeclaration, roleLine, ROLE_ATTRIBUTES } from '@/lib/fleet/objects/declaration';
import { changesOf, hbaContexts, NO_CONTEXT, judgeObjects, loadDeclarations, loadReading } from '@/lib/fleet/objects/objects-pass';
import type { ObjectsReading } from '@/lib/fleet/objects/read-objects';

export class AcceptObjectsError extends Error {}

/** Every name a line would hold must be one pgherd writes: a name planted on the server could hold a line of its own. */
function checked(names: (string | null)[], what: string): void {
  for (const n of names) {
    if (n === null || n === 'public') continue;
    const bad = badName(n, 'member-of');
    if (bad) throw new AcceptObjectsError(`${what} cannot be accepted: ${bad}`);
  }
}

/** The declaration line of `name` (`role app`, `database app`, `extension app.pg_trgm`) as the primary has it. */
function lineOf(name: string, reading: ObjectsReading, declaredConnect: (db: string) => string[] | null): { key: string; line: string } {
  const [kind = '', rest = ''] = name.split(' ');
  if (kind === 'password')
    throw new AcceptObjectsError(
      `${name}: a password is never accepted into a declaration (pgherd holds none): Rotate credentials sets one it knows and points the secret at it`,
    );
  if (kind === 'role') {
    const r = reading.roles.find((x) => x.name === rest);
    if (!r) throw new AcceptObjectsError(`${name}: the primary has no such role`);
    if (r.superuser)
      throw new AcceptObjectsError(`${name} is a superuser: a superuser is declared only in an object set, which a global admin writes`);
    checked([r.name, ...r.memberOf], name);
    return {
      key: name,
      line: roleLine({
        name: r.name,
        attributes: ROLE_ATTRIBUTES.filter((a) => r[a]),
        inherit: r.inherit,
        connlimit: r.connlimit,
        validUntil: r.validUntil ? new Date(r.validUntil).toISOString().replace('.000Z', 'Z') : null,
        memberOf: r.memberOf,
      }),
    };
  }
  if (kind === 'database') {
    const d = reading.databases.find((x) => x.name === rest);
    if (!d) throw new AcceptObjectsError(`${name}: the primary has no such database`);
    checked([d.name, d.owner, ...(d.connect ?? [])], name);
    return {
      key: name,
      line: databaseLine({
        name: d.name,
        owner: d.owner,
        encoding: d.encoding,
        locale: d.locale,
        connect: declaredConnect(d.name) === null ? null : (d.connect ?? ['public']),
      }),
    };
  }
  if (kind === 'extension') {
    const [database = '', ext = ''] = rest.split('.');
    const version = reading.extensions[database]?.[ext];
    if (!version) throw new AcceptObjectsError(`${name}: the primary has no such extension there`);
    checked([database], name);
    return { key: name, line: extensionLine({ database, name: ext, version }) };
  }
  throw new AcceptObjectsError(
    `${name} is not a role, database or extension to accept (memberships are accepted with their role; pg_hba is put right by Apply)`,
  );
}

const keyOfLine = (line: string): string | null => {
  const p = parseDeclaration(line, { allowSuperuser: true });
  const o = p.ok ? p.objects[0] : undefined;
  if (!o) return null;
  return o.kind === 'role' || o.kind === 'database'
    ? `${o.kind} ${o.name}`
    : o.kind === 'extension'
      ? `extension ${o.database}.${o.name}`
      : null;
};

/** Writes what the herd's primary has for `names` into the herd's own lines; the lines written. */
export async function acceptObjects(db: Db, actor: Actor, herdId: number, names: string[]): Promise<string[]> {
  const wanted = [
    ...new Set(
      names
        .map((n) => n.replace(/ (owner|connect|encoding|locale)$/, ''))
        .map((n) => (/ in /.test(n) ? `role ${n.split(' in ')[0] ?? ''}` : n)),
    ),
  ];
  if (!wanted.length) throw new AcceptObjectsError('name the objects to accept');
  const herd = (
    await db.execute<{ name: string; environment_id: number; primary_id: number | null }>(sql`
    SELECT h.name, h.environment_id, (SELECT i.id FROM instances i WHERE i.herd_id = h.id AND i.role = 'primary' ORDER BY i.id LIMIT 1) AS primary_id
    FROM herds h WHERE h.id = ${herdId}`)
  ).rows[0];
  if (!herd) throw new AcceptObjectsError(`herd #${herdId} does not exist`);
  await demand(db, actor.access, 'admin', `Changing the object overrides of herd ${herd.name}`, [herd.environment_id]);
  const decl = (await loadDeclarations(db, [herdId])).get(herdId);
  const got = herd.primary_id === null ? null : await loadReading(db, herd.primary_id);
  if (!decl || !got) throw new AcceptObjectsError(`${herd.name}'s primary has not had its objects read yet`);
  const ctx = (await hbaContexts(db, [herdId])).get(herdId) ?? NO_CONTEXT;
  const drift = new Set(
    changesOf(decl, ctx, got.reading)
      .changes.filter((c) => c.what === 'undeclared' || c.what === 'differs' || c.what === 'cannot')
      .map((c) => c.name.replace(/ (owner|connect|encoding|locale)$/, '').replace(/^(\S+) in \S+$/, 'role $1')),
  );
  const lines = wanted.map((n) => {
    if (!drift.has(n))
      throw new AcceptObjectsError(
        `${n} is not drift on ${herd.name} (a declared object that is missing is created by Apply fleet objects)`,
      );
    return lineOf(n, got.reading, (d) => decl.declaration.databases.get(d)?.connect ?? null);
  });
  return db
    .transaction(async (tx) => {
      const [h] = (await tx.execute<{ o: string }>(sql`SELECT object_overrides AS o FROM herds WHERE id = ${herdId} FOR UPDATE`)).rows;
      const before = h?.o ?? '';
      const replaced = new Set(lines.map((l) => l.key));
      const kept = before.split('\n').filter((l) => {
        const k = keyOfLine(l);
        return k === null || !replaced.has(k);
      });
      const text = [...kept, ...lines.map((l) => l.line)]
        .join('\n')
        .replace(/\n{3,}/g, '\n\n')
        .trim();
      const p = parseDeclaration(text, { allowSuperuser: false });
      if (!p.ok) throw new AcceptObjectsError(`the herd's lines would not parse: ${p.errors.join('; ')}`);
      // Exactly what was accepted, and no more: each accepted line is one object.
      for (const l of lines) {
        const one = parseDeclaration(l.line, { allowSuperuser: false });
        if (!one.ok || one.objects.length !== 1) throw new AcceptObjectsError(`${l.key} cannot be written as one line of the herd's own`);
      }
      await tx.execute(sql`UPDATE herds SET object_overrides = ${text}, updated_at = now() WHERE id = ${herdId}`);
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'objects.accept',
        objectType: 'herds',
        objectId: String(herdId),
        objectLabel: herd.name,
        environmentId: herd.environment_id,
        changes: { objectOverrides: [before, text] },
      });
      return lines.map((l) => l.line);
    })
    .then(async (out) => {
      await judgeObjects(db, { herdIds: [herdId] });
      return out;
    });
}
