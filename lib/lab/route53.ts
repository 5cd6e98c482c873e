// The lab's Route 53: one environment's names in a hosted zone of the lab's moto instead of BIND. The
// zone is that environment's part of the lab zone (<environment>.db.<lab zone>); its herds' write
// names are created there pointing at their primaries, and the lab's DNS configuration is rewritten so
// that pgherd updates them through Route 53 (and BIND no longer owns them).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { ChangeResourceRecordSetsCommand, CreateHostedZoneCommand, Route53Client } from '@aws-sdk/client-route-53';

export interface LabRoute53 {
  environment: string;
  zone: string;
  hostedZoneId: string;
}

export async function startRoute53(
  motoUrl: string,
  environment: string,
  labZone: string,
  writeNames: { name: string; target: string }[],
  dnsConfigFile: string,
): Promise<LabRoute53> {
  const zone = `${environment}.db.${labZone}`;
  const r53 = new Route53Client({ endpoint: motoUrl, region: 'us-east-1', credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' } });
  try {
    const created = await r53.send(new CreateHostedZoneCommand({ Name: `${zone}.`, CallerReference: randomBytes(8).toString('hex') }));
    const hostedZoneId = (created.HostedZone?.Id ?? '').replace(/^\/hostedzone\//, '');
    if (!hostedZoneId) throw new Error(`moto created no hosted zone for ${zone}`);
    if (writeNames.length)
      await r53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: hostedZoneId,
          ChangeBatch: {
            Changes: writeNames.map((w) => ({
              Action: 'UPSERT',
              ResourceRecordSet: { Name: `${w.name}.`, Type: 'CNAME', TTL: 30, ResourceRecords: [{ Value: `${w.target}.` }] },
            })),
          },
        }),
      );
    // pgherd's DNS configuration: the environment's suffix leaves BIND's zone for the hosted zone.
    const cfg = JSON.parse(readFileSync(dnsConfigFile, 'utf8')) as { zones: { names?: { suffix: string }[] }[] };
    for (const z of cfg.zones) if (z.names) z.names = z.names.filter((n) => n.suffix !== zone);
    cfg.zones.push({ zone, environments: [environment], provider: 'route53', hostedZoneId } as (typeof cfg.zones)[number]);
    writeFileSync(dnsConfigFile, JSON.stringify(cfg, null, 2), { mode: 0o600 });
    return { environment, zone, hostedZoneId };
  } finally {
    r53.destroy();
  }
}
