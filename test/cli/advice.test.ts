// The CLI's advice (src/cli/advice.ts): use cases give neutral hints; the CLI
// adds its flags and commands by the error's code and details.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError, formatError } from '../../src/domain/errors.js';
import { withCliAdvice } from '../../src/cli/advice.js';

const shown = (e: KompoxError) => formatError({ ...e, ...withCliAdvice(e) });

test('codes get the flags and commands of kompoxops; unknown codes keep the neutral hint', () => {
  const current = new KompoxError('conflict', 'disk "d" is the current disk of volume v; refusing to delete it', { code: 'disk.delete.current', hint: 'Attach another disk first; force does not override this.' });
  assert.equal(shown(current), 'disk "d" is the current disk of volume v; refusing to delete it. Attach another disk first (kompoxops disk attach -N OTHER); --force does not override this.');
  const previous = new KompoxError('conflict', 'x', { code: 'disk.delete.previous', hint: 'Delete it with force to delete it anyway.' });
  assert.equal(withCliAdvice(previous).hint, 'Add --force to delete it anyway.');
  const ambiguous = new KompoxError('usage', 'app web has 2 volumes; say which one', { code: 'volume.ambiguous', hint: 'Volumes: a, b.' });
  assert.equal(shown(ambiguous), 'app web has 2 volumes; say which one with -V. Volumes: a, b.');
  const restore = new KompoxError('conflict', 'x', { code: 'disk.exists', details: { restore: true }, hint: 'Choose another name.' });
  assert.match(withCliAdvice(restore).hint!, /--disk-name/);
  assert.match(withCliAdvice(new KompoxError('conflict', 'x', { code: 'disk.exists' })).hint!, /with -N/);
  const other = new KompoxError('config', 'bad', { code: 'something.else', hint: 'Neutral.' });
  assert.deepEqual(withCliAdvice(other), { message: 'bad', hint: 'Neutral.' });
  const noneYet = new KompoxError('notfound', 'x', { code: 'disk.notfound', details: { disks: [] }, hint: 'The volume has no disks yet.' });
  assert.match(withCliAdvice(noneYet).hint!, /kompoxops disk list/);
  const some = new KompoxError('notfound', 'x', { code: 'disk.notfound', details: { disks: ['a'] }, hint: 'Disks: a.' });
  assert.equal(withCliAdvice(some).hint, 'Disks: a.');
});

test('a deploy stopped half-way names the command to run again', () => {
  const e = new KompoxError('auth', 'denied', { details: { stoppedAt: 'Service/ns/web' }, hint: 'Ask an admin. Stopped at Service/ns/web; nothing was changed before the failure. Deploying again after fixing the cause converges.' });
  assert.equal(withCliAdvice(e).hint, 'Ask an admin. Stopped at Service/ns/web; nothing was changed before the failure. Re-running `kompoxops app deploy` after fixing the cause converges.');
});

test('transfer errors name --via, --quiesce, --live and --size; a bad setting names its field', async () => {
  const { transferVia } = await import('../../src/usecases/transfer.js');
  const driver = { name: 'k3s', hostTransfer: {} } as unknown as Parameters<typeof transferVia>[1];
  const ctx = (settings: Record<string, string>) => ({ app: { settings }, cluster: { settings: {} }, provider: { settings: {} } }) as unknown as Parameters<typeof transferVia>[0];
  const flag = (() => {
    try {
      transferVia(ctx({}), driver, 'disk export', 'teleport');
    } catch (e) {
      return e as KompoxError;
    }
    throw new Error('no error');
  })();
  assert.equal(flag.kind, 'usage');
  assert.equal(withCliAdvice(flag).message, '--via "teleport" is not host, cluster or auto');
  assert.match(withCliAdvice(flag).hint!, /--via host .* --via cluster .* --via auto/);
  const setting = (() => {
    try {
      transferVia(ctx({ KOMPOX_TRANSFER_VIA: 'sideways' }), driver, 'disk export');
    } catch (e) {
      return e as KompoxError;
    }
    throw new Error('no error');
  })();
  assert.equal(setting.kind, 'config');
  assert.match(withCliAdvice(setting).message, /app\.settings\.KOMPOX_TRANSFER_VIA "sideways" is not host, cluster or auto/);
  assert.equal(withCliAdvice(setting).hint, 'Set app.settings.KOMPOX_TRANSFER_VIA to host, cluster or auto.');
  assert.match(withCliAdvice(new KompoxError('conflict', 'x', { code: 'transfer.disk.in-use' })).hint!, /--quiesce.*--live/);
  assert.match(withCliAdvice(new KompoxError('conflict', 'x', { code: 'transfer.disk.full' })).hint!, /--size/);
});

test('a quiesce that could not start the app again names the commands that start it; a busy quiesce keeps its own hint', () => {
  const failed = new KompoxError('unavailable', 'snapshot s was taken, but the app could not be started again: connection lost', { code: 'snapshot.quiesce.start-failed', hint: 'It stays stopped.' });
  const hint = withCliAdvice(failed).hint!;
  assert.match(hint, /`kompoxops app status`/);
  assert.match(hint, /`kompoxops app deploy` starts it again/);
  assert.match(hint, /snapshot create --quiesce or disk export --quiesce/);
  const busy = new KompoxError('conflict', 'x', { code: 'snapshot.quiesce.busy', hint: 'Nothing was changed. Wait for it to finish.' });
  assert.equal(withCliAdvice(busy).hint, 'Nothing was changed. Wait for it to finish.');
});
