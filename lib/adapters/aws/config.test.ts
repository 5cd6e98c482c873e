// What the cloud features say when AWS cannot be used from here: no region, no credentials, no
// discovery configuration. The SDK's own default provider chain is asked, with nothing to find.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discoveryUnavailable } from '@/lib/features/discovery/status';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { awsSettings, awsUnavailable, ec2Client } from './config';
import { awsErrorText } from './errors';
import { describeInstancesById } from './ec2';

const saved = { ...process.env };
beforeEach(() => {
  process.env = Object.fromEntries(
    Object.entries(saved).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('PGHERD_AWS')),
  ) as NodeJS.ProcessEnv;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  // Nothing for the chain to find: no files, no instance metadata service.
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
  process.env.AWS_CONFIG_FILE = '/nonexistent/config';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});
afterEach(() => {
  process.env = { ...saved };
});

describe('AWS readiness', () => {
  it('says a region is missing, then that credentials are, then nothing once the chain finds them', async () => {
    expect(await awsUnavailable({ region: '', endpoint: null })).toMatch(/no region \(set PGHERD_AWS_REGION or AWS_REGION\)/);
    expect(await awsUnavailable({ region: 'eu-west-3', endpoint: 'http://127.0.0.1:9' })).toMatch(/^AWS credentials are missing: /);
    process.env.AWS_ACCESS_KEY_ID = 'AKIAEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret-never-shown';
    // Another region: not the cached answer of the first.
    const ok = await awsUnavailable({ region: 'eu-central-1', endpoint: 'http://127.0.0.1:9' });
    expect(ok).toBeNull();
  });

  it('discovery: not configured, badly configured, or AWS unusable, each with its reason; the secret never in it', async () => {
    expect(await discoveryUnavailable({})).toMatch(/EC2 discovery is not configured: set PGHERD_AWS_DISCOVERY/);
    expect(await discoveryUnavailable({ PGHERD_AWS_DISCOVERY: '{"regions":[]}' })).toMatch(/^PGHERD_AWS_DISCOVERY must be .*: regions: /);
    process.env.AWS_SECRET_ACCESS_KEY = 'secret-never-shown';
    process.env.PGHERD_AWS_REGION = 'ap-south-1';
    const why = await discoveryUnavailable({
      PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: ['ap-south-1'], tags: { Role: 'PostgreSQL' } }),
    });
    expect(why).toMatch(/^AWS credentials are missing/);
    expect(why).not.toContain('secret-never-shown');
  });

  it('an AWS error reads with its code first', () => {
    const e = Object.assign(new Error('We currently do not have sufficient capacity'), { name: 'InsufficientInstanceCapacity' });
    expect(awsErrorText(e)).toBe('InsufficientInstanceCapacity: We currently do not have sufficient capacity');
  });
});

describe('AWS that does not answer', () => {
  it('fails each call within its attempts’ bounds, with the timeout said, instead of waiting without end', async () => {
    // A server that takes the connection and never answers, as an endpoint stopped mid-call does.
    const sockets = new Set<Socket>();
    const server = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    try {
      const settings = {
        ...awsSettings({ PGHERD_AWS_REGION: 'eu-west-1', PGHERD_AWS_TIMEOUT_MS: '700' }),
        endpoint: `http://127.0.0.1:${port}`,
      };
      expect(settings.timeoutMs).toBe(700);
      const t0 = Date.now();
      const err = await describeInstancesById(ec2Client('eu-west-1', settings), 'eu-west-1', ['i-0123']).catch((e: unknown) => e);
      const took = Date.now() - t0;
      expect(awsErrorText(err)).toMatch(/timeout|timed out/i);
      // Three attempts of 0.7 s with the standard mode's backoff between them: seconds, not minutes.
      expect(took).toBeLessThan(15_000);
      expect(sockets.size).toBeGreaterThanOrEqual(1);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
    // A bad bound is refused, naming the setting: it is never taken for the default.
    expect(awsSettings({}).timeoutMs).toBe(30_000);
    expect(() => awsSettings({ PGHERD_AWS_TIMEOUT_MS: 'soon' })).toThrow(
      'PGHERD_AWS_TIMEOUT_MS must be a whole number from 500 to 600000 (got "soon")',
    );
  }, 30_000);
});
