// AWS's error text as a person is shown it, against the SDK's own client and parser: a local HTTP
// server answers as EC2 does when a role may not act, and the error the call ends with is read back.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ModifyInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ec2Client } from './config';
import { awsErrorText, shortAwsMessage, SHORT_MESSAGE_MAX } from './errors';

const ROLE = 'arn:aws:sts::123456789012:assumed-role/pgherd-worker/i-0abc123def4567890';
const INSTANCE = 'arn:aws:ec2:eu-west-1:123456789012:instance/i-0fedcba9876543210';
const ENCODED = 'AbCdEf0123456789-_'.repeat(40);
const UNAUTHORIZED =
  `You are not authorized to perform this operation. User: ${ROLE} is not authorized to perform: ec2:ModifyInstanceAttribute ` +
  `on resource: ${INSTANCE} because no identity-based policy allows the ec2:ModifyInstanceAttribute action. ` +
  `Encoded authorization failure message: ${ENCODED}`;

let server: http.Server;
let endpoint: string;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(403, { 'content-type': 'text/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>${UNAUTHORIZED}</Message></Error></Errors><RequestID>7d6c</RequestID></Response>`,
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('an AWS error shown to people', () => {
  it('keeps the code and a short message: no ARN, account or encoded authorization message', () => {
    const e = Object.assign(new Error(UNAUTHORIZED), { name: 'UnauthorizedOperation' });
    const text = awsErrorText(e);
    expect(text).toMatch(/^UnauthorizedOperation: You are not authorized to perform this operation\./);
    expect(text).toContain('ec2:ModifyInstanceAttribute');
    for (const leak of ['arn:', '123456789012', 'Encoded', ENCODED.slice(0, 20)]) expect(text).not.toContain(leak);
    expect(text.length).toBeLessThanOrEqual('UnauthorizedOperation: '.length + SHORT_MESSAGE_MAX);
    expect(
      shortAwsMessage('We currently do not have sufficient m6i.xlarge capacity in the Availability Zone you requested (eu-west-1a).'),
    ).toBe('We currently do not have sufficient m6i.xlarge capacity in the Availability Zone you requested (eu-west-1a).');
  });

  it('is what a call through pgherd\u2019s client ends with; the whole text goes to the process\u2019s log only', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDTEST');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'not-a-secret');
    const logged: string[] = [];
    const log = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void logged.push(String(line)));
    try {
      const client = ec2Client('eu-west-1', { region: 'eu-west-1', endpoint });
      const err = await client
        .send(new ModifyInstanceAttributeCommand({ InstanceId: 'i-0fedcba9876543210', InstanceType: { Value: 'm6i.xlarge' } }))
        .then(
          () => null,
          (e: unknown) => e as Error & { Code?: string },
        );
      expect(err?.name).toBe('UnauthorizedOperation');
      for (const leak of ['arn:', '123456789012', 'Encoded']) {
        expect(err?.message).not.toContain(leak);
        expect(err?.stack ?? '').not.toContain(leak);
      }
      expect(err?.message).toMatch(/^You are not authorized to perform this operation\./);
      const entry = logged.map((l) => JSON.parse(l) as Record<string, string>).find((l) => l.event === 'aws.error');
      expect(entry).toMatchObject({
        service: 'ec2',
        operation: 'ModifyInstanceAttributeCommand',
        code: 'UnauthorizedOperation',
        message: UNAUTHORIZED,
      });
    } finally {
      log.mockRestore();
      vi.unstubAllEnvs();
    }
  });
});
