// Whether the cloud features can work in this process, and why not: what the pages show and the API
// answers (503 with the reason) instead of failing later. Everything else keeps working without AWS.
import { awsUnavailable } from '@/lib/adapters/aws/config';
import { discoveryConfig } from './discovery';

/** Why EC2 discovery cannot run here, or null when it can. */
export async function discoveryUnavailable(env: Record<string, string | undefined> = process.env): Promise<string | null> {
  try {
    if (!discoveryConfig(env)) return 'EC2 discovery is not configured: set PGHERD_AWS_DISCOVERY (docs/configuration.md)';
  } catch (err) {
    return (err as Error).message;
  }
  return awsUnavailable();
}
