import { describe, expect, it } from 'vitest';
import { restUrlProblem } from './rest-url';

describe('restUrlProblem', () => {
  it("takes https on the member's own server exactly, whatever its case or trailing dot", () => {
    expect(restUrlProblem('https://10.0.0.5:8008', '10.0.0.5')).toBeNull();
    expect(restUrlProblem('https://DB-1.example.com.:8008', 'db-1.example.com')).toBeNull();
    expect(restUrlProblem('https://db-1.example.com', 'db-1.example.com')).toBeNull();
  });

  it('refuses another host: a first label, a prefix, a suffix, another address', () => {
    for (const [url, host] of [
      ['https://db-1:8008', 'db-1.example.com'],
      ['https://db-1.example.com:8008', 'db-1'],
      ['https://db-1.example.com.evil.net:8008', 'db-1.example.com'],
      ['https://10.0.0.50:8008', '10.0.0.5'],
      ['https://10.0.0.5.example.net:8008', '10.0.0.5'],
      ['https://db-1.example.com:8008', '10.0.0.5'],
    ])
      expect(restUrlProblem(url!, host!), `${url!} on ${host!}`).toMatch(/not this instance's server/);
  });

  it('refuses http, a path, credentials in the address, and no host to compare with', () => {
    expect(restUrlProblem('http://10.0.0.5:8008', '10.0.0.5')).toMatch(/not https/);
    expect(restUrlProblem('https://10.0.0.5:8008/cluster', '10.0.0.5')).toMatch(/more than a host and a port/);
    expect(restUrlProblem('https://u:p@10.0.0.5:8008', '10.0.0.5')).toMatch(/more than a host and a port/);
    expect(restUrlProblem('https://10.0.0.5:8008', '')).toMatch(/no address/);
    expect(restUrlProblem('not a url', '10.0.0.5')).toMatch(/not an address/);
  });
});
