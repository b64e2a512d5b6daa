import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { webhookUrlProblem } from './signed-webhook.js';

describe('webhookUrlProblem', () => {
  it('wants https, allows plain http only to loopback, no userinfo', () => {
    assert.equal(webhookUrlProblem('https://soc.example.com/hook'), null);
    assert.equal(webhookUrlProblem('http://127.0.0.1:9000/hook'), null);
    assert.equal(webhookUrlProblem('http://localhost/hook'), null);
    assert.equal(webhookUrlProblem('http://[::1]:9000/'), null);
    assert.match(webhookUrlProblem('http://soc.example.com/hook') ?? '', /must be https/);
    assert.match(webhookUrlProblem('http://127.0.0.1.evil.example/') ?? '', /must be https/);
    assert.match(webhookUrlProblem('https://user:pw@soc.example.com/') ?? '', /credentials/);
    assert.match(webhookUrlProblem('ftp://soc.example.com/') ?? '', /must be https/);
    assert.match(webhookUrlProblem('not a url') ?? '', /not a URL/);
  });
});
