import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ObjectForm } from '@/components/admin/object-form';
import { loadObject, relationOptions } from '@/lib/admin/change-form-data';
import { objectRoute } from '@/lib/admin/object-route';
import { capitalize } from '@/lib/admin/text';
import { permissionFor } from '@/lib/admin/define-admin';
import { can, environmentsWith } from '@/lib/auth/access';
import { agentTokenAction, saveAction } from '../../actions';
import { AgentTokenForm } from '@/components/admin/agent-token-form';
import { formatValue } from '@/lib/admin/format';
import { servers } from '@/db/schema';
import { eq } from 'drizzle-orm';
import { pgherdPublicKey } from '@/lib/ssh/public-key';

function AuthorizedKey() {
  const key = pgherdPublicKey();
  return (
    <div className="module authorized-key">
      <h2>pgherd&rsquo;s SSH key</h2>
      {key ? <><p>Add this line to <code>~/.ssh/authorized_keys</code> of the SSH user on this server:</p><pre className="output" data-testid="public-key">{key}</pre></> : <p className="muted">PGHERD_SSH_KEY is not set on the web process, so its public key cannot be shown.</p>}
    </div>
  );
}

export default async function ChangePage({ params, searchParams }: { params: Promise<{ model: string; id: string }>; searchParams: Promise<{ saved?: string }> }) {
  const { def, id, access, environmentId } = await objectRoute(params, 'view');
  const db = getDb();
  const obj = await loadObject(db, def, id);
  if (!obj) notFound();
  const saved = (await searchParams).saved === '1';
  const changeRole = permissionFor(def, 'change');
  const mayChange = can(access, changeRole, environmentId);
  return (
    <>
      <Breadcrumbs items={[{ label: capitalize(def.labelPlural), href: `/admin/${def.name}` }, { label: obj.label }]} />
      <div className="content-head">
        <h1>Change {def.label}</h1>
        <Link className="button historylink" href={`/admin/${def.name}/${id}/history`}>History</Link>
      </div>
      <h2 className="object-label">{obj.label}</h2>
      {saved && <p className="messagelist success" role="status">The {def.label} “{obj.label}” was changed successfully. You may edit it again below.</p>}
      {def.name === 'servers' && <AuthorizedKey />}
      {def.name === 'servers' && can(access, 'admin', environmentId) && await (async () => {
        const [s] = await db.select({ hash: servers.agentTokenHash, lastSeen: servers.lastSeenAt }).from(servers).where(eq(servers.id, id));
        return <AgentTokenForm serverId={id} hasToken={!!s?.hash} lastSeen={s?.lastSeen ? formatValue('datetime', s.lastSeen) : 'never'} action={agentTokenAction} />;
      })()}
      <ObjectForm
        model={def.name} id={id} initial={obj.values} options={await relationOptions(db, def, environmentsWith(access, mayChange ? changeRole : 'viewer'))} save={saveAction}
        readOnlyReason={mayChange ? undefined : `You may look at this ${def.label}; changing it needs the ${changeRole} role here.`}
        canDelete={can(access, permissionFor(def, 'delete'), environmentId)}
      />
    </>
  );
}
