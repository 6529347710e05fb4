import { expect } from 'chai';
import { ConfigError } from '@visionq/api';
import { loadConfig, parseRedisUrl } from '@visionq/config';
import { connectRedis, KeyNamespace } from '@visionq/tasks';
import { rejection } from '../support/promises';

describe('REDIS_URL forms', () => {
  it('passes a single server URL on as it is', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://user:p%40ss@redis.example:6380/2', 'redis://:secret@localhost']) {
      expect(parseRedisUrl(url)).to.deep.equal({ kind: 'server', url });
    }
  });

  it('reads a Cluster as its seed nodes, with credentials for every node', () => {
    expect(parseRedisUrl('redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002,redis-c')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
        { host: 'redis-c', port: 6379 },
      ],
      username: 'app',
      password: 'p@ss',
    });
    expect(parseRedisUrl('redis+cluster://127.0.0.1:7000/')).to.deep.equal({ kind: 'cluster', nodes: [{ host: '127.0.0.1', port: 7000 }] });
  });

  it('reads a Sentinel URL as its Sentinels, the master name and the database', () => {
    expect(parseRedisUrl('redis+sentinel://:secret@s1:26380,s2/mymaster/3')).to.deep.equal({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
      ],
      masterName: 'mymaster',
      db: 3,
      password: 'secret',
    });
    expect(parseRedisUrl('redis+sentinel://127.0.0.1:26379/visionq-master')).to.deep.include({ masterName: 'visionq-master', db: 0 });
  });

  it('refuses what it cannot read, saying why', () => {
    const cases: Array<[string, RegExp]> = [
      ['http://127.0.0.1:6379', /expected one of redis:\/\/.*redis\+cluster:\/\/.*redis\+sentinel:\/\//],
      ['redis://', /expected one of/],
      ['redis+cluster://', /expected one of/],
      ['redis+cluster://a:7000,b:7001/2', /Cluster has no database/],
      ['redis+cluster://a:7000,,b:7001', /"" is not host:port/],
      ['redis+cluster://a:70000', /port 70000 .* out of range/],
      ['redis+cluster://a:x', /"a:x" is not host:port/],
      ['redis+sentinel://s1:26379', /ends with \/master-name/],
      ['redis+sentinel://s1:26379/m/1/2', /ends with \/master-name/],
      ['redis+sentinel://s1:26379/m/one', /database "one" is not a number/],
    ];
    for (const [url, why] of cases) expect(() => parseRedisUrl(url), url).to.throw(why);
  });

  it('is checked when the configuration loads, naming REDIS_URL', () => {
    expect(loadConfig({ REDIS_URL: 'redis+sentinel://s1:26379/m' }).redis.url).to.equal('redis+sentinel://s1:26379/m');
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://a:7000/0' })).to.throw(ConfigError, /REDIS_URL=.*Cluster has no database/);
  });

  it('is refused by connectRedis as a configuration error, before any connection', async () => {
    const err = await rejection(connectRedis('redis+sentinel://s1', { failFast: true, onError: () => undefined }));
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).details).to.deep.equal([{ field: 'REDIS_URL', message: 'a Sentinel URL ends with /master-name or /master-name/db' }]);
  });
});

describe('REDIS_PREFIX as a hash tag', () => {
  it('is wrapped into {braces} on a Cluster only, and kept when already in braces', () => {
    expect(KeyNamespace.on({ isCluster: true }, 'visionq').task('t')).to.equal('{visionq}:task:t');
    expect(KeyNamespace.on({ isCluster: false }, 'visionq').task('t')).to.equal('visionq:task:t');
    expect(KeyNamespace.on({ isCluster: true }, '{visionq}').prefix).to.equal('{visionq}');
    expect(KeyNamespace.on({ isCluster: false }, '{visionq}').prefix).to.equal('{visionq}');
  });

  it('accepts a prefix in braces, and refuses braces elsewhere', () => {
    expect(loadConfig({ REDIS_PREFIX: '{visionq}' }).redis.prefix).to.equal('{visionq}');
    for (const prefix of ['{visionq', 'vision}q', 'a{b}', '{}', 'with space']) {
      expect(() => loadConfig({ REDIS_PREFIX: prefix }), prefix).to.throw(ConfigError, /REDIS_PREFIX/);
    }
  });
});
