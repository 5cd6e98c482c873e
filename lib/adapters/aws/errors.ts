// AWS errors as people are shown them: the code and a short message. AWS's own text can carry the
// caller's role ARN and account, the resource's ARN, and (UnauthorizedOperation) an encoded
// authorization message that `sts decode-authorization-message` turns into the whole policy
// evaluation. That text is for whoever runs pgherd, in the log of the process that called AWS; step
// records, operation pages, discovery passes and API answers get the short one.
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { PricingClient } from '@aws-sdk/client-pricing';
import type { Route53Client } from '@aws-sdk/client-route-53';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const ENCODED = /[\s.;,]*Encoded authorization failure message:[\s\S]*$/i;
const ARN = /\barn:aws[\w-]*:[^\s"',;()]*/g;
const ACCOUNT = /\b\d{12}\b/g;
/** Long enough for AWS's usual one sentence ("We currently do not have sufficient m6i.xlarge capacity in the Availability Zone you requested"). */
export const SHORT_MESSAGE_MAX = 200;

/** A message fit to show: no ARN, account id or encoded authorization message, one line, bounded. */
export function shortAwsMessage(message: string): string {
  const s = message.replace(ENCODED, '').replace(ARN, '(an ARN)').replace(ACCOUNT, '(an account)').replace(/\s+/g, ' ').trim();
  return s.length > SHORT_MESSAGE_MAX ? `${s.slice(0, SHORT_MESSAGE_MAX - 1)}\u2026` : s;
}

/** The AWS error's code (`Code`, else its name). */
export const awsErrorCode = (err: Error) => (err as Error & { Code?: string }).Code ?? err.name;

/** The AWS error's code and short message ("InsufficientInstanceCapacity: We currently do not have..."). */
export function awsErrorText(err: unknown): string {
  if (err instanceof Error) {
    const code = awsErrorCode(err);
    const message = shortAwsMessage(err.message);
    return code && !message.startsWith(code) ? `${code}: ${message}` : message;
  }
  return shortAwsMessage(String(err));
}

/**
 * Added to every client pgherd makes: an error a call ends with is written to this process's log whole
 * (`aws.error`), then goes on with its message shortened, so that no code above (a step's record, a
 * discovery pass, a page) can show the whole. The error stays the SDK's own (its name, Code and
 * metadata), for the code that tells a capacity refusal from a throttle.
 */
export function shortenErrors(client: EC2Client | Route53Client | PricingClient | RDSClient | SecretsManagerClient, service: string): void {
  // The clients' stacks differ only in their input and output types, which this one never reads.
  (client.middlewareStack as EC2Client['middlewareStack']).add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        if (err instanceof Error) {
          const full = err.message;
          const short = shortAwsMessage(full);
          if (short !== full) {
            console.error(
              JSON.stringify({
                at: new Date().toISOString(),
                event: 'aws.error',
                service,
                operation: (context as { commandName?: string }).commandName,
                code: awsErrorCode(err),
                message: full,
              }),
            );
            err.message = short;
            if (err.stack) err.stack = err.stack.split(full).join(short);
          }
        }
        throw err;
      }
    },
    { step: 'initialize', name: 'pgherdShortErrors', override: true },
  );
}
