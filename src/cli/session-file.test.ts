import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliError, exitCodes } from './cli-error.js';
import {
  deleteSession,
  portcullisHome,
  readSession,
  type SavedSession,
  sessionPath,
  writeSession,
} from './session-file.js';

const posix = process.platform !== 'win32';

const session: SavedSession = {
  server: 'http://127.0.0.1:8080',
  session_token: 'eyJhbGciOiJFZERTQSJ9.e30.c2ln',
  expires_at: '2026-11-24T10:00:00.000Z',
  principal: { id: 'demo:alice', display_name: 'Alice', groups: ['engineering'] },
};

describe('session file', () => {
  let home: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'portcullis-cli-'));
  });
  after(() => rm(home, { recursive: true, force: true }));

  it('is written 0600 in a 0700 directory, atomically, and read back', { skip: !posix }, async () => {
    const path = await writeSession(home, 'alice', session);
    assert.equal(path, join(home, 'sessions', 'alice.json'));
    assert.equal((await stat(join(home, 'sessions'))).mode & 0o777, 0o700);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readSession(home, 'alice'), session);
    assert.deepEqual(await readdir(join(home, 'sessions')), ['alice.json'], 'no temporary file left behind');
  });

  it('keeps 0600 when a session is replaced, and tightens a loose sessions directory', {
    skip: !posix,
  }, async () => {
    await chmod(join(home, 'sessions'), 0o755);
    await writeSession(home, 'alice', { ...session, session_token: 'second' });
    assert.equal((await stat(join(home, 'sessions'))).mode & 0o777, 0o700);
    assert.equal((await stat(sessionPath(home, 'alice'))).mode & 0o777, 0o600);
    assert.equal((await readSession(home, 'alice'))?.session_token, 'second');
  });

  it('refuses a group- or world-readable session file, saying why and how to fix it', {
    skip: !posix,
  }, async () => {
    const path = await writeSession(home, 'loose', session);
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      await chmod(path, mode);
      await assert.rejects(readSession(home, 'loose'), (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.code, 'session_file_insecure');
        assert.equal(error.exitCode, exitCodes.unauthenticated);
        assert.match(error.message, new RegExp(`Refusing to use .*loose\\.json.*mode 0${mode.toString(8)}`));
        assert.match(error.hint ?? '', /chmod 600/);
        return true;
      });
    }
  });

  it('is null when the profile has no session, and deleted by logout', async () => {
    assert.equal(await readSession(home, 'nobody'), null);
    await writeSession(home, 'bob', session);
    assert.equal(await deleteSession(home, 'bob'), true);
    assert.equal(await deleteSession(home, 'bob'), false);
    assert.equal(await readSession(home, 'bob'), null);
  });

  it('refuses a file that is not a session', async () => {
    await writeFile(sessionPath(home, 'junk'), '{"server": 1}', { mode: 0o600 });
    await assert.rejects(readSession(home, 'junk'), { code: 'session_file_invalid' });
  });

  it('refuses profile names that could leave the sessions directory', () => {
    for (const name of ['../evil', 'a/b', '.hidden', '', '-flag', 'x'.repeat(65)]) {
      assert.throws(() => sessionPath(home, name), { code: 'usage' }, name);
    }
    assert.equal(sessionPath(home, 'alice.prod_2'), join(home, 'sessions', 'alice.prod_2.json'));
  });

  it('lives in PORTCULLIS_HOME, else XDG_CONFIG_HOME/portcullis, else ~/.config/portcullis', () => {
    assert.equal(portcullisHome({ PORTCULLIS_HOME: '/x', XDG_CONFIG_HOME: '/y' }), '/x');
    assert.equal(portcullisHome({ XDG_CONFIG_HOME: '/y' }), join('/y', 'portcullis'));
    assert.match(portcullisHome({}), /\.config[/\\]portcullis$/);
  });
});
