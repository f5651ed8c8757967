import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectVersions, parseVersions } from '../../src/nginx/detect.js';
import { haveProgram } from '../helpers/system.js';

test('parseVersions: nginx and OpenSSL, preferring the OpenSSL nginx runs with', () => {
  const debian = 'nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.22 25 Aug 2026 (running with OpenSSL 3.0.19 27 Jan 2026)\nTLS SNI support enabled\n';
  assert.deepEqual({ ...parseVersions(debian), raw: undefined }, { nginx: '1.22.1', openssl: '3.0.19', opensslBuilt: '3.0.22', raw: undefined });
  const recent = 'nginx version: nginx/1.27.4\nbuilt by gcc 14.2.0\nbuilt with OpenSSL 3.5.0 8 Apr 2025\nTLS SNI support enabled\n';
  assert.equal(parseVersions(recent)?.openssl, '3.5.0');
  assert.equal(parseVersions(recent)?.nginx, '1.27.4');
  const libre = 'nginx version: nginx/1.25.3\nbuilt with LibreSSL 3.8.2\n';
  assert.equal(parseVersions(libre)?.openssl, undefined);
  assert.equal(parseVersions('nginx version: openresty/1.21.4.1\nbuilt with OpenSSL 1.1.1w 11 Sep 2023\n')?.nginx, '1.21.4');
  assert.equal(parseVersions('bash: nginx: command not found'), undefined);
});

test('detectVersions reads the installed nginx; a missing binary is a clear error', async (t) => {
  if (!haveProgram(t, 'nginx', '-v')) return;
  const v = await detectVersions();
  assert.match(v.nginx, /^\d+\.\d+\.\d+$/);
  assert.match(v.raw, /nginx version:/);
  await assert.rejects(detectVersions({ nginxBin: '/nonexistent/nginx' }), (err: Error & { hint?: string }) => {
    assert.match(err.message, /cannot read the nginx version from \/nonexistent\/nginx: not found/);
    assert.match(err.hint!, /--nginx-version/);
    return true;
  });
});
