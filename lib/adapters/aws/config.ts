// Where pgherd's AWS clients point and how they retry. Credentials come from the SDK's default
// provider chain (environment, shared files, an instance role): never from pgherd's database, never
// logged. An endpoint (PGHERD_AWS_ENDPOINT, else the SDK's own AWS_ENDPOINT_URL) points every client at
// an emulator (the lab's moto) or a private endpoint.
import { EC2Client } from '@aws-sdk/client-ec2';
import { PricingClient } from '@aws-sdk/client-pricing';
import { RDSClient } from '@aws-sdk/client-rds';
import { Route53Client } from '@aws-sdk/client-route-53';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { setting, SETTINGS } from '@/lib/settings/settings';
import { shortenErrors } from './errors';

export interface AwsSettings {
  region: string;
  endpoint: string | null;
  /** How long one attempt of a call may take (PGHERD_AWS_TIMEOUT_MS, default 30 s): AWS that does not answer is an error, not a wait. */
  timeoutMs?: number;
}

/** The settings from the environment; the region is required (no client guesses one). */
export function awsSettings(env: Record<string, string | undefined> = process.env): AwsSettings {
  const region = setting('PGHERD_AWS_REGION', env) ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? '';
  const endpoint = setting('PGHERD_AWS_ENDPOINT', env) ?? env.AWS_ENDPOINT_URL ?? null;
  return { region, endpoint: endpoint || null, timeoutMs: setting('PGHERD_AWS_TIMEOUT_MS', env) };
}

/** AWS is not configured here: the cloud features say so (the API answers 503 with this reason). */
export class AwsNotConfiguredError extends Error {
  constructor(why: string) {
    super(`AWS is not configured: ${why}`);
    this.name = 'AwsNotConfiguredError';
  }
}

function common(s: AwsSettings, region?: string) {
  const r = region ?? s.region;
  if (!r) throw new AwsNotConfiguredError('no region (set PGHERD_AWS_REGION or AWS_REGION)');
  // The SDK's standard retry mode: throttling and transient errors retried with backoff, three attempts.
  // Each attempt bounded: connecting (5 s at most) and the whole answer (smithy only warns past
  // requestTimeout unless told to throw), so a page that plans never waits on AWS without end.
  const timeoutMs = s.timeoutMs ?? SETTINGS.PGHERD_AWS_TIMEOUT_MS.fallback;
  return {
    region: r,
    retryMode: 'standard',
    maxAttempts: 3,
    requestHandler: { connectionTimeout: Math.min(5000, timeoutMs), requestTimeout: timeoutMs, throwOnRequestTimeout: true },
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
  };
}

// One client per kind, region and endpoint for the process (clients keep their connections).
const clients = new Map<string, EC2Client | Route53Client | PricingClient | RDSClient | SecretsManagerClient>();
function cached<T extends EC2Client | Route53Client | PricingClient | RDSClient | SecretsManagerClient>(
  kind: string,
  c: ReturnType<typeof common>,
  make: () => T,
): T {
  const key = `${kind} ${c.region} ${c.endpoint ?? ''} ${c.requestHandler.requestTimeout}`;
  const found = clients.get(key) as T | undefined;
  if (found) return found;
  const client = make();
  shortenErrors(client, kind);
  clients.set(key, client);
  return client;
}

export function ec2Client(region?: string, s: AwsSettings = awsSettings()): EC2Client {
  const c = common(s, region);
  return cached('ec2', c, () => new EC2Client(c));
}

export function rdsClient(region?: string, s: AwsSettings = awsSettings()): RDSClient {
  const c = common(s, region);
  return cached('rds', c, () => new RDSClient(c));
}

/** Secrets Manager, where the roles pgherd rotates keep their passwords (lib/fleet/objects/secret-store.ts). */
export function secretsClient(region?: string, s: AwsSettings = awsSettings()): SecretsManagerClient {
  const c = common(s, region);
  return cached('secretsmanager', c, () => new SecretsManagerClient(c));
}

/** Route 53 is global: its region is the settings' (us-east-1 when none is set and AWS is reached at all). */
export function route53Client(s: AwsSettings = awsSettings()): Route53Client {
  const c = common({ ...s, region: s.region || 'us-east-1' });
  return cached('route53', c, () => new Route53Client(c));
}

/** The Price List Query API answers in us-east-1 (and two other regions): asked there, whatever the settings' region. */
export function pricingClient(s: AwsSettings = awsSettings()): PricingClient {
  const c = common({ ...s, region: 'us-east-1' });
  return cached('pricing', c, () => new PricingClient(c));
}

const readiness = new Map<string, { at: number; reason: Promise<string | null> }>();
/** How long a readiness answer is reused: the provider chain may ask the instance metadata service. */
const READINESS_TTL_MS = 60_000;

/**
 * Why the cloud features cannot work here, or null when they can: a region, and credentials the SDK's
 * default provider chain resolves (which ones is never said, nor logged). Answers are reused for a minute.
 */
export function awsUnavailable(s: AwsSettings = awsSettings()): Promise<string | null> {
  if (!s.region) return Promise.resolve('AWS is not configured: no region (set PGHERD_AWS_REGION or AWS_REGION)');
  const key = `${s.region} ${s.endpoint ?? ''}`;
  const hit = readiness.get(key);
  if (hit && Date.now() - hit.at < READINESS_TTL_MS) return hit.reason;
  const reason = (async () => {
    try {
      const creds = await ec2Client(undefined, s).config.credentials();
      return creds.accessKeyId ? null : 'AWS credentials are missing: the default provider chain gave no access key';
    } catch (err) {
      return `AWS credentials are missing: ${err instanceof Error ? err.message : String(err)} (set them in the environment, a shared credentials file or an instance role)`;
    }
  })();
  readiness.set(key, { at: Date.now(), reason });
  return reason;
}
