import { describe, expect, it } from 'vitest';
import { sentinelUrl } from './queue';

describe("REDIS_URL's Sentinel form", () => {
  it('names the sentinels, the master and its password and database', () => {
    expect(sentinelUrl('redis+sentinel://10.0.1.5:26379,10.0.2.5:26379,[fd00::3]:26379/pgherd')).toEqual({
      sentinels: [
        { host: '10.0.1.5', port: 26379 },
        { host: '10.0.2.5', port: 26379 },
        { host: 'fd00::3', port: 26379 },
      ],
      name: 'pgherd',
    });
    expect(sentinelUrl('redis+sentinel://:s%40cret@a:26379/queue/2')).toEqual({
      sentinels: [{ host: 'a', port: 26379 }],
      name: 'queue',
      password: 's@cret',
      db: 2,
    });
  });

  it('leaves a plain URL to ioredis, and refuses a malformed Sentinel one saying what it should be', () => {
    expect(sentinelUrl('redis://127.0.0.1:6379')).toBeNull();
    expect(() => sentinelUrl('redis+sentinel://a:26379')).toThrow(
      /redis\+sentinel:\/\/\[\[user\]:password@\]host:port,host:port\/<master name>/,
    );
    expect(() => sentinelUrl('redis+sentinel://a,b:26379/pgherd')).toThrow(/"a" is not host:port/);
    expect(() => sentinelUrl('redis+sentinel://a:99999/pgherd')).toThrow(/"a:99999" is not host:port \(a port 1 to 65535\)/);
    expect(() => sentinelUrl('redis+sentinel://a:26379/pgherd?sentinelPassword=x')).toThrow(/takes no query string/);
    expect(() => sentinelUrl('redis+sentinels://a:26379/pgherd')).toThrow(/redis\+sentinels:\/\/ is not a form pgherd reads/);
  });

  it('reads the scheme in any case, and an ACL user with its password', () => {
    expect(sentinelUrl('REDIS+SENTINEL://pgherd-user:s3cret@h:26379/pgherd')).toEqual({
      sentinels: [{ host: 'h', port: 26379 }],
      name: 'pgherd',
      username: 'pgherd-user',
      password: 's3cret',
    });
  });
});
